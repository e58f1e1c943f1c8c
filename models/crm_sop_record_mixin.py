from lxml import etree

from odoo import api, models

# the value of ``sop_fill_view_ref`` that opens a task's dialog to read:
# "<task template id>:view" (the id alone opens it to fill in)
SOP_FILL_VIEW_SUFFIX = ":view"


class CrmSopRecordMixin(models.AbstractModel):
    """What the two models a SOP task reads (``crm.lead``, ``res.partner``)
    share: the "Fill in" dialog of a task (their form reduced to the task's
    fields), the profile their form shows of what the playbooks collect, and
    the diff of the values the tasks watch around a write."""

    _name = "crm.sop.record.mixin"
    _description = "Sales SOP: record read by SOP tasks"

    # ------------------------------------------------------------
    # FILL-IN DIALOG
    # ------------------------------------------------------------

    @api.model
    def _sop_fill_task_template(self):
        """The task template the context key ``sop_fill_view_ref`` names, when
        the current user may read it and it fills fields of this model; else
        an empty recordset. The key ends with ``_view_ref`` so that the web
        client sends it to ``get_views`` and it enters the view cache key."""
        TaskTemplate = self.env["crm.sop.task.template"]
        value = self.env.context.get("sop_fill_view_ref")
        if not value or isinstance(value, bool):
            return TaskTemplate
        if isinstance(value, str) and value.endswith(SOP_FILL_VIEW_SUFFIX):
            value = value[: -len(SOP_FILL_VIEW_SUFFIX)]
        try:
            task_template_id = int(value)
        except (TypeError, ValueError):
            return TaskTemplate
        if not TaskTemplate.has_access("read"):
            return TaskTemplate  # portal, internal users without sales rights
        # as the user: record rules (multi-company) decide what may shape a view
        task_template = TaskTemplate.browse(task_template_id).exists()
        task_template = task_template._filtered_access("read")
        if (
            not task_template
            or task_template._sop_fill_model() != self._name
            or not task_template._sop_fill_fields()
        ):
            return TaskTemplate
        return task_template

    @api.model
    def _sop_fill_view_only(self):
        """The dialog opened by "View" (``<id>:view``): the task's data to
        read, not to change, closed by one button."""
        value = self.env.context.get("sop_fill_view_ref")
        return isinstance(value, str) and value.endswith(SOP_FILL_VIEW_SUFFIX)

    @api.model
    def _get_view_cache_key(self, view_id=None, view_type="form", **options):
        # the raw context value is in the key already (it ends with _view_ref);
        # what it resolves to depends on the user's rights, so that goes too
        key = super()._get_view_cache_key(view_id, view_type, **options)
        if view_type == "form" and self.env.context.get("sop_fill_view_ref"):
            key += (self._sop_fill_task_template().id,)
        return key

    @api.model
    def _get_view(self, view_id=None, view_type="form", **options):
        arch, view = super()._get_view(view_id, view_type, **options)
        if view_type == "form":
            task_template = self._sop_fill_task_template()
            if task_template:
                arch = task_template._sop_fill_arch(
                    self._name, view_only=self._sop_fill_view_only()
                )
            else:
                self._sop_add_profile_fields(arch)
        return arch, view

    # ------------------------------------------------------------
    # PROFILE
    # ------------------------------------------------------------

    @api.model
    def _sop_add_profile_fields(self, arch):
        """The form's profile group (``sop_profile``) shows every field of this
        model that the active playbooks collect and the form does not show
        elsewhere, in the playbooks' order; with none, the group goes. No
        field is named here: the default playbook's own fields (visit data,
        intent, the customer's gender and age range) are its data. The view
        cache is cleared when task templates change."""
        names = self.env["crm.sop.task.template"]._sop_collected_fields(self._name)
        for group in arch.xpath("//group[@name='sop_profile']"):
            for fname in names:
                if fname in self._fields and not arch.xpath(
                    f"//field[@name='{fname}']"
                ):
                    etree.SubElement(group, "field", name=fname)
            if not len(group):
                group.getparent().remove(group)

    def _sop_fetch_collected(self):
        """Read at once, for all of ``self``, the fields the active playbooks
        collect: Odoo reads custom fields (the default playbook's are) one
        query each, never prefetched with the rest. Only those the user may
        read: a field of another playbook kept to a group is not this
        caller's to read."""
        names = [
            name
            for name in self.env["crm.sop.task.template"]._sop_collected_fields(
                self._name
            )
            if name in self._fields and self._fields[name].is_accessible(self.env)
        ]
        if self and names:
            self.fetch(names)

    # ------------------------------------------------------------
    # WATCHED VALUES
    # ------------------------------------------------------------

    def _sop_watch(self, vals):
        """Before a write: the watched fields it touches and their values.
        Returns (field names, {record id: values}); costs nothing when the
        write touches no watched field."""
        watched = [
            fname
            for fname in self.env["crm.sop.task.template"]._sop_watched_fields(
                self._name
            )
            if fname in vals
        ]
        if not watched:
            return watched, {}
        # custom fields among them are read together, not one query each
        self._sop_fetch_collected()
        return watched, {
            record.id: [record[fname] for fname in watched] for record in self
        }

    def _sop_watch_changed(self, watched, before):
        """After the write: the records whose watched values really changed."""
        if not watched:
            return self.browse()
        return self.filtered(
            lambda record: (
                record.id in before
                and [record[fname] for fname in watched] != before[record.id]
            )
        )

import logging

from odoo import models
from odoo.exceptions import UserError
from odoo.tools.i18n import format_list
from odoo.tools.misc import format_date

_logger = logging.getLogger(__name__)

# What a kind of task means lives here, in one family of methods per kind,
# found by name (as ir.actions.server runs ``_run_action_<state>``):
#
# on crm.sop.task.template
#   _sop_config_<kind>()          what the engine caches of the task template
#                                 (see SopTaskConfig: lead_fields and
#                                 partner_fields are what its tasks watch)
# on crm.sop.task
#   _sop_done_<kind>(batch, rows) {task id: done?} for all the rows of the kind
#                                 in a batch of leads, in one pass
#   _sop_action_<kind>()          what the task's button opens
#   _sop_button_<kind>()          which button the task shows (a key of
#                                 crm.sop.task.button), False for none
#   _sop_hint_<kind>()            optional: a line telling the rep where the
#                                 task stands (what is missing, when...)
# on crm.sop.task.template, optional
#   _sop_fill_fields_<kind>()     the fields of its "Fill in" dialog
#
# A new kind is a selection_add on crm.sop.task.template.kind plus these
# methods; the engine, the panel and the gates need no change.


class CrmSopTaskTemplate(models.Model):
    _inherit = "crm.sop.task.template"

    def _sop_config_fields(self):
        names = tuple(self.field_ids.mapped("name"))
        if self.scope == "customer":
            return {"partner_fields": names}
        return {"lead_fields": names}

    def _sop_config_condition(self):
        domain = self._sop_config_domain()
        return {
            "domain": domain,
            # what it reads is what it watches
            "lead_fields": tuple(
                sorted({leaf[0] for leaf in domain or () if isinstance(leaf, tuple)})
            ),
        }

    def _sop_fill_fields_fields(self):
        # sudo: reps cannot read ir.model.fields; the task template itself
        # was checked readable by the caller
        return tuple(self.sudo().field_ids.mapped("name"))

    def _sop_fill_fields_condition(self):
        """Where to act on a condition: the opportunity's fields it reads,
        those a rep can fill."""
        Lead = self.env["crm.lead"]
        return tuple(
            fname
            for fname in sorted(self._sop_condition_fields())
            if fname in Lead._fields
            and Lead._fields[fname].store
            and not Lead._fields[fname].readonly
        )

    def _sop_config_script(self):
        return {"mail_template_id": self.mail_template_id.id}

    def _sop_config_activity(self):
        return {"activity_type_id": self.activity_type_id.id}

    def _sop_config_manual(self):
        return {}


class CrmSopTask(models.Model):
    _inherit = "crm.sop.task"

    # ------------------------------------------------------------
    # FIELDS: done when every listed field is set (on the opportunity, or on
    # its customer, shared by the customer's opportunities)
    # ------------------------------------------------------------

    def _sop_done_fields(self, batch, rows):
        done = {}
        for row in rows:
            c = batch.config[row.task_template_id]
            lead = batch.leads[row.lead_id]
            record = lead.partner_id if c.partner_fields else lead
            names = c.partner_fields or c.lead_fields
            # a task whose fields are all gone checks nothing: never done
            done[row.id] = bool(record and names) and all(record[n] for n in names)
        return done

    def _sop_action_fields(self):
        """The "Fill in" dialog: the opportunity's (or the customer's) form
        with exactly the task's fields (see crm.sop.record.mixin)."""
        task_template = self.task_template_id
        if task_template.scope == "customer":
            record = self.lead_id.partner_id
            if not record:
                raise UserError(
                    self.env._(
                        "Set the customer of “%(lead)s” first: the task “%(task)s” "
                        "collects the customer's data.",
                        lead=self.lead_id.display_name,
                        task=self.name,
                    )
                )
        else:
            record = self.lead_id
        return {
            "type": "ir.actions.act_window",
            "name": self.name,
            "res_model": record._name,
            "res_id": record.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            # the key ends with _view_ref: the web client passes it to get_views
            # and it is part of the view cache key (see crm.sop.record.mixin)
            "context": {"sop_fill_view_ref": task_template.id},
        }

    def _sop_button_fields(self):
        return "fill_in" if self.state == "todo" else "view"

    def _sop_hint_fields(self):
        if self.state != "todo":
            return False
        c = (
            self.env["crm.sop.task.template"]
            ._sop_config()
            .get(self.task_template_id.id)
        )
        if c is None:
            return False
        record = self.lead_id.partner_id if c.partner_fields else self.lead_id
        if not record:
            return self.env._("Set the customer first.")
        names = c.partner_fields or c.lead_fields
        missing = [
            record._fields[name]._description_string(self.env)
            for name in names
            if name in record._fields and not record[name]
        ]
        return missing and self.env._(
            "Missing: %(fields)s", fields=format_list(self.env, missing)
        )

    # ------------------------------------------------------------
    # CONDITION: done when the opportunity matches the condition
    # ------------------------------------------------------------

    def _sop_done_condition(self, batch, rows):
        lead_ids = {}
        for row in rows:
            lead_ids.setdefault(row.task_template_id, []).append(row.lead_id)
        matched = {}
        for tt_id, ids in lead_ids.items():
            domain = batch.config[tt_id].domain
            if domain is None:
                continue  # refused by the parser: checks nothing
            leads = batch.leads[ids[0]].browse(ids)
            try:
                matched[tt_id] = set(leads.filtered_domain(list(domain)).ids)
            except (ValueError, TypeError, KeyError):
                # checked on save and when cached, but a field may have
                # changed since: the task stays open rather than breaking
                # the lead's write
                _logger.warning(
                    "Sales SOP: condition of task template %s cannot be evaluated",
                    tt_id,
                    exc_info=True,
                )
        return {
            row.id: row.lead_id in matched.get(row.task_template_id, ()) for row in rows
        }

    def _sop_action_condition(self):
        """Where to act: the opportunity's fields the condition reads."""
        if not self.task_template_id._sop_fill_fields():
            return False
        return self._sop_action_fields()

    def _sop_button_condition(self):
        if not self.task_template_id._sop_fill_fields():
            return False
        return "fill_in" if self.state == "todo" else "view"

    def _sop_hint_condition(self):
        return self.task_template_id._sop_condition_words()

    # ------------------------------------------------------------
    # SCRIPT: done once the script (a mail template) was sent to the customer
    # ------------------------------------------------------------

    def _sop_done_script(self, batch, rows):
        return {row.id: bool(row.date_script_sent) for row in rows}

    def _sop_action_script(self):
        """One click: the script goes to the customer by email (see
        action_sop_send_script; Copy and Edit first are beside it)."""
        return self.action_sop_send_script()

    def _sop_script_template(self):
        """The task's script, checked usable by the current user."""
        self.ensure_one()
        if self.kind != "script" or self.state == "na":
            raise UserError(
                self.env._("“%(task)s” has no script to send.", task=self.name)
            )
        self._sop_check_lead_access()
        self.env["crm.sop.script.send"]._sop_check_customer(self.lead_id)
        # sudo: reps may send scripts they cannot read the configuration of
        return self.sudo().task_template_id.mail_template_id.sudo(False)

    def sop_render_script(self, lang=None):
        """{'subject', 'body'}: the task's script rendered for its deal, the
        body as plain text ready to paste."""
        template = self._sop_script_template()
        return self.lead_id.sop_render_script(template.id, lang=lang)

    def action_sop_send_script(self, channel="email", lang=None):
        """Send the task's script in one click (``copy``: the rep confirms
        that the copied text was sent); it completes this task only."""
        template = self._sop_script_template()
        self.env["crm.sop.script.send"]._sop_send(
            self.lead_id, template.id, channel=channel, task=self, lang=lang
        )
        return True

    def action_sop_copy_script(self):
        """Copy the rendered script to the clipboard (a messenger such as
        WeChat); the rep then confirms that it was sent."""
        template = self._sop_script_template()
        action = self.lead_id.action_sop_copy_script(template.id)
        action["params"].update(model=self._name, res_id=self.id)
        return action

    def action_sop_edit_script(self):
        """ "Edit first": the composer with the script, sent from this task."""
        template = self._sop_script_template()
        return self.lead_id._sop_script_composer(template, task=self)

    def _sop_button_script(self):
        return "send" if self.state == "todo" else "send_again"

    def _sop_hint_script(self):
        if not self.date_script_sent:
            return False
        return self.env._(
            "Sent on %(date)s",
            date=format_date(self.env, self.date_script_sent),
        )

    # ------------------------------------------------------------
    # ACTIVITY: done once an activity of the type is marked done on the deal
    # ------------------------------------------------------------

    def _sop_done_activity(self, batch, rows):
        """Done once an activity of the type was marked done on the deal, as
        the product recorded it (crm.sop.activity.done); a chatter message
        carrying the activity type proves nothing."""
        done_activities = self.env["crm.sop.activity.done"]._sop_done_pairs(
            {row.lead_id for row in rows},
            {batch.config[row.task_template_id].activity_type_id for row in rows},
        )
        return {
            row.id: (
                row.lead_id,
                batch.config[row.task_template_id].activity_type_id,
            )
            in done_activities
            for row in rows
        }

    def _sop_booked_activity(self):
        """The open activity of the task's type on the opportunity, if one is
        booked (the soonest)."""
        activity_type = self.task_template_id.activity_type_id
        return self.lead_id.activity_ids.filtered(
            lambda activity: activity.activity_type_id == activity_type
        ).sorted("date_deadline")[:1]

    def _sop_action_activity(self):
        """Open the booked activity, or schedule one of the task's type on
        the opportunity."""
        self._sop_check_lead_access()
        lead = self.lead_id
        booked = self._sop_booked_activity()
        if booked:
            return {
                "type": "ir.actions.act_window",
                "name": booked.display_name,
                "res_model": "mail.activity",
                "res_id": booked.id,
                "view_mode": "form",
                "views": [
                    (self.env.ref("mail.mail_activity_view_form_popup").id, "form")
                ],
                "target": "new",
            }
        return {
            "type": "ir.actions.act_window",
            "name": self.name,
            "res_model": "mail.activity.schedule",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {
                "active_model": "crm.lead",
                "active_id": lead.id,
                "active_ids": lead.ids,
                "default_res_model": "crm.lead",
                "default_res_ids": str(lead.ids),
                "default_activity_type_id": self.sudo().task_template_id.activity_type_id.id,
            },
        }

    def _sop_button_activity(self):
        if self.state != "todo":
            return False
        return "view" if self._sop_booked_activity() else "schedule"

    def _sop_hint_activity(self):
        booked = self.state == "todo" and self._sop_booked_activity()
        if not booked:
            return False
        return self.env._(
            "Planned for %(date)s (%(user)s)",
            date=format_date(self.env, booked.date_deadline),
            user=booked.user_id.name or "",
        )

    # ------------------------------------------------------------
    # MANUAL: ticked by the rep, where nothing can be checked
    # ------------------------------------------------------------

    def _sop_done_manual(self, batch, rows):
        return {row.id: row.state == "done" for row in rows}

    def _sop_action_manual(self):
        if self.state == "todo":
            return self.action_sop_mark_done()
        return self.action_sop_reopen()

    def _sop_button_manual(self):
        return "mark_done" if self.state == "todo" else "reopen"

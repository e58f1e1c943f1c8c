import logging
from collections import defaultdict
from itertools import compress

from odoo import api, models
from odoo.exceptions import UserError
from odoo.tools.i18n import format_list
from odoo.tools.misc import format_date

from .crm_sop_engine import (
    SOP_ROW_ID,
    SOP_ROW_LEAD,
    held_rows,
    held_values,
    sop_rows_by_template,
    sop_rows_decided,
)
from .crm_sop_record_mixin import SOP_FILL_VIEW_SUFFIX

_logger = logging.getLogger(__name__)

# What a kind of task means lives here, in one family of methods per kind,
# found by name through ``_sop_kind(kind, verb)`` (as ir.actions.server
# finds ``_run_action_<state>`` through ``_get_runner``):
#
#   _sop_config_<kind>(task_template)  what the engine caches of the task
#                                      template (see SopTaskConfig:
#                                      lead_fields and partner_fields are
#                                      what its tasks watch)
#   _sop_done_<kind>(batch, rows)      {task id: done?} for all the rows of
#                                      the kind in a batch of leads, at once
#   _sop_action_<kind>(task)           what the task's button opens
#   _sop_button_<kind>(task)           which button the task shows (a key of
#                                      crm.sop.task.button), False for none
#   _sop_hint_<kind>(task)             optional: a line telling the rep where
#                                      the task stands (what is missing...)
#   _sop_fill_fields_<kind>(task_template)  optional: the fields of its
#                                      "Fill in" dialog
#
# A new kind is a selection_add on crm.sop.task.template.kind plus these
# methods (a kind without its required ones fails loudly when the registry
# loads); the engine, the panel and the gates need no change.

# verb: required
SOP_KIND_VERBS = {
    "config": True,
    "done": True,
    "action": True,
    "button": True,
    "hint": False,
    "fill_fields": False,
}


class CrmSopTaskKind(models.AbstractModel):
    _name = "crm.sop.task.kind"
    _description = "Sales SOP Task Kinds"

    def _register_hook(self):
        """Every kind of task template has its required methods."""
        res = super()._register_hook()
        kinds = self.env["crm.sop.task.template"]._fields["kind"].get_values(self.env)
        for kind in kinds:
            for verb, required in SOP_KIND_VERBS.items():
                if required:
                    self._sop_kind(kind, verb)
        return res

    @api.model
    def _sop_kind(self, kind, verb):
        """The method of ``kind`` for ``verb`` (a key of SOP_KIND_VERBS);
        None for an optional verb the kind does not have. Fails loudly for a
        required one."""
        method = getattr(self, f"_sop_{verb}_{kind}", None)
        if method is None and SOP_KIND_VERBS[verb]:
            raise NotImplementedError(
                f"Sales SOP task kind {kind!r} has no _sop_{verb}_{kind} method"
            )
        return method

    # ------------------------------------------------------------
    # WHAT THE ENGINE CACHES, AND THE FILL IN DIALOG'S FIELDS
    # ------------------------------------------------------------

    def _sop_config_fields(self, task_template):
        names = tuple(task_template.field_ids.mapped("name"))
        if task_template.scope == "customer":
            return {"partner_fields": names}
        return {"lead_fields": names}

    def _sop_config_condition(self, task_template):
        domain = task_template._sop_config_domain()
        return {
            "domain": domain,
            # what it reads is what it watches
            "lead_fields": tuple(
                sorted({leaf[0] for leaf in domain or () if isinstance(leaf, tuple)})
            ),
        }

    def _sop_fill_fields_fields(self, task_template):
        # sudo: reps cannot read ir.model.fields; the task template itself
        # was checked readable by the caller
        return tuple(task_template.sudo().field_ids.mapped("name"))

    def _sop_fill_fields_condition(self, task_template):
        """Where to act on a condition: the opportunity's fields it reads,
        those a rep can fill."""
        Lead = self.env["crm.lead"]
        return tuple(
            fname
            for fname in sorted(task_template._sop_condition_fields())
            if fname in Lead._fields
            and Lead._fields[fname].store
            and not Lead._fields[fname].readonly
        )

    def _sop_config_script(self, task_template):
        return {"mail_template_id": task_template.mail_template_id.id}

    def _sop_config_activity(self, task_template):
        return {"activity_type_id": task_template.activity_type_id.id}

    def _sop_config_manual(self, task_template):
        return {}

    # ------------------------------------------------------------
    # FIELDS: done when every listed field is set (on the opportunity, or on
    # its customer, shared by the customer's opportunities)
    # ------------------------------------------------------------

    def _sop_done_fields(self, batch, rows):
        # the rows of each set of fields, on the deal or on its customer:
        # each field read once for the batch as the ORM holds it
        # (held_rows), not through a record per row and field (the setup
        # job's 5,000 deals: 15,000 rows, 45,000 reads)
        by_names = defaultdict(list)
        for task_template_id, group in sop_rows_by_template(rows):
            c = batch.config[task_template_id]
            if c.partner_fields:
                by_names[True, c.partner_fields].extend(group)
            else:
                by_names[False, c.lead_fields].extend(group)
        done = {}
        for (on_partner, names), group in by_names.items():
            # in C: 5,000 rows per group in the setup job's batches
            lead_ids = list(dict.fromkeys(map(SOP_ROW_LEAD, group)))
            records = batch.leads[lead_ids[0]].browse(lead_ids)
            # the record each deal's fields are read on: itself or its
            # customer (None without one)
            if on_partner:
                owner = dict(held_rows(records, ("partner_id",)))
                records = records.env["res.partner"].browse(
                    list(dict.fromkeys(filter(None, owner.values())))
                )
            # a task whose fields are all gone checks nothing: never done
            filled = set(records._ids) if names else set()
            for name in names:
                # the records whose value is set, picked in C
                filled.intersection_update(
                    compress(records._ids, held_values(records, name))
                )
            if on_partner:
                # the deals whose customer has them all (None: no customer)
                filled = {
                    lead_id
                    for lead_id, partner_id in owner.items()
                    if partner_id in filled
                }
            done.update(sop_rows_decided(group, "lead_id", filled.__contains__))
        return done

    def _sop_action_fields(self, task):
        """The "Fill in" dialog: the opportunity's (or the customer's) form
        with exactly the task's fields (see crm.sop.record.mixin); "View",
        once the task is done, opens it read-only."""
        task_template = task.task_template_id
        if task_template.scope == "customer":
            record = task.lead_id.partner_id
            if not record:
                raise UserError(
                    self.env._(
                        "Set the customer of “%(lead)s” first: the task “%(task)s” "
                        "collects the customer's data.",
                        lead=task.lead_id.display_name,
                        task=task.name,
                    )
                )
        else:
            record = task.lead_id
        return {
            "type": "ir.actions.act_window",
            "name": task.name,
            "res_model": record._name,
            "res_id": record.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            # the key ends with _view_ref: the web client passes it to get_views
            # and it is part of the view cache key (see crm.sop.record.mixin);
            # once done, "View" opens the same dialog to read
            "context": {
                "sop_fill_view_ref": task_template.id
                if task.state == "todo"
                else f"{task_template.id}{SOP_FILL_VIEW_SUFFIX}"
            },
        }

    def _sop_button_fields(self, task):
        return "fill_in" if task.state == "todo" else "view"

    def _sop_hint_fields(self, task):
        if task.state != "todo":
            return False
        c = (
            self.env["crm.sop.task.template"]
            ._sop_config()
            .get(task.task_template_id.id)
        )
        if c is None:
            return False
        record = task.lead_id.partner_id if c.partner_fields else task.lead_id
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
        done = {}
        for tt_id, group in sop_rows_by_template(rows):
            group = list(group)
            matched = set()
            domain = batch.config[tt_id].domain
            # None: refused by the parser, checks nothing
            if domain is not None:
                ids = list(map(SOP_ROW_LEAD, group))
                leads = batch.leads[ids[0]].browse(ids)
                try:
                    matched = set(leads.filtered_domain(list(domain)).ids)
                except (ValueError, TypeError, KeyError):
                    # checked on save and when cached, but a field may have
                    # changed since: the task stays open rather than breaking
                    # the lead's write
                    _logger.warning(
                        "Sales SOP: condition of task template %s cannot be evaluated",
                        tt_id,
                        exc_info=True,
                    )
            done.update(sop_rows_decided(group, "lead_id", matched.__contains__))
        return done

    def _sop_action_condition(self, task):
        """Where to act: the opportunity's fields the condition reads."""
        if not task.task_template_id._sop_fill_fields():
            return False
        return self._sop_action_fields(task)

    def _sop_button_condition(self, task):
        if not task.task_template_id._sop_fill_fields():
            return False
        return "fill_in" if task.state == "todo" else "view"

    def _sop_hint_condition(self, task):
        return task.task_template_id._sop_condition_words()

    # ------------------------------------------------------------
    # SCRIPT: done once the script (a mail template) was sent to the customer
    # ------------------------------------------------------------

    def _sop_done_script(self, batch, rows):
        return sop_rows_decided(rows, "date_script_sent", bool)

    def _sop_action_script(self, task):
        """One click: the script goes to the customer by email (see
        action_sop_send_script; Copy and Edit first are beside it)."""
        return task.action_sop_send_script()

    def _sop_button_script(self, task):
        return "send" if task.state == "todo" else "send_again"

    def _sop_hint_script(self, task):
        if not task.date_script_sent:
            return False
        return self.env._(
            "Sent on %(date)s",
            date=format_date(self.env, task.date_script_sent),
        )

    # ------------------------------------------------------------
    # ACTIVITY: done once an activity of the type is marked done on the deal
    # ------------------------------------------------------------

    def _sop_done_activity(self, batch, rows):
        """Done once an activity of the type was marked done on the deal, as
        the product recorded it (crm.sop.activity.done); a chatter message
        carrying the activity type proves nothing. A deal being created has
        none (no query)."""
        if batch.created:
            return dict.fromkeys(map(SOP_ROW_ID, rows), False)
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

    def _sop_booked_activity(self, task):
        """The open activity of the task's type on the opportunity, if one is
        booked (the soonest)."""
        activity_type = task.task_template_id.activity_type_id
        return task.lead_id.activity_ids.filtered(
            lambda activity: activity.activity_type_id == activity_type
        ).sorted("date_deadline")[:1]

    def _sop_action_activity(self, task):
        """Open the booked activity, or schedule one of the task's type on
        the opportunity."""
        task._sop_check_lead_access()
        lead = task.lead_id
        booked = self._sop_booked_activity(task)
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
            "name": task.name,
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
                "default_activity_type_id": task.sudo().task_template_id.activity_type_id.id,
            },
        }

    def _sop_button_activity(self, task):
        if task.state != "todo":
            return False
        return "view" if self._sop_booked_activity(task) else "schedule"

    def _sop_hint_activity(self, task):
        booked = task.state == "todo" and self._sop_booked_activity(task)
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
        return sop_rows_decided(rows, "state", "done".__eq__)

    def _sop_action_manual(self, task):
        if task.state == "todo":
            return task.action_sop_mark_done()
        return task.action_sop_reopen()

    def _sop_button_manual(self, task):
        return "mark_done" if task.state == "todo" else "reopen"

from odoo import models
from odoo.exceptions import UserError

from odoo.addons.base.models.ir_model import MODULE_UNINSTALL_FLAG


class IrModelFields(models.Model):
    _inherit = "ir.model.fields"

    def unlink(self):
        # Checked before super(): ir.model.fields.unlink() drops the column and
        # discards the field from the registry before the @api.ondelete hooks
        # run. Uninstalling the module that owns a field still can; the flag
        # is a context key any client can send, so it counts only while the
        # registry loads modules (uninstall), never on a live server.
        uninstalling = self.env.context.get(MODULE_UNINSTALL_FLAG) and not (
            self.pool.ready
        )
        if not uninstalling:
            self._sop_check_unused()
        return super().unlink()

    def _sop_check_unused(self):
        TaskTemplate = self.env["crm.sop.task.template"]
        # sudo: the check covers every playbook, including those of companies
        # the user does not see, so that none is broken by the removal
        task_templates = (
            TaskTemplate.sudo()
            .with_context(active_test=False)
            .search(["|", ("field_ids", "in", self.ids), ("kind", "=", "condition")])
        )
        lead_fields = set(self.filtered(lambda f: f.model == "crm.lead").mapped("name"))
        used = {}
        for task_template in task_templates:
            names = {f.field_description for f in task_template.field_ids & self}
            names |= {
                self._sop_label(fname)
                for fname in task_template._sop_condition_fields() & lead_fields
            }
            if names:
                used[task_template] = names
        if used:
            raise UserError(
                self.env._(
                    "These fields are checked by Sales SOP tasks and cannot be "
                    "removed: %(fields)s (tasks: %(tasks)s). Remove them from "
                    "the tasks first.",
                    fields=", ".join(sorted(set().union(*used.values()))),
                    tasks=", ".join(tt.name for tt in used),
                )
            )

    def _sop_label(self, fname):
        field = self.filtered(lambda f: f.model == "crm.lead" and f.name == fname)
        return field[:1].field_description or fname

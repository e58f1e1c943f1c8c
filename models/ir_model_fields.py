from odoo import models
from odoo.exceptions import UserError

from odoo.addons.base.models.ir_model import MODULE_UNINSTALL_FLAG


class IrModelFields(models.Model):
    _inherit = "ir.model.fields"

    def unlink(self):
        # Checked before super(): ir.model.fields.unlink() drops the column and
        # discards the field from the registry before the @api.ondelete hooks
        # run. Uninstalling the module that owns a field still can.
        if not self.env.context.get(MODULE_UNINSTALL_FLAG):
            self._sop_check_unused()
        return super().unlink()

    def _sop_check_unused(self):
        task_templates = (
            self.env["crm.sop.task.template"]
            .sudo()
            .with_context(active_test=False)
            .search([("field_ids", "in", self.ids)])
        )
        if task_templates:
            raise UserError(
                self.env._(
                    "These fields are checked by Sales SOP tasks and cannot be "
                    "removed: %(fields)s (tasks: %(tasks)s). Remove them from "
                    "the tasks first.",
                    fields=", ".join(
                        (task_templates.field_ids & self).mapped("field_description")
                    ),
                    tasks=", ".join(task_templates.mapped("name")),
                )
            )

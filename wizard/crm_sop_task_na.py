from odoo import fields, models


class CrmSopTaskNa(models.TransientModel):
    """Why a SOP task does not apply to a deal: asked before it is set aside."""

    _name = "crm.sop.task.na"
    _description = "Sales SOP: set a task aside"

    task_ids = fields.Many2many("crm.sop.task", string="Tasks", required=True)
    reason = fields.Char(required=True, help="Logged in the opportunity's chatter.")

    def action_confirm(self):
        self.ensure_one()
        self.task_ids._sop_set_aside(self.reason)
        return {"type": "ir.actions.act_window_close"}

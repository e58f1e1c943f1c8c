from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    sop_reminder_start_offset = fields.Integer(
        string="SOP Reminder After Workday Start",
        default=30,
        help="Minutes after a salesperson's workday starts when the Sales SOP "
        "prompts them with the deals that need them.",
    )
    sop_reminder_end_offset = fields.Integer(
        string="SOP Reminder Before Workday End",
        default=60,
        help="Minutes before a salesperson's workday ends when the Sales SOP "
        "prompts them again, with what they completed today.",
    )

    _sql_constraints = [
        (
            "sop_reminder_offsets_positive",
            "CHECK(sop_reminder_start_offset >= 0 AND sop_reminder_end_offset >= 0)",
            "The Sales SOP reminder offsets cannot be negative.",
        ),
    ]

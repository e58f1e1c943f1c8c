from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    sop_reminder_start_offset = fields.Integer(
        related="company_id.sop_reminder_start_offset", readonly=False
    )
    sop_reminder_end_offset = fields.Integer(
        related="company_id.sop_reminder_end_offset", readonly=False
    )

from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    sop_reminder_start_offset = fields.Integer(
        related="company_id.sop_reminder_start_offset", readonly=False
    )
    sop_reminder_end_offset = fields.Integer(
        related="company_id.sop_reminder_end_offset", readonly=False
    )
    # achievement board
    sop_board_currency_id = fields.Many2one(related="company_id.currency_id")
    sop_high_value_amount = fields.Monetary(
        related="company_id.sop_high_value_amount",
        currency_field="sop_board_currency_id",
        readonly=False,
    )

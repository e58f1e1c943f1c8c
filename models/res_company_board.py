from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    sop_high_value_amount = fields.Monetary(
        string="High-Value Deal From",
        currency_field="currency_id",
        default=50000.0,
        help="Achievement board: a won opportunity whose expected revenue is "
        "at least this amount counts as a high-value customer won.",
    )

from odoo import api, fields, models
from odoo.exceptions import ValidationError


class ResCompany(models.Model):
    _inherit = "res.company"

    sop_high_value_amount = fields.Monetary(
        string="High-Value Deal From",
        currency_field="currency_id",
        default=50000.0,
        help="Achievement board: a won opportunity whose expected revenue is "
        "at least this amount counts as a high-value customer won (0 or more).",
    )

    _sql_constraints = [
        (
            "sop_high_value_amount_positive",
            "CHECK(sop_high_value_amount >= 0)",
            "The high-value deal amount cannot be negative.",
        ),
    ]

    @api.constrains("sop_high_value_amount")
    def _check_sop_high_value_amount(self):
        """A readable refusal before the database's CHECK: a negative amount
        would count every win as a high-value one."""
        for company in self:
            if company.sop_high_value_amount < 0:
                raise ValidationError(
                    self.env._(
                        "The high-value deal amount of %(company)s cannot be "
                        "negative: every won deal would count as a high-value "
                        "one.",
                        company=company.name,
                    )
                )

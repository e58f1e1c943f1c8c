from odoo import api, fields, models
from odoo.exceptions import ValidationError

# the latest a reminder may come after the workday starts (before it ends):
# eight hours, in minutes; past a workday the prompt would never be due
SOP_REMINDER_OFFSET_MAX = 480


class ResCompany(models.Model):
    _inherit = "res.company"

    sop_reminder_start_offset = fields.Integer(
        string="SOP Reminder After Workday Start",
        default=30,
        help="Minutes after a salesperson's workday starts when the Sales SOP "
        "prompts them with the deals that need them (0 to 480).",
    )
    sop_reminder_end_offset = fields.Integer(
        string="SOP Reminder Before Workday End",
        default=60,
        help="Minutes before a salesperson's workday ends when the Sales SOP "
        "prompts them again, with what they completed today (0 to 480).",
    )

    # achievement board
    sop_high_value_amount = fields.Monetary(
        string="High-Value Deal From",
        currency_field="currency_id",
        default=50000.0,
        help="Achievement board: a won opportunity whose expected revenue is "
        "at least this amount counts as a high-value customer won (0 or more).",
    )

    _sql_constraints = [
        (
            "sop_reminder_offsets_positive",
            f"CHECK(sop_reminder_start_offset BETWEEN 0 AND {SOP_REMINDER_OFFSET_MAX}"
            f" AND sop_reminder_end_offset BETWEEN 0 AND {SOP_REMINDER_OFFSET_MAX})",
            "The Sales SOP reminder offsets are from 0 to 480 minutes.",
        ),
        (
            "sop_high_value_amount_positive",
            "CHECK(sop_high_value_amount >= 0)",
            "The high-value deal amount cannot be negative.",
        ),
    ]

    @api.constrains("sop_reminder_start_offset", "sop_reminder_end_offset")
    def _check_sop_reminder_offsets(self):
        """A readable refusal before the database's CHECK."""
        for company in self:
            offsets = (
                company.sop_reminder_start_offset,
                company.sop_reminder_end_offset,
            )
            if not all(0 <= offset <= SOP_REMINDER_OFFSET_MAX for offset in offsets):
                raise ValidationError(
                    self.env._(
                        "The Sales SOP reminders of %(company)s come from 0 to "
                        "%(max)s minutes after the workday starts and before it "
                        "ends, not %(start)s and %(end)s.",
                        company=company.name,
                        max=SOP_REMINDER_OFFSET_MAX,
                        start=offsets[0],
                        end=offsets[1],
                    )
                )

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

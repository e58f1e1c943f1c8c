from odoo import fields, models


class CrmSopTask(models.Model):
    """My SOP Day: a salesperson's open tasks across all their deals, in the
    order of the reminder digest (stalled deals first, then what is at
    stake). The deal's values are read through ``lead_id`` (not stored on
    the task: millions of rows, and core writes leads one by one), which
    Odoo 18 also orders by in SQL."""

    _inherit = "crm.sop.task"

    lead_stalled = fields.Boolean(related="lead_id.sop_stalled", string="Stalled")
    lead_prorated_revenue = fields.Monetary(
        related="lead_id.prorated_revenue",
        string="At Stake",
        currency_field="lead_currency_id",
    )
    lead_currency_id = fields.Many2one(related="lead_id.company_currency")
    lead_date_deadline = fields.Date(
        related="lead_id.date_deadline", string="Expected Closing"
    )

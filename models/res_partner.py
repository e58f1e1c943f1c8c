from odoo import fields, models


class ResPartner(models.Model):
    _inherit = ["res.partner", "crm.sop.record.mixin"]
    _name = "res.partner"

    sop_opportunity_ids = fields.One2many(
        "crm.lead",
        "partner_id",
        string="Opportunities (SOP)",
        domain=[("sop_template_id", "!=", False)],
    )

    def write(self, vals):
        watched, before = self._sop_watch(vals)
        res = super().write(vals)
        changed = self._sop_watch_changed(watched, before)
        if changed:
            # sudo: the customer's data is shared by all its opportunities,
            # including those of other reps; only task states are derived
            leads = (
                self.env["crm.lead"]
                .sudo()
                .search(
                    [
                        ("partner_id", "in", changed.ids),
                        ("sop_template_id", "!=", False),
                    ]
                )
            )
            # inside a deal's write (its phone or email is its customer's),
            # evaluated with the deal's own changes once that write is done
            self.env["crm.sop.engine"]._sop_evaluate_or_gather(leads)
        return res

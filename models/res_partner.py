from collections import defaultdict

from odoo import Command, fields, models


class ResPartner(models.Model):
    _inherit = ["res.partner", "crm.sop.record.mixin"]
    _name = "res.partner"

    # computed, not a one2many on the deals' customer: the ORM keeps a
    # one2many's inverse in its cache up to date on every deal created or
    # given another customer, whoever never opens a customer (an import of
    # 1,000 deals: some 1,500 steps of Python per deal)
    sop_opportunity_ids = fields.Many2many(
        "crm.lead",
        string="Opportunities (SOP)",
        compute="_compute_sop_opportunity_ids",
    )

    def _compute_sop_opportunity_ids(self):
        """The customer's opportunities that follow a playbook, as the
        current user may read them (record rules), in the deals' order."""
        ids = [partner_id for partner_id in self._origin.ids if partner_id]
        by_partner = defaultdict(list)
        if ids:
            leads = self.env["crm.lead"].search(
                [("partner_id", "in", ids), ("sop_template_id", "!=", False)]
            )
            for lead in leads:
                by_partner[lead.partner_id.id].append(lead.id)
        for partner in self:
            partner.sop_opportunity_ids = [
                Command.set(by_partner.get(partner._origin.id, []))
            ]

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

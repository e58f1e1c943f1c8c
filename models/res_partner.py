from lxml import etree

from odoo import api, fields, models


class ResPartner(models.Model):
    _inherit = ["res.partner", "crm.sop.record.mixin"]
    _name = "res.partner"

    sop_gender = fields.Selection(
        [("female", "Female"), ("male", "Male"), ("other", "Other")],
        string="Gender",
    )
    sop_age_range = fields.Selection(
        [
            ("under_25", "Under 25"),
            ("25_34", "25-34"),
            ("35_44", "35-44"),
            ("45_54", "45-54"),
            ("55_plus", "55 and over"),
        ],
        string="Age Range",
    )
    sop_opportunity_ids = fields.One2many(
        "crm.lead",
        "partner_id",
        string="Opportunities (SOP)",
        domain=[("sop_template_id", "!=", False)],
    )

    @api.model
    def _get_view(self, view_id=None, view_type="form", **options):
        arch, view = super()._get_view(view_id, view_type, **options)
        if view_type == "form":
            self._sop_add_profile_fields(arch)
        return arch, view

    @api.model
    def _sop_add_profile_fields(self, arch):
        """Customer centre: the profile group shows every customer field that
        the active playbooks collect and the form does not show elsewhere (the
        view cache is cleared when task templates change)."""
        for group in arch.xpath("//group[@name='sop_profile']"):
            for fname in self._sop_customer_field_names():
                if fname in self._fields and not arch.xpath(
                    f"//field[@name='{fname}']"
                ):
                    etree.SubElement(group, "field", name=fname)

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
            self.env["crm.sop.engine"]._sop_evaluate(leads)
        return res

    @api.model
    def _sop_customer_field_names(self):
        """Partner fields the active playbooks collect (customer centre)."""
        return sorted(
            self.env["crm.sop.task.template"]._sop_watched_fields("res.partner")
        )

from odoo import api, models
from odoo.exceptions import ValidationError


class MailActivityType(models.Model):
    _inherit = "mail.activity.type"

    @api.constrains("res_model")
    def _check_sop_res_model(self):
        """An activity type checked by a Sales SOP task stays usable on
        opportunities."""
        moved = self.filtered(lambda atype: atype.res_model not in (False, "crm.lead"))
        if not moved:
            return
        used = self.env["crm.sop.task.template"]._sop_used_by("activity_type_id", moved)
        if used:
            raise ValidationError(
                self.env._(
                    "The activity type “%(type)s” is checked by Sales SOP tasks "
                    "(%(tasks)s): it must stay usable on Lead/Opportunity.",
                    type=used[0].activity_type_id.name,
                    tasks=", ".join(used.mapped("name")),
                )
            )

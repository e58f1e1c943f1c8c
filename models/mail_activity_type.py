from odoo import api, models


class MailActivityType(models.Model):
    _inherit = "mail.activity.type"

    @api.constrains("res_model")
    def _check_sop_res_model(self):
        """An activity type checked by a Sales SOP task stays usable on
        opportunities."""
        self.env["crm.sop.task.template"]._sop_check_kept_on_leads(
            "activity_type_id",
            self.filtered(lambda atype: atype.res_model not in (False, "crm.lead")),
            self.env._(
                "The activity type “%(record)s” is checked by Sales SOP tasks "
                "(%(tasks)s): it must stay usable on Lead/Opportunity."
            ),
        )

from odoo import api, models


class MailTemplate(models.Model):
    _inherit = "mail.template"

    @api.constrains("model_id")
    def _check_sop_script_model(self):
        """A script of a Sales SOP task stays a template of opportunities."""
        self.env["crm.sop.task.template"]._sop_check_kept_on_leads(
            "mail_template_id",
            self.filtered(lambda template: template.model != "crm.lead"),
            self.env._(
                "The template “%(record)s” is the script of Sales SOP tasks "
                "(%(tasks)s): it must stay a template of Lead/Opportunity."
            ),
        )

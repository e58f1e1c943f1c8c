from odoo import api, models
from odoo.exceptions import ValidationError


class MailTemplate(models.Model):
    _inherit = "mail.template"

    @api.constrains("model_id")
    def _check_sop_script_model(self):
        """A script of a Sales SOP task stays a template of opportunities."""
        moved = self.filtered(lambda template: template.model != "crm.lead")
        if not moved:
            return
        used = self.env["crm.sop.task.template"]._sop_used_by("mail_template_id", moved)
        if used:
            raise ValidationError(
                self.env._(
                    "The template “%(template)s” is the script of Sales SOP tasks "
                    "(%(tasks)s): it must stay a template of Lead/Opportunity.",
                    template=used[0].mail_template_id.name,
                    tasks=", ".join(used.mapped("name")),
                )
            )

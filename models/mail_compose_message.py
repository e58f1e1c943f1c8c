from odoo import models


class MailComposeMessage(models.TransientModel):
    _inherit = "mail.compose.message"

    def _action_send_mail(self, auto_commit=False):
        result = super()._action_send_mail(auto_commit=auto_commit)
        Task = self.env["crm.sop.task"]
        for composer in self:
            if (
                composer.model != "crm.lead"
                or not composer.template_id
                or composer.subtype_is_log
            ):
                continue
            leads = self.env["crm.lead"].browse(composer._evaluate_res_ids())
            Task._sop_script_sent(
                leads,
                composer.template_id,
                task_id=self.env.context.get("sop_task_id"),
            )
        return result

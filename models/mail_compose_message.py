from odoo import models


class MailComposeMessage(models.TransientModel):
    _inherit = "mail.compose.message"

    def _action_send_mail(self, auto_commit=False):
        result_mails_su, result_messages = super()._action_send_mail(
            auto_commit=auto_commit
        )
        # a script counts only where it reached someone: a message posted to
        # nobody (a walk-in with no email) is not a script sent
        reached = {
            message.res_id
            for message in result_messages.sudo()  # sudo: recipients only
            if message.model == "crm.lead"
            and message.partner_ids.filtered(
                lambda partner, message=message: (
                    partner.email and partner != message.author_id
                )
            )
        } | {
            mail.res_id
            for mail in result_mails_su
            if mail.model == "crm.lead"
            and (mail.recipient_ids.filtered("email") or mail.email_to)
        }
        Send = self.env["crm.sop.script.send"]
        task_id = self.env.context.get("sop_task_id")
        if not isinstance(task_id, int) or isinstance(task_id, bool):
            task_id = None
        script_ids = {
            c.mail_template_id
            for c in self.env["crm.sop.task.template"]._sop_config().values()
            if c.kind == "script"
        }
        for composer in self:
            template = composer.template_id
            if (
                composer.model != "crm.lead"
                or not template
                or not (template.sop_is_script or template.id in script_ids)
                or composer.subtype_is_log
            ):
                continue
            leads = self.env["crm.lead"].browse(
                [res_id for res_id in composer._evaluate_res_ids() if res_id in reached]
            )
            Send._sop_record(
                leads,
                template,
                "email",
                task_id=task_id,
            )
        return result_mails_su, result_messages

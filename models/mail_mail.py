from odoo import models
from odoo.tools import email_normalize_all

from .crm_sop_script_send import MAIL_DELIVERY


class MailMail(models.Model):
    _inherit = "mail.mail"

    def _postprocess_sent_message(
        self, success_pids, failure_reason=False, failure_type=None
    ):
        # a script sent by mass mailing has no notification: its send follows
        # the mail's state, read before a delivered mail is deleted
        # (auto_delete)
        mails = self.filtered(lambda mail: mail.model == "crm.lead")
        if mails and self.env.context.get("sop_script_mails"):
            # sent right away by the composer of a script (see
            # mail.compose.message._sop_script_carriers), which reads them
            outcomes = self.env.cr.precommit.data.setdefault("crm_sop.script_mails", {})
            for mail in mails:
                outcomes[mail.id] = {
                    "res_id": mail.res_id,
                    "partner_ids": set(mail.recipient_ids.ids),
                    "emails": set(email_normalize_all(mail.email_to or "")),
                    "state": MAIL_DELIVERY.get(mail.state, "outgoing"),
                }
        if mails:
            # sudo: the engine follows what mail recorded (see
            # crm.sop.script.send._sop_delivery_sync)
            self.env["crm.sop.script.send"].sudo().search(
                [("mail_mail_id", "in", mails.ids)]
            )._sop_delivery_sync()
        return super()._postprocess_sent_message(
            success_pids, failure_reason=failure_reason, failure_type=failure_type
        )

from odoo import models
from odoo.tools import email_normalize_all


class MailComposeMessage(models.TransientModel):
    _inherit = "mail.compose.message"

    def _action_send_mail(self, auto_commit=False):
        script_ids = {
            c.mail_template_id
            for c in self.env["crm.sop.task.template"]._sop_config().values()
            if c.kind == "script"
        }
        composers = self.filtered(
            lambda composer: (
                composer.model == "crm.lead"
                and composer.template_id
                and (
                    composer.template_id.sop_is_script
                    or composer.template_id.id in script_ids
                )
                and not composer.subtype_is_log
            )
        )
        if not composers:
            return super()._action_send_mail(auto_commit=auto_commit)
        # a mass mailing of a script sent right away: its mails are read
        # before a delivered one is deleted (mail.mail)
        result_mails_su, result_messages = super(
            MailComposeMessage, self.with_context(sop_script_mails=True)
        )._action_send_mail(auto_commit=auto_commit)
        carriers = self._sop_script_carriers(result_mails_su, result_messages)
        Send = self.env["crm.sop.script.send"]
        task_id = self.env.context.get("sop_task_id")
        if not isinstance(task_id, int) or isinstance(task_id, bool):
            task_id = None
        for composer in composers:
            leads = self.env["crm.lead"].browse(
                [
                    res_id
                    for res_id in composer._evaluate_res_ids()
                    if res_id in carriers
                ]
            )
            Send._sop_record(
                leads,
                composer.template_id,
                "email",
                task_id=task_id,
                carriers=carriers,
            )
        return result_mails_su, result_messages

    def _sop_script_carriers(self, mails_su, messages):
        """{lead id: (message id, mail id, delivery or None)}: what carries
        a script to the deal's customer. A script counts only where its
        customer is among the recipients (notified of the message, or
        addressed by the mass mailing's email): a message to a colleague or
        to nobody is no script sent."""
        messages = messages.sudo()  # sudo: recipients only
        outcomes = self.env.cr.precommit.data.get("crm_sop.script_mails", {})
        alive = mails_su.exists()
        lead_ids = (
            {m.res_id for m in messages if m.model == "crm.lead"}
            | {mail.res_id for mail in alive if mail.model == "crm.lead"}
            | {
                outcomes[mail_id]["res_id"]
                for mail_id in mails_su.ids
                if mail_id in outcomes
            }
        )
        # sudo: the customers of the deals just written to
        leads = self.env["crm.lead"].sudo().browse(lead_ids)
        leads.fetch(["partner_id"])
        customer = {lead.id: lead.partner_id for lead in leads}
        carriers = {}
        if messages:
            # sudo: mail.notification is mail's own record of the recipients
            notified = {
                (n.mail_message_id.id, n.res_partner_id.id)
                for n in self.env["mail.notification"]
                .sudo()
                .search_fetch(
                    [
                        ("mail_message_id", "in", messages.ids),
                        (
                            "res_partner_id",
                            "in",
                            [p.id for p in customer.values() if p],
                        ),
                    ],
                    ["mail_message_id", "res_partner_id"],
                )
            }
            for message in messages:
                partner = (
                    customer.get(message.res_id)
                    if message.model == "crm.lead"
                    else None
                )
                if partner and (message.id, partner.id) in notified:
                    carriers[message.res_id] = (message.id, False, None)
        # a mass mailing sent right away: its mails were read before a
        # delivered one is deleted (mail.mail._postprocess_sent_message)
        alive_ids = set(alive.ids)
        for mail_id in mails_su.ids:
            if mail_id in alive_ids:
                mail = alive.browse(mail_id)
                values = {
                    "res_id": mail.res_id if mail.model == "crm.lead" else None,
                    "partner_ids": set(mail.recipient_ids.ids),
                    "emails": set(email_normalize_all(mail.email_to or "")),
                    "state": None,  # read from the mail
                }
                carrier = (mail.mail_message_id.id, mail.id, None)
            elif mail_id in outcomes:
                values = outcomes[mail_id]
                carrier = (False, False, values["state"])
            else:
                continue
            partner = customer.get(values["res_id"])
            if not partner or values["res_id"] in carriers:
                continue
            if partner.id in values["partner_ids"] or (
                partner.email_normalized
                and partner.email_normalized in values["emails"]
            ):
                carriers[values["res_id"]] = carrier
        return carriers

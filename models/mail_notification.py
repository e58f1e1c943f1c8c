from odoo import models


class MailNotification(models.Model):
    _inherit = "mail.notification"

    def write(self, vals):
        res = super().write(vals)
        if "notification_status" in vals:
            # a script send follows the delivery of its message
            # (crm.sop.script.send._sop_delivery_sync, at commit)
            self.env["crm.sop.script.send"]._sop_delivery_later(
                self.mail_message_id.ids
            )
        return res

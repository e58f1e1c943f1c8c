from odoo import models


class MailActivity(models.Model):
    _inherit = "mail.activity"

    def _action_done(self, feedback=False, attachment_ids=None):
        config = self.env["crm.sop.task.template"]._sop_config()
        activity_types = {
            c.activity_type_id for c in config.values() if c.kind == "activity"
        }
        lead_ids = {
            activity.res_id
            for activity in self
            if activity.res_model == "crm.lead"
            and activity.activity_type_id.id in activity_types
        }
        res = super()._action_done(feedback=feedback, attachment_ids=attachment_ids)
        if lead_ids:
            self.env["crm.sop.task"]._sop_evaluate(
                self.env["crm.lead"].browse(lead_ids).exists()
            )
        return res

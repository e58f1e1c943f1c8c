from odoo import models


class MailActivity(models.Model):
    _inherit = "mail.activity"

    def _action_done(self, feedback=False, attachment_ids=None):
        """The product records each activity marked done on an opportunity
        (``crm.sop.activity.done``), whatever its type: a task of that type
        added later finds it. The opportunities of watched types are then
        evaluated."""
        done = [
            (activity.res_id, activity.activity_type_id.id)
            for activity in self
            if activity.res_model == "crm.lead"
            and activity.res_id
            and activity.activity_type_id
        ]
        res = super()._action_done(feedback=feedback, attachment_ids=attachment_ids)
        if done:
            self.env["crm.sop.activity.done"]._sop_record(done)
            config = self.env["crm.sop.task.template"]._sop_config()
            watched = {
                c.activity_type_id for c in config.values() if c.kind == "activity"
            }
            lead_ids = {lead_id for lead_id, type_id in done if type_id in watched}
            if lead_ids:
                self.env["crm.sop.engine"]._sop_evaluate(
                    self.env["crm.lead"].browse(lead_ids).exists()
                )
        return res

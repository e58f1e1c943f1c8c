from odoo import models


class CrmTeam(models.Model):
    _inherit = "crm.team"

    def unlink(self):
        res = super().unlink()
        # the team's deals now have none: their history counts go with them
        # (ondelete) and are counted anew where they now belong (by a job,
        # soon after)
        self.env["crm.sop.history.count"]._sop_mark_all()
        # the review facts copy the team of each deal
        self.env["crm.sop.task.fact"]._sop_forget("team_id", self.ids)
        return res

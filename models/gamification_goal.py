from odoo import models


class GamificationGoal(models.Model):
    _inherit = "gamification.goal"

    def update_goal(self):
        """Goals of the board's python-mode definitions (high-value customers
        won, SOP adherence) are computed here in one query per definition and
        period, with the board's own computation; core evaluates python code
        once per goal. The other goals go to core."""
        sop_goals = self.filtered(
            lambda goal: (
                goal.definition_id.sop_board_metric
                and goal.definition_id.computation_mode == "python"
            )
        )
        if sop_goals:
            self.env["crm.sop.board"]._sop_update_goals(sop_goals)
        return super(GamificationGoal, self - sop_goals).update_goal()

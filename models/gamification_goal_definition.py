from odoo import fields, models


class GamificationGoalDefinition(models.Model):
    _inherit = "gamification.goal.definition"

    sop_board_metric = fields.Selection(
        [
            ("won_revenue", "Won revenue"),
            ("high_value_won", "High-value customers won"),
            ("tasks_done", "SOP tasks completed"),
            ("adherence", "SOP adherence"),
        ],
        string="Achievement Board Metric",
        readonly=True,
        help="Set on the goal definitions of the Sales SOP achievement board. "
        "With the computation mode 'python', the goals of such a definition "
        "are computed in batch by crm.sop.board, the same computation as the "
        "board's.",
    )

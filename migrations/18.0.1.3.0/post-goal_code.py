from odoo import SUPERUSER_ID, api

OLD_CODE = "result = env['crm.sop.board']._sop_goal_value(object)"
NEW_CODE = "result = env['crm.sop.board']._sop_goal_values(object)[object.id]"


def migrate(cr, version):
    """The board's python goal definitions (noupdate data) called
    ``crm.sop.board._sop_goal_value``, which is gone: their goals are computed
    in batch by ``gamification.goal.update_goal``; the code, kept for what it
    says, calls the batch method. Definitions a manager changed are left
    alone."""
    env = api.Environment(cr, SUPERUSER_ID, {})
    definitions = env["gamification.goal.definition"].search(
        [("sop_board_metric", "!=", False), ("compute_code", "=", OLD_CODE)]
    )
    definitions.write({"compute_code": NEW_CODE})

from odoo import api, fields, models
from odoo.tools import SQL


class CrmSopGatePass(models.Model):
    """A sales manager let an opportunity past a blocking SOP gate with
    required tasks open: the pass holds for that deal and that gate (its SOP
    stage), so the next move of the deal is not stopped by it again. Written
    by the engine only (crm.sop.engine, STAGE GATES)."""

    _name = "crm.sop.gate.pass"
    _description = "Sales SOP Gate Passed"
    _inherit = ["crm.sop.engine.record"]
    _order = "date desc, id desc"
    _log_access = False

    lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        required=True,
        ondelete="cascade",
        readonly=True,
    )
    sop_stage_id = fields.Many2one(
        "crm.sop.stage",
        string="SOP Stage",
        required=True,
        ondelete="cascade",
        readonly=True,
    )
    user_id = fields.Many2one("res.users", string="Passed By", readonly=True)
    date = fields.Datetime(string="Passed On", readonly=True)
    company_id = fields.Many2one(related="lead_id.company_id")

    _sql_constraints = [
        (
            "lead_stage_uniq",
            "UNIQUE(lead_id, sop_stage_id)",
            "A gate is passed once per opportunity.",
        ),
    ]

    def _sop_engine_only_message(self):
        return self.env._(
            "Only the Sales SOP engine records a manager's pass of a gate: "
            "move the opportunity as a sales manager instead."
        )

    @api.model
    def _sop_record(self, passes):
        """Record the passes [(lead id, SOP stage id)] of the current user in
        one statement (a pass already there stays as it was)."""
        self.env.cr.execute(
            SQL(
                """INSERT INTO crm_sop_gate_pass (lead_id, sop_stage_id, user_id, date)
                   SELECT p.lead_id, p.stage_id, %s, %s
                     FROM (VALUES %s) AS p(lead_id, stage_id)
                   ON CONFLICT (lead_id, sop_stage_id) DO NOTHING""",
                self.env.uid,
                self.env.cr.now(),
                SQL(", ").join(
                    SQL("(%s, %s)", lead_id, stage_id) for lead_id, stage_id in passes
                ),
            )
        )
        self.invalidate_model()

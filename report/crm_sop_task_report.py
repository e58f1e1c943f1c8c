from odoo import fields, models, tools
from odoo.tools import SQL

from ..models.crm_sop_deal import SOP_LOST_SQL, SOP_WON_SQL
from ..models.crm_sop_stage_move import SOP_ADHERED_SQL, SOP_ADHERENCE_COUNTED_SQL

LEAD_DEPENDS = [
    "active",
    "probability",
    "type",
    "stage_id",
    "user_id",
    "team_id",
    "company_id",
    "date_closed",
    "create_date",
    "sop_template_id",
]


class CrmSopTaskReport(models.Model):
    """Does a SOP task help win? One row per applicable SOP task (active, not
    set aside) of an opportunity, in two populations that share the view:

    - **closed, reached**: the opportunity is closed (won: active in a won
      stage; lost: archived at probability 0, as predictive lead scoring
      counts them) and reached the task's SOP stage: it is won, or it stood
      (now, or in any recorded pipeline stage move, crm.sop.stage.move,
      from or to)
      in a pipeline stage ordered (sequence, id) at or after the pipeline
      stage of the task's SOP stage. Done rate, won rates and lift read
      these rows.
    - **stage left**: the task is required and the opportunity (open or
      closed) moved past its SOP stage: ``date_left`` is the first recorded
      move into a pipeline stage ordered after the task's. Adherence reads
      these rows: done no later than ``date_left``. Both come from the one
      definition the achievement board reads too
      (crm.sop.stage.move: ``_sop_left_at_sql``, ``SOP_ADHERENCE_COUNTED_SQL``,
      ``SOP_ADHERED_SQL``), row by row.

    Each rate is a column of 0 / 100 for the rows of its population and NULL
    elsewhere, aggregated with AVG (which skips NULL): the average of a
    group is exactly its rate, however the pivot groups. The lift (won rate
    when done minus when not done) is a difference of two averages, computed
    per group in ``_read_group_select``.
    """

    _name = "crm.sop.task.report"
    _description = "Sales SOP Task Analysis"
    _auto = False
    _rec_name = "task_template_id"
    _order = "date_closed desc, id desc"
    # what the view reads: flushed before a search or read_group on it
    _depends = {
        "crm.sop.task": [
            "lead_id",
            "task_template_id",
            "stage_id",
            "state",
            "date_done",
            "active",
        ],
        "crm.sop.task.template": ["required"],
        "crm.sop.stage": ["template_id", "crm_stage_id"],
        "crm.lead": LEAD_DEPENDS,
        "crm.stage": ["sequence", "is_won"],
        "crm.sop.stage.move": ["lead_id", "stage_from_id", "stage_id", "date"],
    }

    task_template_id = fields.Many2one(
        "crm.sop.task.template", string="SOP Task", readonly=True
    )
    sop_stage_id = fields.Many2one("crm.sop.stage", string="SOP Stage", readonly=True)
    template_id = fields.Many2one("crm.sop.template", string="Playbook", readonly=True)
    lead_id = fields.Many2one("crm.lead", string="Opportunity", readonly=True)
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    date_closed = fields.Datetime(string="Closed On", readonly=True)
    lead_create_date = fields.Datetime(string="Opportunity Created On", readonly=True)
    date_done = fields.Datetime(string="Done On", readonly=True)
    date_left = fields.Datetime(
        string="Stage Left On",
        readonly=True,
        help="First time the opportunity moved into a pipeline stage after "
        "the task's (required tasks only).",
    )
    required = fields.Boolean(readonly=True)
    done = fields.Boolean(readonly=True)
    won = fields.Boolean(readonly=True)
    reached = fields.Boolean(
        string="Closed, Stage Reached",
        readonly=True,
        help="The opportunity is closed and reached the task's SOP stage: "
        "the row counts in the done rate, won rates and lift.",
    )

    closed_count = fields.Integer(string="Closed Deals", readonly=True)
    done_count = fields.Integer(string="Closed Deals, Done", readonly=True)
    not_done_count = fields.Integer(string="Closed Deals, Not Done", readonly=True)
    won_done_count = fields.Integer(string="Won Deals, Done", readonly=True)
    won_not_done_count = fields.Integer(string="Won Deals, Not Done", readonly=True)
    done_rate = fields.Float(
        string="Done Rate (%)",
        aggregator="avg",
        readonly=True,
        help="Closed deals that reached the task's stage and did the task, "
        "of those that reached it (tasks set aside are not counted).",
    )
    won_rate_done = fields.Float(
        string="Won Rate When Done (%)", aggregator="avg", readonly=True
    )
    won_rate_not_done = fields.Float(
        string="Won Rate When Not Done (%)", aggregator="avg", readonly=True
    )
    lift = fields.Float(
        string="Lift (points)",
        aggregator="avg",
        readonly=True,
        help="Won rate when done minus won rate when not done, in points.",
    )
    adherence_count = fields.Integer(string="Required Tasks Counted", readonly=True)
    adhered_count = fields.Integer(string="Required Tasks Done in Time", readonly=True)
    adherence = fields.Float(
        string="Adherence (%)",
        aggregator="avg",
        readonly=True,
        help="Required tasks done no later than the opportunity left their "
        "SOP stage, of the required tasks whose stage it left.",
    )

    def _read_group_select(self, aggregate_spec, query):
        """The lift of a group: the difference of its two won rates."""
        if aggregate_spec.split(":")[0] == "lift":
            return SQL(
                "AVG(%s) - AVG(%s)",
                self._field_to_sql(self._table, "won_rate_done", query),
                self._field_to_sql(self._table, "won_rate_not_done", query),
            )
        return super()._read_group_select(aggregate_spec, query)

    def _sop_query(self):
        return SQL(
            """
            WITH sop_stages AS (
                -- the pipeline stages SOP stages belong to
                SELECT DISTINCT ps.id, ps.sequence
                  FROM crm_sop_stage ss
                  JOIN crm_stage ps ON ps.id = ss.crm_stage_id
            ), left_at AS (
                %(left_at)s
            ), reached_at AS (
                -- the SOP ones a lead stood in or after, moving from or to
                -- (a deal created in a stage and never moved stands in it now)
                SELECT DISTINCT mv.lead_id, p.id AS crm_stage_id
                  FROM crm_sop_stage_move mv
                  JOIN crm_stage ms ON ms.id IN (mv.stage_from_id, mv.stage_id)
                  JOIN sop_stages p ON (ms.sequence, ms.id) >= (p.sequence, p.id)
                 WHERE mv.stage_from_id IS NOT NULL
            ), tasks AS (
                SELECT t.id, t.lead_id, t.task_template_id,
                       t.stage_id AS sop_stage_id, ss.template_id,
                       tt.required, t.state = 'done' AS done, t.date_done,
                       l.user_id, l.team_id, l.company_id, l.date_closed,
                       l.create_date AS lead_create_date,
                       %(won)s AS won,
                       (l.type = 'opportunity' AND (%(won)s OR %(lost)s) AND (
                           %(won)s
                           OR (s.sequence, s.id) >= (ps.sequence, ps.id)
                           OR ra.lead_id IS NOT NULL
                       )) IS TRUE AS reached,
                       la.date_left, %(adhered)s AS adhered
                  FROM crm_sop_task t
                  JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
                  JOIN crm_sop_stage ss ON ss.id = t.stage_id
                  JOIN crm_lead l ON l.id = t.lead_id
             LEFT JOIN crm_stage s ON s.id = l.stage_id
             LEFT JOIN crm_stage ps ON ps.id = ss.crm_stage_id
             LEFT JOIN left_at la
                    ON la.lead_id = t.lead_id AND la.crm_stage_id = ss.crm_stage_id
                   AND %(counted)s
             LEFT JOIN reached_at ra
                    ON ra.lead_id = t.lead_id AND ra.crm_stage_id = ss.crm_stage_id
                 WHERE t.active AND t.state != 'na'
            )
            SELECT id, lead_id, task_template_id, sop_stage_id, template_id,
                   required, done, won, reached, date_done, date_left,
                   user_id, team_id, company_id, date_closed, lead_create_date,
                   CASE WHEN reached THEN 1 ELSE 0 END AS closed_count,
                   CASE WHEN reached AND done THEN 1 ELSE 0 END AS done_count,
                   CASE WHEN reached AND NOT done THEN 1 ELSE 0 END AS not_done_count,
                   CASE WHEN reached AND done AND won THEN 1 ELSE 0 END
                       AS won_done_count,
                   CASE WHEN reached AND NOT done AND won THEN 1 ELSE 0 END
                       AS won_not_done_count,
                   CASE WHEN reached THEN CASE WHEN done THEN 100.0 ELSE 0.0 END END
                       AS done_rate,
                   CASE WHEN reached AND done THEN CASE WHEN won THEN 100.0 ELSE 0.0 END
                   END AS won_rate_done,
                   CASE WHEN reached AND NOT done THEN
                       CASE WHEN won THEN 100.0 ELSE 0.0 END
                   END AS won_rate_not_done,
                   NULL::double precision AS lift,
                   CASE WHEN date_left IS NOT NULL THEN 1 ELSE 0 END AS adherence_count,
                   CASE WHEN adhered THEN 1 ELSE 0 END AS adhered_count,
                   CASE WHEN date_left IS NOT NULL THEN
                       CASE WHEN adhered THEN 100.0 ELSE 0.0 END
                   END AS adherence
              FROM tasks
             WHERE reached OR date_left IS NOT NULL
            """,
            won=SQL(SOP_WON_SQL),
            lost=SQL(SOP_LOST_SQL),
            # adherence as the achievement board counts it
            left_at=self.env["crm.sop.stage.move"]._sop_left_at_sql(),
            counted=SQL(SOP_ADHERENCE_COUNTED_SQL),
            adhered=SQL(SOP_ADHERED_SQL),
        )

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                "CREATE OR REPLACE VIEW %s AS (%s)",
                SQL.identifier(self._table),
                self._sop_query(),
            )
        )

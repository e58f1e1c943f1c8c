from odoo import fields, models, tools
from odoo.tools import SQL

from ..models.crm_sop_task_fact import SOP_FACT_COLUMNS

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

    The rows are decided once, as deals change, and kept in
    ``crm.sop.task.fact`` (the report selects from it: ``_select``,
    ``_from``, ``_where``, as core's reports are written, so that another
    addon extends them): a pivot over 100,000 deals reads a table instead of
    deciding every task's rows on each read.

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
    _depends = {"crm.sop.task.fact": list(SOP_FACT_COLUMNS)}

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

    def _select(self):
        return SQL(
            """SELECT f.task_id AS id, f.lead_id, f.task_template_id,
                   f.sop_stage_id, f.template_id, f.required, f.done, f.won,
                   f.reached, f.date_done, f.date_left, f.user_id, f.team_id,
                   f.company_id, f.date_closed, f.lead_create_date,
                   CASE WHEN f.reached THEN 1 ELSE 0 END AS closed_count,
                   CASE WHEN f.reached AND f.done THEN 1 ELSE 0 END AS done_count,
                   CASE WHEN f.reached AND NOT f.done THEN 1 ELSE 0 END
                       AS not_done_count,
                   CASE WHEN f.reached AND f.done AND f.won THEN 1 ELSE 0 END
                       AS won_done_count,
                   CASE WHEN f.reached AND NOT f.done AND f.won THEN 1 ELSE 0 END
                       AS won_not_done_count,
                   CASE WHEN f.reached THEN
                       CASE WHEN f.done THEN 100.0 ELSE 0.0 END
                   END AS done_rate,
                   CASE WHEN f.reached AND f.done THEN
                       CASE WHEN f.won THEN 100.0 ELSE 0.0 END
                   END AS won_rate_done,
                   CASE WHEN f.reached AND NOT f.done THEN
                       CASE WHEN f.won THEN 100.0 ELSE 0.0 END
                   END AS won_rate_not_done,
                   NULL::double precision AS lift,
                   CASE WHEN f.date_left IS NOT NULL THEN 1 ELSE 0 END
                       AS adherence_count,
                   CASE WHEN f.adhered THEN 1 ELSE 0 END AS adhered_count,
                   CASE WHEN f.date_left IS NOT NULL THEN
                       CASE WHEN f.adhered THEN 100.0 ELSE 0.0 END
                   END AS adherence"""
        )

    def _from(self):
        # the facts the engine keeps (crm.sop.task.fact: the one definition
        # of reached, left and adhered)
        return SQL("FROM crm_sop_task_fact f")

    def _where(self):
        return SQL("WHERE f.reached OR f.date_left IS NOT NULL")

    def _sop_query(self):
        return SQL("%s %s %s", self._select(), self._from(), self._where())

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                "CREATE OR REPLACE VIEW %s AS (%s)",
                SQL.identifier(self._table),
                self._sop_query(),
            )
        )

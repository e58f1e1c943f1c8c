from odoo import fields, models, tools
from odoo.tools import SQL

from ..models.crm_sop_deal import SOP_LOST_SQL, SOP_WON_SQL
from .crm_sop_task_report import LEAD_DEPENDS

# Weekdays (Monday to Friday) after day d1 up to day d2 included, in closed
# form (no series per row): whole weeks, then the weekend days among the
# remaining ones, counted on the ISO weekday of d1 (1-7), the remaining
# days numbered on from it (8-14 the week after). Public holidays are not
# subtracted here (the SOP panel's own figure uses the company calendar).
WEEKDAYS_SQL = """(
    ((%(d2)s - %(d1)s) / 7) * 5 + mod(%(d2)s - %(d1)s, 7)
    - GREATEST(0, LEAST(%(dow)s + mod(%(d2)s - %(d1)s, 7), 7) - GREATEST(%(dow)s, 5))
    - GREATEST(0, LEAST(%(dow)s + mod(%(d2)s - %(d1)s, 7), 14) - GREATEST(%(dow)s, 12))
)"""


class CrmSopStageReport(models.Model):
    """Per SOP stage: the deals that entered it, how many advanced to a later
    SOP stage (or finished their SOP), were won or lost, and how many working
    days they spent in it. One row per stint of a deal in a SOP stage
    (crm.sop.stage.log), so that pivot and graph sum and average correctly
    whatever the grouping."""

    _name = "crm.sop.stage.report"
    _description = "Sales SOP Stage Analysis"
    _auto = False
    _order = "date_start desc"
    _rec_name = "sop_stage_id"
    _depends = {
        "crm.sop.stage.log": ["lead_id", "sop_stage_id", "date_start", "date_end"],
        "crm.sop.stage": ["template_id", "sequence"],
        "crm.lead": LEAD_DEPENDS,
        "crm.stage": ["is_won"],
    }

    lead_id = fields.Many2one("crm.lead", string="Opportunity", readonly=True)
    sop_stage_id = fields.Many2one("crm.sop.stage", string="SOP Stage", readonly=True)
    template_id = fields.Many2one("crm.sop.template", string="Playbook", readonly=True)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    date_start = fields.Datetime(string="Entered", readonly=True)
    date_end = fields.Datetime(string="Left", readonly=True)
    entered_count = fields.Integer(string="Deals Entered", readonly=True)
    advanced_count = fields.Integer(
        string="Advanced",
        readonly=True,
        help="Moved on to a later SOP stage, or finished their SOP, without "
        "being lost.",
    )
    won_count = fields.Integer(string="Won", readonly=True)
    lost_count = fields.Integer(string="Lost", readonly=True)
    advance_rate = fields.Float(
        string="Advance Rate (%)", readonly=True, aggregator="avg"
    )
    won_rate = fields.Float(
        string="Won Rate (%)",
        readonly=True,
        aggregator="avg",
        help="Won among the deals that entered the SOP stage (open ones count "
        "as not won).",
    )
    stage_days = fields.Integer(
        string="Working Days in Stage",
        readonly=True,
        aggregator="avg",
        help="Monday to Friday from entering to leaving the SOP stage (to the "
        "deal's closing, or today, while it is there); public holidays are "
        "not subtracted.",
    )

    def _with(self):
        """Each stint in a SOP stage (crm.sop.stage.log) with the next one's
        order, the deal's outcome, and whether it advanced."""
        return SQL(
            """WITH stint AS (
                   SELECT g.*, ss.template_id, ss.sequence AS seq,
                          LEAD(ss.sequence) OVER (
                              PARTITION BY g.lead_id ORDER BY g.id) AS next_seq
                     FROM crm_sop_stage_log g
                     JOIN crm_sop_stage ss ON ss.id = g.sop_stage_id
               ),
               outcome AS (
                   SELECT g.*, l.team_id, l.user_id, l.company_id, l.date_closed,
                          %(won)s AS won, %(lost)s AS lost
                     FROM stint g
                     JOIN crm_lead l ON l.id = g.lead_id
                LEFT JOIN crm_stage s ON s.id = l.stage_id
               ),
               judged AS (
                   SELECT o.*,
                          (o.date_end IS NOT NULL AND NOT o.lost
                           AND (o.next_seq IS NULL OR o.next_seq > o.seq)) AS advanced
                     FROM outcome o
               )""",
            won=SQL(SOP_WON_SQL),
            lost=SQL(SOP_LOST_SQL),
        )

    def _select(self):
        d1 = SQL("(g.date_start AT TIME ZONE 'UTC')::date")
        d2 = SQL(
            "(COALESCE(g.date_end, g.date_closed, now() AT TIME ZONE 'UTC') "
            "AT TIME ZONE 'UTC')::date"
        )
        weekdays = SQL(
            WEEKDAYS_SQL,
            d1=d1,
            d2=d2,
            dow=SQL("EXTRACT(ISODOW FROM %s)::int", d1),
        )
        return SQL(
            """SELECT g.id, g.lead_id, g.sop_stage_id, g.template_id,
                      g.team_id, g.user_id, g.company_id,
                      g.date_start, g.date_end,
                      1 AS entered_count,
                      CASE WHEN g.advanced THEN 1 ELSE 0 END AS advanced_count,
                      CASE WHEN g.won THEN 1 ELSE 0 END AS won_count,
                      CASE WHEN g.lost THEN 1 ELSE 0 END AS lost_count,
                      CASE WHEN g.advanced THEN 100.0 ELSE 0.0 END AS advance_rate,
                      CASE WHEN g.won THEN 100.0 ELSE 0.0 END AS won_rate,
                      GREATEST(%(weekdays)s, 0) AS stage_days""",
            weekdays=weekdays,
        )

    def _from(self):
        return SQL("FROM judged g")

    def _table_query_sql(self):
        return SQL("%s %s %s", self._with(), self._select(), self._from())

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                "CREATE OR REPLACE VIEW %s AS (%s)",
                SQL.identifier(self._table),
                self._table_query_sql(),
            )
        )

from odoo import fields, models, tools
from odoo.tools import SQL

from ..models.crm_sop_deal import SOP_LOST_SQL, SOP_WON_SQL
from ..models.crm_sop_script_fact import SOP_SCRIPT_FACT_COLUMNS
from .crm_sop_task_report import LEAD_DEPENDS


class CrmSopScriptReport(models.Model):
    """Which scripts precede a stage advance or a win? One row per (script,
    opportunity) for:

    - every opportunity the script was sent to (``got``): its sends, the
      first one's date, pipeline and SOP stage; ``advanced`` when, at or
      after that first send, the opportunity moved (crm.sop.stage.move)
      into a pipeline stage ordered after the one it was in at the send
      (being won is such a move);
    - every closed opportunity (won or lost, as predictive lead scoring
      counts them) of a sales team the script was ever sent in, that did
      not get it: the deals to compare with.

    Won rate when sent: won, of the closed deals that got the script; won
    rate when not sent: won, of the closed deals of the same teams that did
    not; lift: their difference, per group (``_read_group_select``).

    The first population is kept per deal (crm.sop.script.fact: the sends
    aggregated and the stage moves after them, decided once as the deal
    changes); the second is read from the deals as they are.
    """

    _name = "crm.sop.script.report"
    _description = "Sales SOP Script Analysis"
    _auto = False
    _rec_name = "mail_template_id"
    _order = "date_first_sent desc, id desc"
    _depends = {
        "crm.sop.script.fact": list(SOP_SCRIPT_FACT_COLUMNS),
        "crm.lead": LEAD_DEPENDS,
        "crm.stage": ["is_won"],
    }

    mail_template_id = fields.Many2one("mail.template", string="Script", readonly=True)
    lead_id = fields.Many2one("crm.lead", string="Opportunity", readonly=True)
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    template_id = fields.Many2one("crm.sop.template", string="Playbook", readonly=True)
    sop_stage_id = fields.Many2one(
        "crm.sop.stage", string="SOP Stage When First Sent", readonly=True
    )
    date_first_sent = fields.Datetime(string="First Sent On", readonly=True)
    date_closed = fields.Datetime(string="Closed On", readonly=True)
    lead_create_date = fields.Datetime(string="Opportunity Created On", readonly=True)
    got = fields.Boolean(string="Sent", readonly=True)
    won = fields.Boolean(readonly=True)
    send_count = fields.Integer(string="Sends", readonly=True)
    deal_count = fields.Integer(string="Deals Sent To", readonly=True)
    advanced_count = fields.Integer(string="Deals Advanced After", readonly=True)
    advanced_rate = fields.Float(
        string="Advanced After (%)",
        aggregator="avg",
        readonly=True,
        help="Deals sent the script that moved to a later pipeline stage "
        "after the first send, of the deals sent the script.",
    )
    closed_got_count = fields.Integer(string="Closed Deals Sent To", readonly=True)
    closed_not_got_count = fields.Integer(
        string="Closed Deals Not Sent To", readonly=True
    )
    won_rate_got = fields.Float(
        string="Won Rate When Sent (%)", aggregator="avg", readonly=True
    )
    won_rate_not_got = fields.Float(
        string="Won Rate When Not Sent (%)", aggregator="avg", readonly=True
    )
    lift = fields.Float(
        string="Lift (points)",
        aggregator="avg",
        readonly=True,
        help="Won rate when sent minus won rate when not sent, in points.",
    )

    def _read_group_select(self, aggregate_spec, query):
        """The lift of a group: the difference of its two won rates."""
        if aggregate_spec.split(":")[0] == "lift":
            return SQL(
                "AVG(%s) - AVG(%s)",
                self._field_to_sql(self._table, "won_rate_got", query),
                self._field_to_sql(self._table, "won_rate_not_got", query),
            )
        return super()._read_group_select(aggregate_spec, query)

    def _with(self):
        """The teams each script was sent in, and the closed deals with the
        scripts each one got."""
        return SQL(
            """WITH script_teams AS (
                SELECT DISTINCT mail_template_id, team_id
                  FROM crm_sop_script_fact
                 WHERE team_id IS NOT NULL
            ), closed AS (
                -- with the scripts each one got (a hash join, then a test
                -- per script of its team, instead of sorting every pair)
                SELECT l.id, l.user_id, l.team_id, l.company_id,
                       l.sop_template_id AS template_id, l.date_closed,
                       l.create_date AS lead_create_date, %(won)s AS won,
                       COALESCE(gl.script_ids, '{}') AS script_ids
                  FROM crm_lead l
             LEFT JOIN crm_stage s ON s.id = l.stage_id
             LEFT JOIN (
                       SELECT lead_id, ARRAY_AGG(mail_template_id) AS script_ids
                         FROM crm_sop_script_fact
                     GROUP BY lead_id
                   ) gl ON gl.lead_id = l.id
                 WHERE l.type = 'opportunity' AND (%(won)s OR %(lost)s)
            )""",
            won=SQL(SOP_WON_SQL),
            lost=SQL(SOP_LOST_SQL),
        )

    def _select_got(self):
        """A row per (script, deal it was sent to): the facts kept per deal
        (crm.sop.script.fact)."""
        return SQL(
            """SELECT
                   -- (deal, script): unique, and stable from one read to the
                   -- next; mail template ids stay below a million
                   g.lead_id::bigint * 1000000 + g.mail_template_id AS id,
                   g.mail_template_id, g.lead_id, g.user_id, g.team_id,
                   g.company_id, g.template_id, g.sop_stage_id,
                   g.date_first_sent, g.date_closed,
                   g.lead_create_date, TRUE AS got, g.won, g.send_count,
                   1 AS deal_count,
                   CASE WHEN g.advanced THEN 1 ELSE 0 END AS advanced_count,
                   CASE WHEN g.advanced THEN 100.0::float ELSE 0.0 END
                       AS advanced_rate,
                   CASE WHEN g.closed THEN 1 ELSE 0 END AS closed_got_count,
                   0 AS closed_not_got_count,
                   CASE WHEN g.closed THEN
                       CASE WHEN g.won THEN 100.0::float ELSE 0.0 END
                   END AS won_rate_got,
                   NULL::float AS won_rate_not_got,
                   NULL::double precision AS lift
              FROM crm_sop_script_fact g"""
        )

    def _select_not_got(self):
        """A row per (script, closed deal of a team it was sent in, that did
        not get it): the deals to compare with."""
        return SQL(
            """SELECT c.id::bigint * 1000000 + st.mail_template_id AS id,
                   st.mail_template_id, c.id AS lead_id, c.user_id, c.team_id,
                   c.company_id, c.template_id, NULL::integer AS sop_stage_id,
                   NULL::timestamp AS date_first_sent, c.date_closed,
                   c.lead_create_date, FALSE AS got, c.won, 0 AS send_count,
                   0 AS deal_count, 0 AS advanced_count,
                   NULL::float AS advanced_rate, 0 AS closed_got_count,
                   1 AS closed_not_got_count, NULL::float AS won_rate_got,
                   CASE WHEN c.won THEN 100.0::float ELSE 0.0 END AS won_rate_not_got,
                   NULL::double precision AS lift
              FROM script_teams st
              JOIN closed c ON c.team_id = st.team_id
             WHERE st.mail_template_id != ALL(c.script_ids)"""
        )

    def _sop_query(self):
        return SQL(
            "%s %s UNION ALL %s",
            self._with(),
            self._select_got(),
            self._select_not_got(),
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

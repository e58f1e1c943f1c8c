from odoo import fields, models, tools
from odoo.tools import SQL

from ..models.crm_sop_deal import SOP_LOST_SQL, SOP_WON_SQL
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
    """

    _name = "crm.sop.script.report"
    _description = "Sales SOP Script Analysis"
    _auto = False
    _rec_name = "mail_template_id"
    _order = "date_first_sent desc, id desc"
    _depends = {
        "crm.sop.script.send": [
            "mail_template_id",
            "lead_id",
            "date",
            "crm_stage_id",
            "sop_stage_id",
            "delivery_state",
        ],
        "crm.lead": LEAD_DEPENDS,
        "crm.stage": ["sequence", "is_won"],
        "crm.sop.stage.move": ["lead_id", "stage_id", "date"],
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

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                """CREATE OR REPLACE VIEW %(table)s AS (
                WITH got AS (
                    SELECT sd.mail_template_id, sd.lead_id,
                           COUNT(*) AS send_count, MIN(sd.date) AS first_date,
                           (ARRAY_AGG(sd.crm_stage_id ORDER BY sd.date, sd.id))[1]
                               AS crm_stage_id,
                           (ARRAY_AGG(sd.sop_stage_id ORDER BY sd.date, sd.id))[1]
                               AS sop_stage_id
                      FROM crm_sop_script_send sd
                     -- a send the mail server refused reached nobody
                     WHERE sd.delivery_state IS DISTINCT FROM 'failed'
                  GROUP BY sd.mail_template_id, sd.lead_id
                ), script_teams AS (
                    SELECT DISTINCT g.mail_template_id, l.team_id
                      FROM got g
                      JOIN crm_lead l ON l.id = g.lead_id
                     WHERE l.team_id IS NOT NULL
                ), pairs AS (
                    SELECT g.mail_template_id, g.lead_id, g.send_count, g.first_date,
                           g.crm_stage_id, g.sop_stage_id
                      FROM got g
                 UNION ALL
                    SELECT st.mail_template_id, l.id, 0, NULL, NULL, NULL
                      FROM script_teams st
                      JOIN crm_lead l ON l.team_id = st.team_id
                 LEFT JOIN crm_stage s ON s.id = l.stage_id
                     WHERE l.type = 'opportunity' AND (%(won)s OR %(lost)s)
                       AND NOT EXISTS (
                           SELECT 1 FROM got g
                            WHERE g.mail_template_id = st.mail_template_id
                              AND g.lead_id = l.id)
                ), facts AS (
                    SELECT p.*, l.user_id, l.team_id, l.company_id,
                           l.sop_template_id AS template_id, l.date_closed,
                           l.create_date AS lead_create_date,
                           p.send_count > 0 AS got,
                           %(won)s AS won,
                           l.type = 'opportunity' AND (%(won)s OR %(lost)s) AS closed,
                           p.send_count > 0 AND EXISTS (
                               SELECT 1 FROM crm_sop_stage_move mv
                                WHERE mv.lead_id = l.id
                                  AND mv.date >= p.first_date
                                  AND EXISTS (
                                      SELECT 1 FROM crm_stage ns, crm_stage cs
                                       WHERE ns.id = mv.stage_id
                                         AND cs.id = p.crm_stage_id
                                         AND (ns.sequence, ns.id) > (cs.sequence, cs.id))
                           ) AS advanced
                      FROM pairs p
                      JOIN crm_lead l ON l.id = p.lead_id
                 LEFT JOIN crm_stage s ON s.id = l.stage_id
                )
                SELECT ROW_NUMBER() OVER (ORDER BY mail_template_id, lead_id) AS id,
                       mail_template_id, lead_id, user_id, team_id, company_id,
                       template_id, sop_stage_id, first_date AS date_first_sent,
                       date_closed, lead_create_date, got, won, send_count,
                       CASE WHEN got THEN 1 ELSE 0 END AS deal_count,
                       CASE WHEN advanced THEN 1 ELSE 0 END AS advanced_count,
                       CASE WHEN got THEN CASE WHEN advanced THEN 100.0 ELSE 0.0 END
                       END AS advanced_rate,
                       CASE WHEN got AND closed THEN 1 ELSE 0 END AS closed_got_count,
                       CASE WHEN NOT got AND closed THEN 1 ELSE 0 END
                           AS closed_not_got_count,
                       CASE WHEN got AND closed THEN
                           CASE WHEN won THEN 100.0 ELSE 0.0 END
                       END AS won_rate_got,
                       CASE WHEN NOT got AND closed THEN
                           CASE WHEN won THEN 100.0 ELSE 0.0 END
                       END AS won_rate_not_got,
                       NULL::double precision AS lift
                  FROM facts
                )""",
                table=SQL.identifier(self._table),
                won=SQL(SOP_WON_SQL),
                lost=SQL(SOP_LOST_SQL),
            )
        )

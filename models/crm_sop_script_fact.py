from odoo import api, fields, models
from odoo.tools import SQL

from .crm_sop_deal import SOP_LOST_SQL, sop_won_in_stages_sql

# the table's columns, in the order _sop_facts_sql gives them
SOP_SCRIPT_FACT_COLUMNS = (
    "lead_id",
    "mail_template_id",
    "user_id",
    "team_id",
    "company_id",
    "template_id",
    "sop_stage_id",
    "crm_stage_id",
    "date_first_sent",
    "date_closed",
    "lead_create_date",
    "send_count",
    "won",
    "closed",
    "advanced",
)
# a send's fields a fact is decided by
SOP_SCRIPT_FACT_SEND_FIELDS = (
    "lead_id",
    "mail_template_id",
    "date",
    "crm_stage_id",
    "sop_stage_id",
    "delivery_state",
)


class CrmSopScriptFact(models.Model):
    """What the script analysis reads of the scripts a deal got, one row per
    (opportunity, script sent to it, not refused by the mail server): its
    sends, the first one's date, pipeline and SOP stage, ``advanced`` when,
    at or after that first send, the deal moved (crm.sop.stage.move) into a
    pipeline stage ordered after the one it was in at the send, and the deal
    as it is (salesperson, team, company, playbook, won, closed).

    Decided once per changed deal instead of on every read of the report
    (the sends aggregated and every stage move after them): kept with the
    task analysis' facts, marked and made anew by the same hooks in the same
    statement (``crm.sop.task.fact._sop_refresh``); a send created, failed,
    moved by a merge or undone marks its deal too. Written by the engine
    only, in SQL."""

    _name = "crm.sop.script.fact"
    _description = "Sales SOP Script Facts"
    _log_access = False
    _rec_name = "mail_template_id"

    lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        readonly=True,
        required=True,
        ondelete="cascade",
    )
    mail_template_id = fields.Many2one(
        "mail.template", string="Script", readonly=True, ondelete="cascade"
    )
    # copies of the deal's and its first send's values, made anew from them,
    # without foreign keys (see crm.sop.task.fact)
    user_id = fields.Integer(string="Salesperson", readonly=True)
    team_id = fields.Integer(string="Sales Team", readonly=True)
    company_id = fields.Integer(readonly=True)
    template_id = fields.Integer(string="Playbook", readonly=True)
    sop_stage_id = fields.Integer(string="SOP Stage When First Sent", readonly=True)
    crm_stage_id = fields.Integer(string="Stage When First Sent", readonly=True)
    date_first_sent = fields.Datetime(string="First Sent On", readonly=True)
    date_closed = fields.Datetime(string="Closed On", readonly=True)
    lead_create_date = fields.Datetime(string="Opportunity Created On", readonly=True)
    send_count = fields.Integer(string="Sends", readonly=True)
    won = fields.Boolean(readonly=True)
    closed = fields.Boolean(readonly=True)
    advanced = fields.Boolean(string="Advanced After", readonly=True)

    _sql_constraints = [
        (
            "lead_script_uniq",
            "UNIQUE (lead_id, mail_template_id)",
            "A deal has one row of facts per script.",
        ),
    ]

    def flush_model(self, fnames=None):
        # a read of the script analysis: the facts of the deals this
        # transaction changed are made first (crm.sop.task.fact keeps both)
        self.env["crm.sop.task.fact"]._sop_refresh_pending()
        return super().flush_model(fnames)

    @api.model
    def _sop_facts_sql(self, lead_ids=None):
        """SQL of the facts (columns as SOP_SCRIPT_FACT_COLUMNS) of the
        opportunities ``lead_ids`` (an SQL array of ids; all when None)."""
        of_leads = (
            SQL("sd.lead_id = ANY(%s)", lead_ids)
            if lead_ids is not None
            else SQL("TRUE")
        )
        return SQL(
            """
            WITH got AS (
                SELECT sd.mail_template_id, sd.lead_id,
                       COUNT(*) AS send_count, MIN(sd.date) AS first_date,
                       (ARRAY_AGG(sd.crm_stage_id ORDER BY sd.date, sd.id))[1]
                           AS crm_stage_id,
                       (ARRAY_AGG(sd.sop_stage_id ORDER BY sd.date, sd.id))[1]
                           AS sop_stage_id
                  FROM crm_sop_script_send sd
                 -- a send the mail server refused reached nobody
                 WHERE sd.delivery_state IS DISTINCT FROM 'failed' AND %(of_leads)s
              GROUP BY sd.mail_template_id, sd.lead_id
            )
            SELECT g.lead_id, g.mail_template_id, l.user_id, l.team_id,
                   l.company_id, l.sop_template_id, g.sop_stage_id, g.crm_stage_id,
                   g.first_date, l.date_closed, l.create_date, g.send_count,
                   %(won)s,
                   l.type = 'opportunity' AND (%(won)s OR %(lost)s),
                   EXISTS (
                       SELECT 1
                         FROM crm_sop_stage_move mv
                         JOIN crm_stage ns ON ns.id = mv.stage_id
                        WHERE mv.lead_id = g.lead_id AND mv.date >= g.first_date
                          AND (ns.sequence, ns.id) > (cs.sequence, cs.id)
                   )
              FROM got g
              JOIN crm_lead l ON l.id = g.lead_id
         LEFT JOIN crm_stage cs ON cs.id = g.crm_stage_id
            """,
            of_leads=of_leads,
            # the won stages' ids: the deal's stage not joined to know it
            won=sop_won_in_stages_sql(self.env["crm.stage"]._sop_won_ids()),
            lost=SQL(SOP_LOST_SQL),
        )

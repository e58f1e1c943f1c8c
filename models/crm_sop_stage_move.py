from odoo import api, fields, models
from odoo.tools import SQL

from .crm_sop_engine import held_rows, sop_id_array

# SOP adherence, on the task ``t``, its template ``tt`` and ``la`` (when its
# deal left its SOP stage's pipeline stage, crm.sop.stage.move._sop_left_at_sql)
SOP_ADHERENCE_COUNTED_SQL = "(tt.required AND t.active AND t.state != 'na')"
SOP_ADHERED_SQL = "((t.state = 'done' AND t.date_done <= la.date_left) IS TRUE)"


class CrmSopStageMove(models.Model):
    """The pipeline stage moves of the opportunities, as the product itself
    records them: one row per move (from a stage, or from nowhere when the
    opportunity is created in a stage), written by ``crm.lead`` create and
    write in the statement after the ORM's, whatever ``tracking_disable``
    says. Nobody else writes it: not a client (no access, refused even to the
    superuser through the ORM), nor a message with forged tracking values.

    The one definition of a pipeline stage move for everything that reads
    them: SOP adherence (``_sop_adherence_sql``: the achievement board and
    the task analysis), the stage a deal reached (task analysis), the
    advance after a script (script analysis). Mail tracking is read once,
    by the migration that fills the log on upgrade (18.0.1.2.0).
    """

    _name = "crm.sop.stage.move"
    _description = "Sales SOP Pipeline Stage Move"
    _inherit = ["crm.sop.engine.record"]
    _order = "date desc, id desc"
    _rec_name = "stage_id"
    # written in SQL by the engine only; who and when are the row itself
    _log_access = False

    lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    stage_from_id = fields.Many2one(
        "crm.stage",
        string="From Stage",
        readonly=True,
        ondelete="set null",
        help="Empty when the opportunity was created in the stage.",
    )
    stage_id = fields.Many2one(
        "crm.stage",
        string="To Stage",
        required=True,
        readonly=True,
        ondelete="cascade",
    )
    date = fields.Datetime(required=True, readonly=True, index=True)
    user_id = fields.Many2one("res.users", string="Moved By", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True, index=True)

    def _sop_engine_only_message(self):
        return self.env._("Only the Sales SOP engine records pipeline stage moves.")

    # ------------------------------------------------------------
    # ENGINE: recording the moves
    # ------------------------------------------------------------

    @api.model
    def _sop_seed_from_tracking(self):
        """Fill the log of the deals that have none (deals that existed before
        the addon recorded their moves: at install, at the upgrade to
        18.0.1.2.0) from the stage_id tracking of their chatter, once: their
        creation stage, then each tracked move with its date and author.

        This one-off read of mail tracking is the only one: nothing else in
        the addon reads stage moves from mail_tracking_value, which a client
        can write. Deals already in the log are left alone, so a second run
        adds nothing."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """        WITH unlogged AS (
            SELECT l.id FROM crm_lead l
             WHERE NOT EXISTS (SELECT 1 FROM crm_sop_stage_move g
                                WHERE g.lead_id = l.id)
        ), tracked AS (
            SELECT m.res_id AS lead_id, m.date, m.id AS message_id, v.id AS value_id,
                   v.old_value_integer AS old_id, v.new_value_integer AS new_id,
                   m.create_uid AS user_id
              FROM mail_tracking_value v
              JOIN mail_message m ON m.id = v.mail_message_id
              JOIN ir_model_fields f ON f.id = v.field_id
             WHERE m.model = 'crm.lead' AND f.model = 'crm.lead'
               AND f.name = 'stage_id'
               AND m.res_id IN (SELECT id FROM unlogged)
        ), first_tracked AS (
            SELECT DISTINCT ON (lead_id) lead_id, old_id
              FROM tracked
          ORDER BY lead_id, date, message_id, value_id
        ), moves AS (
            -- created in a stage: the one the first tracked move left, else
            -- the one the deal is in
            SELECT l.id AS lead_id, NULL::integer AS old_id,
                   CASE WHEN ft.lead_id IS NULL THEN l.stage_id ELSE ft.old_id END
                       AS new_id,
                   l.create_date AS date, l.create_uid AS user_id,
                   l.company_id, 0 AS message_id, 0 AS value_id
              FROM crm_lead l
              JOIN unlogged u0 ON u0.id = l.id
         LEFT JOIN first_tracked ft ON ft.lead_id = l.id
         UNION ALL
            SELECT tr.lead_id, tr.old_id, tr.new_id, tr.date, tr.user_id,
                   l.company_id, tr.message_id, tr.value_id
              FROM tracked tr
              JOIN crm_lead l ON l.id = tr.lead_id
        )
        INSERT INTO crm_sop_stage_move
               (lead_id, stage_from_id, stage_id, date, user_id, company_id)
        SELECT mv.lead_id, fs.id, ts.id, mv.date, u.id, mv.company_id
          FROM moves mv
          JOIN crm_stage ts ON ts.id = mv.new_id
     LEFT JOIN crm_stage fs ON fs.id = mv.old_id
     LEFT JOIN res_users u ON u.id = mv.user_id
         WHERE mv.date IS NOT NULL
      ORDER BY mv.lead_id, mv.date, mv.message_id, mv.value_id
        """
            )
        )
        self.invalidate_model()

    @api.model
    def _sop_record_write(self, leads, vals):
        """``leads`` were written ``vals``: record their stage moves."""
        if "stage_id" in vals:
            self._sop_record(leads)

    @api.model
    def _sop_record(self, leads, created=False):
        """Record the stage moves of ``leads`` just created (``created``) or
        written with a ``stage_id``: one INSERT for the whole batch, from the
        stage of each lead's last recorded move to the stage it is in now
        (leads whose stage did not change get no row)."""
        # the stage (computed on create) and company as the ORM holds them
        # after the write, from the cache: the leads' own UPDATE stays one
        rows = [
            (lead_id, stage_id, company_id)
            for lead_id, stage_id, company_id in held_rows(
                leads, ("stage_id", "company_id")
            )
            if stage_id
        ]
        if not rows:
            if not created:
                self.env["crm.sop.task.fact"]._sop_mark_moved(leads, [])
            return
        # one array per column rather than a VALUES list: one parameter
        # each, not one SQL object per lead (an import brings a thousand)
        lead_ids, stage_ids, company_ids = map(sop_id_array, zip(*rows, strict=True))
        last = (
            SQL("NULL::integer")
            if created
            else SQL(
                """(SELECT mv.stage_id FROM crm_sop_stage_move mv
                     WHERE mv.lead_id = v.lead_id
                  ORDER BY mv.date DESC, mv.id DESC LIMIT 1)"""
            )
        )
        self.env.cr.execute(
            SQL(
                """INSERT INTO crm_sop_stage_move
                          (lead_id, stage_from_id, stage_id, date, user_id, company_id)
                   SELECT v.lead_id, p.stage_from_id, v.stage_id, %(now)s, %(uid)s,
                          v.company_id
                     FROM unnest(%(lead_ids)s::integer[], %(stage_ids)s::integer[],
                                 %(company_ids)s::integer[])
                          AS v (lead_id, stage_id, company_id),
                          LATERAL (SELECT %(last)s AS stage_from_id) p
                    WHERE v.stage_id IS DISTINCT FROM p.stage_from_id
                RETURNING id, lead_id""",
                now=self.env.cr.now(),
                uid=self.env.uid,
                last=last,
                lead_ids=lead_ids,
                stage_ids=stage_ids,
                company_ids=company_ids,
            )
        )
        moves = self.env.cr.fetchall()
        self.invalidate_model()
        if not created:
            # a stage written: the deals' review facts follow, where it can
            # change them (a new deal's first move comes from no stage and
            # leaves none)
            self.env["crm.sop.task.fact"]._sop_mark_moved(leads, moves)

    # ------------------------------------------------------------
    # ADHERENCE: the one definition, for the board and the task analysis
    # ------------------------------------------------------------

    # SOP adherence: of the required tasks (active, not set aside) of the
    # deals that moved past their SOP stage, those done no later than the
    # first recorded move from a stage into a pipeline stage ordered
    # (sequence, id) after the one of the task's SOP stage. A deal created in
    # a later stage never stood in the earlier SOP stages: its creation is
    # not a move past them. Three pieces, which the achievement board
    # (crm.sop.board) and the task analysis (crm.sop.task.report) both use:
    # when a deal left a SOP pipeline stage (_sop_left_at_sql), which tasks
    # count (SOP_ADHERENCE_COUNTED_SQL) and which adhered (SOP_ADHERED_SQL).

    @api.model
    def _sop_left_at_sql(self, where=None, until=None, lead_ids=None):
        """SQL of (``lead_id``, ``crm_stage_id``, ``date_left``): when each
        deal first moved past each pipeline stage a SOP stage belongs to.
        ``where``: SQL on the opportunity ``l`` (company, team,
        salesperson); ``until``: only moves before it (a period's end);
        ``lead_ids``: only these deals' (an SQL array or a list of
        ids), filtered on the moves (the opportunities' table not joined for
        them: 0.2 ms less to plan)."""
        return SQL(
            """WITH sop_crm_stages AS (
                    SELECT DISTINCT ps.id, ps.sequence
                      FROM crm_sop_stage ss
                      JOIN crm_stage ps ON ps.id = ss.crm_stage_id
               )
               SELECT mv.lead_id, p.id AS crm_stage_id, MIN(mv.date) AS date_left
                 FROM crm_sop_stage_move mv
                 %(leads)s
                 JOIN crm_stage ns ON ns.id = mv.stage_id
                 JOIN sop_crm_stages p ON (ns.sequence, ns.id) > (p.sequence, p.id)
                WHERE mv.stage_from_id IS NOT NULL AND %(until)s
                  AND %(where)s AND %(of_leads)s
             GROUP BY mv.lead_id, p.id""",
            of_leads=SQL("mv.lead_id = ANY(%s)", lead_ids)
            if lead_ids is not None
            else SQL("TRUE"),
            until=SQL("mv.date < %s", until) if until else SQL("TRUE"),
            # the opportunities only when filtered on
            leads=SQL("JOIN crm_lead l ON l.id = mv.lead_id") if where else SQL(),
            where=where or SQL("TRUE"),
        )

    @api.model
    def _sop_adherence_sql(self, where=None, until=None):
        """SQL of the tasks adherence counts, one row per task: ``task_id``,
        ``lead_id``, ``date_left``, ``adhered`` (see above; ``where`` and
        ``until`` as ``_sop_left_at_sql``)."""
        return SQL(
            """SELECT t.id AS task_id, t.lead_id, la.date_left,
                      %(adhered)s AS adhered
                 FROM crm_sop_task t
                 JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
                 JOIN crm_sop_stage ss ON ss.id = tt.stage_id
                 JOIN (%(left_at)s) la
                   ON la.lead_id = t.lead_id AND la.crm_stage_id = ss.crm_stage_id
                WHERE %(counted)s""",
            adhered=SQL(SOP_ADHERED_SQL),
            left_at=self._sop_left_at_sql(where=where, until=until),
            counted=SQL(SOP_ADHERENCE_COUNTED_SQL),
        )

import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL

from .crm_sop_deal import SOP_LOST_SQL, sop_won_in_stages_sql
from .crm_sop_history_count import SOP_HISTORY_STALE
from .crm_sop_script_fact import (
    SOP_SCRIPT_FACT_COLUMNS,
    SOP_SCRIPT_FACT_SEND_FIELDS,
)
from .crm_sop_stage_move import SOP_ADHERED_SQL, SOP_ADHERENCE_COUNTED_SQL

# the opportunity's fields a fact copies or is decided by (closed: won or
# lost; the pipeline stage it stands in; who, which team and company)
SOP_FACT_LEAD_FIELDS = (
    "active",
    "probability",
    "type",
    "stage_id",
    "user_id",
    "team_id",
    "company_id",
    "date_closed",
    "sop_template_id",
)
# a task's fields a fact copies or is decided by
SOP_FACT_TASK_FIELDS = ("state", "active", "date_done", "task_template_id")
# the table's columns, in the order _sop_facts_sql gives them
SOP_FACT_COLUMNS = (
    "task_id",
    "lead_id",
    "task_template_id",
    "sop_stage_id",
    "template_id",
    "user_id",
    "team_id",
    "company_id",
    "date_closed",
    "lead_create_date",
    "date_done",
    "date_left",
    "required",
    "done",
    "won",
    "reached",
    "adhered",
)
# precommit data key: the opportunities whose facts wait to be made anew
SOP_FACT_PENDING = "crm_sop_task_fact.lead_ids"
# system parameter: every deal's facts wait for the job to make them anew
SOP_FACT_STALE = "crm_sales_sop.review_facts_stale"
# the job met a deal's change: it comes back after this delay
SOP_FACT_RETRY_MINUTES = 1

_logger = logging.getLogger(__name__)


class CrmSopTaskFact(models.Model):
    """What the task analysis reads, one row per applicable SOP task (active,
    not set aside) of an opportunity that is closed and reached the task's
    SOP stage, or that left the task's stage with the task required: the
    task analysis' rows (``crm.sop.task.report`` selects from this table),
    decided here once instead of on every read of the report.

    - **reached**: the opportunity is closed (won: active in a won stage;
      lost: archived at probability 0, as predictive lead scoring counts
      them) and reached the task's SOP stage: it is won, or it stood (now, or
      in any recorded pipeline stage move, crm.sop.stage.move, from or to)
      in a pipeline stage ordered (sequence, id) at or after the pipeline
      stage of the task's SOP stage.
    - **date_left**: the task is required and the opportunity (open or
      closed) moved past its SOP stage: the first recorded move into a
      pipeline stage ordered after the task's (``_sop_left_at_sql``, the
      achievement board's definition); **adhered**: done no later than that.

    Kept as a deal changes: what changes a fact (the opportunity's closing,
    stage, salesperson, team, company, playbook; its tasks' state, dates and
    place; its recorded stage moves) marks the opportunity, and its facts are
    made anew from the database once per transaction, before it commits or
    before the report is read in it (``_sop_refresh_pending``). What changes
    every deal's facts (the pipeline stages' order, which stages are won, a
    SOP stage moved to another pipeline stage, a task made required or not)
    has a job make them all anew soon after (``_sop_mark_all``). Written by
    the engine only, in SQL: the deals a transaction changed are one
    statement (``_sop_refresh``)."""

    _name = "crm.sop.task.fact"
    _description = "Sales SOP Task Facts"
    _log_access = False
    _rec_name = "task_id"

    # the task the row hangs on (deleted with it, and with its deal); the
    # other ids are copies of the deal's and the task's values, made anew
    # from them, without foreign keys: checking seven keys per row made a
    # rebuild of 900,000 rows take 39 s instead of 4 s (a deleted team or
    # salesperson is emptied as the key would: _sop_forget; a deleted SOP
    # stage makes every deal's facts anew)
    task_id = fields.Many2one(
        "crm.sop.task",
        string="SOP Task",
        readonly=True,
        required=True,
        ondelete="cascade",
    )
    lead_id = fields.Integer(string="Opportunity", readonly=True, index=True)
    task_template_id = fields.Integer(string="SOP Task Template", readonly=True)
    sop_stage_id = fields.Integer(string="SOP Stage", readonly=True)
    template_id = fields.Integer(string="Playbook", readonly=True)
    user_id = fields.Integer(string="Salesperson", readonly=True)
    team_id = fields.Integer(string="Sales Team", readonly=True)
    company_id = fields.Integer(readonly=True)
    date_closed = fields.Datetime(string="Closed On", readonly=True)
    lead_create_date = fields.Datetime(string="Opportunity Created On", readonly=True)
    date_done = fields.Datetime(string="Done On", readonly=True)
    date_left = fields.Datetime(string="Stage Left On", readonly=True)
    required = fields.Boolean(readonly=True)
    done = fields.Boolean(readonly=True)
    won = fields.Boolean(readonly=True)
    reached = fields.Boolean(string="Closed, Stage Reached", readonly=True)
    adhered = fields.Boolean(string="Done in Time", readonly=True)

    _sql_constraints = [
        ("task_uniq", "UNIQUE (task_id)", "A SOP task has one row of facts."),
    ]

    # ------------------------------------------------------------
    # WHAT A DEAL'S TASKS ARE (the one SQL definition)
    # ------------------------------------------------------------

    @api.model
    def _sop_facts_sql(self, lead_ids=None):
        """SQL of the facts (columns as the table's, ``task_id`` first) of
        the opportunities ``lead_ids`` (an SQL array of ids; all when None)."""
        of_leads = (
            SQL("mv.lead_id = ANY(%s)", lead_ids)
            if lead_ids is not None
            else SQL("TRUE")
        )
        return SQL(
            """
            WITH deal_ids AS (
                -- only a closed deal reaches a stage, only a deal that moved
                -- from a stage leaves one: the other deals' tasks are never
                -- read (an install over open deals reads none)
                SELECT l.id
                  FROM crm_lead l
                 WHERE (%(won)s OR %(lost)s) AND %(of_deals)s
                 UNION
                SELECT mv.lead_id
                  FROM crm_sop_stage_move mv
                 WHERE mv.stage_from_id IS NOT NULL AND %(of_leads)s
            ), deals AS %(fence)s (
                -- what the facts copy of each deal, and whether it is won or
                -- closed, decided once (a few deals: planned apart, the
                -- deal and its stage no longer in the tasks' join)
                SELECT l.id, l.user_id, l.team_id, l.company_id, l.date_closed,
                       l.create_date, %(won)s AS won,
                       l.type = 'opportunity' AND (%(won)s OR %(lost)s) AS closed,
                       s.sequence AS stage_sequence, s.id AS stage_id
                  FROM deal_ids
                  JOIN crm_lead l ON l.id = deal_ids.id
             LEFT JOIN crm_stage s ON s.id = l.stage_id
            ), sop_stages AS (
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
                 WHERE mv.stage_from_id IS NOT NULL AND %(of_leads)s
            ), stage_places AS %(fence)s (
                -- each SOP stage's playbook and the pipeline stage it
                -- belongs to, with its order (a few deals: planned apart,
                -- the tasks' join one relation shorter: 1.48 -> 1.21 ms
                -- planning a close's refresh)
                SELECT ss.id, ss.template_id, ss.crm_stage_id,
                       ps.sequence AS crm_stage_sequence
                  FROM crm_sop_stage ss
             LEFT JOIN crm_stage ps ON ps.id = ss.crm_stage_id
            ), tasks AS %(fence)s (
                SELECT t.id, t.lead_id, t.task_template_id,
                       tt.stage_id AS sop_stage_id, ss.template_id,
                       tt.required, t.state = 'done' AS done, t.date_done,
                       d.user_id, d.team_id, d.company_id, d.date_closed,
                       d.create_date AS lead_create_date,
                       d.won,
                       (d.closed AND (
                           d.won
                           OR (d.stage_sequence, d.stage_id)
                              >= (ss.crm_stage_sequence, ss.crm_stage_id)
                           OR ra.lead_id IS NOT NULL
                       )) IS TRUE AS reached,
                       la.date_left, %(adhered)s AS adhered
                  -- the deals alone say which tasks: filtering the tasks
                  -- by the same ids again made PostgreSQL expect one row
                  -- for them (two filters taken as independent) and join
                  -- every task to the stages left in a loop (100 deals:
                  -- 300 ms, 47 ms without)
                  FROM deals d
                  JOIN crm_sop_task t ON t.lead_id = d.id
                  JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
                  JOIN stage_places ss ON ss.id = tt.stage_id
             LEFT JOIN left_at la
                    ON la.lead_id = t.lead_id AND la.crm_stage_id = ss.crm_stage_id
                   AND %(counted)s
             LEFT JOIN reached_at ra
                    ON ra.lead_id = t.lead_id AND ra.crm_stage_id = ss.crm_stage_id
                 WHERE t.active AND t.state != 'na'
            )
            SELECT id, lead_id, task_template_id, sop_stage_id, template_id,
                   user_id, team_id, company_id, date_closed, lead_create_date,
                   date_done, date_left, required, done, won, reached,
                   adhered IS TRUE
              FROM tasks
             WHERE reached OR date_left IS NOT NULL
            """,
            # the won stages' ids: the deals' stages not joined to know it
            won=sop_won_in_stages_sql(self.env["crm.stage"]._sop_won_ids()),
            lost=SQL(SOP_LOST_SQL),
            # adherence as the achievement board counts it
            left_at=self.env["crm.sop.stage.move"]._sop_left_at_sql(lead_ids=lead_ids),
            counted=SQL(SOP_ADHERENCE_COUNTED_SQL),
            adhered=SQL(SOP_ADHERED_SQL),
            of_leads=of_leads,
            of_deals=SQL("l.id = ANY(%s)", lead_ids)
            if lead_ids is not None
            else SQL("TRUE"),
            # some deals (a close, a move, a tick): the deals, then their
            # tasks planned apart from the rest; the one join of ten
            # relations cost more to plan than to run (one deal: 3.2 -> 2.5
            # ms planning, the same run at 1, 100 and 1,000 deals of
            # 100,000; the deals apart, 2.05 -> 1.55 ms in the load test);
            # a rebuild keeps the one join (its filter goes down into it)
            fence=SQL("MATERIALIZED") if lead_ids is not None else SQL(),
        )

    # ------------------------------------------------------------
    # KEPT UP TO DATE
    # ------------------------------------------------------------

    def flush_model(self, fnames=None):
        # a read of the task analysis flushes what it depends on: the facts
        # of the deals this transaction changed are made first
        self._sop_refresh_pending()
        return super().flush_model(fnames)

    @api.model
    def _sop_mark(self, lead_ids):
        """The facts of these opportunities are made anew before the
        transaction commits (or before the task analysis is read in it):
        one statement pair for all the deals a transaction changes."""
        if lead_ids:
            self._sop_pending().update(lead_ids)

    @api.model
    def _sop_write_ticked(self, task_leads):
        """Tasks were ticked or reopened (todo and done, their done date with
        them), ``task_leads`` {task id: its deal's id}: that changes their
        own rows only (done, done date, done in time), and whether a task
        has a row does not depend on it being done (the deal closed and
        reached the task's stage, or left it with the task required). Those
        rows are written in place, by the same definition of done in time
        (``SOP_ADHERED_SQL``, against the row's own stage-left date); a
        task without a row changes nothing (a rep's tick in the stage the
        deal stands in). A deal already marked in this transaction is made
        anew whole at commit: its tasks are left to it."""
        marked = self.env.cr.precommit.data.get(SOP_FACT_PENDING, ())
        task_ids = [
            task_id for task_id, lead_id in task_leads.items() if lead_id not in marked
        ]
        if not task_ids:
            return
        self.env["crm.sop.task"].flush_model(["state", "date_done"])
        # one UPDATE for the batch; ``la`` names the row as the facts'
        # definition names the stage-left dates it reads the row's from
        self.env.cr.execute(
            SQL(
                """UPDATE crm_sop_task_fact la
                      SET done = t.state = 'done', date_done = t.date_done,
                          adhered = %(adhered)s
                     FROM crm_sop_task t
                    WHERE t.id = la.task_id AND la.task_id = ANY(%(task_ids)s)""",
                adhered=SQL(SOP_ADHERED_SQL),
                task_ids=task_ids,
            )
        )
        self.invalidate_model(["done", "date_done", "adhered"])

    @api.model
    def _sop_mark_moved(self, leads, moves):
        """``leads`` were written a pipeline stage, ``moves`` [(stage move
        id, lead id)] the moves it recorded (one per deal whose stage
        changed). The write changes a deal's facts only where it can, and
        the others are not marked (an open deal going back and forth
        between stages it already left refreshes nothing):

        - the deal is archived or in a won stage (closed: ``reached``
          follows its stage; decided on what the write holds, never on the
          probability, which core may still have to recompute);
        - its facts copy a closing date it no longer has (core empties it
          with a stage written out of a won stage, or on a deal reopened
          after a loss);
        - it moved out of a won stage (reopened);
        - it moved and got scripts (``advanced`` follows its moves);
        - it moved past a SOP stage's pipeline stage that none of its
          earlier moves went past: by the one definition
          (crm.sop.stage.move._sop_left_at_sql), a ``date_left`` that is
          the transaction's own time, the date the moves are recorded with
          (a stage left first by a move of this transaction, this one or
          an earlier one, which marked the deal already); one stage-left
          query, where the dates with and without the moves were two (a
          move's decision 0.98-1.13 ms instead of 1.27-1.44 in process)."""
        closed = leads.filtered(lambda lead: not lead.active or lead.stage_id.is_won)
        self._sop_mark(closed.ids)
        open_leads = leads - closed
        if not open_leads:
            return
        self.env["crm.lead"].flush_model(["date_closed"])
        self.env["crm.stage"].flush_model(["sequence", "is_won"])
        self.env["crm.sop.stage"].flush_model(["crm_stage_id"])
        self.env["crm.sop.script.send"].flush_model(["lead_id"])
        Move = self.env["crm.sop.stage.move"]
        move_ids = [move_id for move_id, _lead_id in moves]
        moved_ids = [lead_id for _move_id, lead_id in moves]
        self.env.cr.execute(
            SQL(
                """WITH left_now AS (
                       -- the SOP stages' pipeline stages first left in this
                       -- transaction: a new date_left
                       SELECT lead_id FROM (%(left_at)s) la
                        WHERE la.date_left = %(now)s
                   )
                   SELECT l.id
                     FROM crm_lead l
                LEFT JOIN crm_sop_stage_move mv
                       ON mv.lead_id = l.id AND mv.id = ANY(%(move_ids)s)
                LEFT JOIN crm_stage fs ON fs.id = mv.stage_from_id
                    WHERE l.id = ANY(%(lead_ids)s) AND (
                          EXISTS (SELECT 1 FROM crm_sop_task_fact f
                                   WHERE f.lead_id = l.id
                                     AND f.date_closed IS DISTINCT FROM l.date_closed)
                       OR (mv.id IS NOT NULL AND (
                              fs.is_won
                           OR EXISTS (SELECT 1 FROM crm_sop_script_send sd
                                       WHERE sd.lead_id = l.id)
                           OR l.id IN (SELECT lead_id FROM left_now))))""",
                left_at=Move._sop_left_at_sql(lead_ids=moved_ids),
                now=self.env.cr.now(),
                move_ids=move_ids,
                lead_ids=open_leads.ids,
            )
        )
        self._sop_mark([row[0] for row in self.env.cr.fetchall()])

    @api.model
    def _sop_mark_set_up(self, lead_ids):
        """Open opportunities just given a playbook (its tasks new): only
        those that moved from a stage or got a script can have facts; the
        others are not marked (a setup of thousands of deals that never moved
        then refreshes nothing)."""
        self.env["crm.sop.stage.move"].flush_model(["lead_id", "stage_from_id"])
        self.env["crm.sop.script.send"].flush_model(["lead_id"])
        self.env.cr.execute(
            SQL(
                """SELECT lead_id FROM crm_sop_stage_move
                    WHERE lead_id = ANY(%s) AND stage_from_id IS NOT NULL
                    UNION
                   SELECT lead_id FROM crm_sop_script_send WHERE lead_id = ANY(%s)""",
                list(lead_ids),
                list(lead_ids),
            )
        )
        self._sop_mark({row[0] for row in self.env.cr.fetchall()})

    @api.model
    def _sop_mark_all(self):
        """Every deal's facts are made anew by a job soon after this
        transaction (pipeline stages reordered or won stages redefined, a
        SOP stage moved or deleted, a task made required or not): rather
        than in it, since over 100,000 closed
        deals it takes seconds (16 s here), which a manager dragging a
        kanban column should not wait for; once, however many such writes
        the transaction holds."""
        # sudo: the engine's own flag and job, whoever changed the pipeline
        self.env["ir.config_parameter"].sudo().set_param(SOP_FACT_STALE, "1")
        self.env.ref("crm_sales_sop.ir_cron_sop_facts_rebuild").sudo()._trigger()

    @api.model
    def _sop_forget(self, fname, ids):
        """``ids`` of ``fname`` (``user_id``, ``team_id``) were deleted: their
        deals now have none (crm_lead's ON DELETE SET NULL), nor have their
        facts, in both tables: what the foreign key the copies lack would
        do, without making every deal's facts anew."""
        if not ids:
            return
        for table in ("crm_sop_task_fact", "crm_sop_script_fact"):
            self.env.cr.execute(
                SQL(
                    "UPDATE %s SET %s = NULL WHERE %s = ANY(%s)",
                    SQL.identifier(table),
                    SQL.identifier(fname),
                    SQL.identifier(fname),
                    list(ids),
                )
            )
        self.invalidate_model([fname])
        self.env["crm.sop.script.fact"].invalidate_model([fname])

    @api.model
    def _cron_sop_rebuild(self):
        """The job: every deal's facts made anew when they were marked so,
        and the closed deals' history counts
        (``crm.sop.history.count._sop_mark_all``).

        Reps keep closing and moving deals meanwhile, each transaction
        making its deals' facts anew and counting its closes. The job locks
        the tables it makes anew first: their
        refreshes wait for it, as they would for the rows it deletes. One
        committed after the job's transaction began, and before the lock,
        is a serialization failure (REPEATABLE READ): the job is undone (its
        savepoint: the deals stay marked) and comes back a minute later, in
        a new transaction that sees it. Raised, the failure would have
        failed the job, and left every deal's facts stale until its next
        daily run."""
        # sudo: the engine's own flags and job
        params = self.env["ir.config_parameter"].sudo()
        facts = params.get_param(SOP_FACT_STALE)
        # the history counts (crm.sop.history.count), made anew the same way
        history = params.get_param(SOP_HISTORY_STALE)
        if not facts and not history:
            return
        tables = []
        if facts:
            tables += [table for table, _c, _k, _m in self._sop_fact_tables()]
        if history:
            tables.append("crm_sop_history_count")
        try:
            with self.env.cr.savepoint():
                self.env.cr.execute(
                    SQL(
                        "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE",
                        SQL(", ").join(SQL.identifier(table) for table in tables),
                    )
                )
                if history:
                    params.set_param(SOP_HISTORY_STALE, False)
                    self.env["crm.sop.history.count"]._sop_rebuild()
                if facts:
                    params.set_param(SOP_FACT_STALE, False)
                    self._sop_rebuild()
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as error:
            _logger.info(
                "Sales SOP: making the review facts anew met a deal's change "
                "(%s), undone and tried again shortly",
                error.pgcode,
            )
            self.env.ref("crm_sales_sop.ir_cron_sop_facts_rebuild").sudo()._trigger(
                at=self.env.cr.now() + timedelta(minutes=SOP_FACT_RETRY_MINUTES)
            )

    @api.model
    def _sop_pending(self):
        """The opportunities marked in this transaction (registers the
        precommit hook the first time)."""
        data = self.env.cr.precommit.data
        if SOP_FACT_PENDING not in data:
            data[SOP_FACT_PENDING] = set()
            self.env.cr.precommit.add(self._sop_refresh_pending)
        return data[SOP_FACT_PENDING]

    @api.model
    def _sop_refresh_pending(self):
        """Make anew the facts of the opportunities marked so far."""
        pending = self.env.cr.precommit.data.get(SOP_FACT_PENDING)
        if pending:
            lead_ids = sorted(pending)
            pending.clear()
            self._sop_refresh(lead_ids)

    @api.model
    def _sop_flush(self):
        """Flush what the facts read."""
        self.env["crm.lead"].flush_model([*SOP_FACT_LEAD_FIELDS, "create_date"])
        self.env["crm.stage"].flush_model(["sequence", "is_won"])
        self.env["crm.sop.stage"].flush_model(["template_id", "crm_stage_id"])
        self.env["crm.sop.task.template"].flush_model(["required", "stage_id"])
        self.env["crm.sop.task"].flush_model([*SOP_FACT_TASK_FIELDS, "lead_id"])
        self.env["crm.sop.stage.move"].flush_model(
            ["lead_id", "stage_from_id", "stage_id", "date"]
        )
        self.env["crm.sop.script.send"].flush_model(SOP_SCRIPT_FACT_SEND_FIELDS)

    @api.model
    def _sop_refresh(self, lead_ids=None):
        """Make anew the facts of ``lead_ids`` (all when None), the task
        analysis' and the script analysis' (crm.sop.script.fact), from what
        the database holds. SQL: the rows are the product's own record,
        written by no one else. Some deals: one statement for both tables,
        the rows as they now are inserted or updated in place and the deals'
        rows that no longer hold deleted (a DELETE reads the table as it was
        before the statement, never the rows inserted); all: emptied and
        filled again."""
        self._sop_flush()
        cr = self.env.cr
        if lead_ids is None:
            for table, columns, _key, model in self._sop_fact_tables():
                # a deal's facts changed meanwhile (the job's serialization
                # failure, which it answers): not logged as a bad query
                cr.execute(
                    SQL("DELETE FROM %s", SQL.identifier(table)), log_exceptions=False
                )
                cr.execute(
                    SQL(
                        "INSERT INTO %s (%s) %s",
                        SQL.identifier(table),
                        SQL(", ").join(SQL.identifier(c) for c in columns),
                        model._sop_facts_sql(),
                    )
                )
        else:
            # planned for its ids each time: a statement prepared once would
            # not outlive the request (Odoo's pool resets each connection it
            # lends, psycopg2's reset being DISCARD ALL), and preparing it
            # and building its generic plan in every transaction costs more
            # than this plan (measured: 0.7 + 4.6-5.7 ms against 3.5-5 ms)
            cr.execute(
                self._sop_refresh_statement(
                    SQL("%s", list(lead_ids)),
                    scripts=self._sop_with_scripts(lead_ids),
                )
            )
        self.invalidate_model()
        self.env["crm.sop.script.fact"].invalidate_model()

    @api.model
    def _sop_fact_tables(self):
        """(table, columns, key, model) of the two kinds of facts."""
        return (
            ("crm_sop_task_fact", SOP_FACT_COLUMNS, ("task_id",), self),
            (
                "crm_sop_script_fact",
                SOP_SCRIPT_FACT_COLUMNS,
                ("lead_id", "mail_template_id"),
                self.env["crm.sop.script.fact"],
            ),
        )

    @api.model
    def _sop_with_scripts(self, lead_ids):
        """Whether any of the deals ``lead_ids`` has script facts to make
        or to delete: a script sent to it, or facts of one kept from
        before."""
        self.env["crm.sop.script.send"].flush_model(["lead_id"])
        self.env.cr.execute(
            SQL(
                """SELECT EXISTS (SELECT 1 FROM crm_sop_script_send
                                   WHERE lead_id = ANY(%(ids)s))
                       OR EXISTS (SELECT 1 FROM crm_sop_script_fact
                                   WHERE lead_id = ANY(%(ids)s))""",
                ids=list(lead_ids),
            )
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _sop_refresh_statement(self, lead_ids, scripts=True):
        """The one statement that makes anew the facts (both tables) of the
        deals ``lead_ids`` (an SQL array of ids); without ``scripts`` (no
        script sent to them, none kept), the task facts alone: most deals
        are never sent a script, and the script facts' part cost as much
        to plan as to run (one deal closed: 1.66 -> 1.11 ms planned, 0.92
        -> 0.51 ms run)."""
        tables = self._sop_fact_tables()
        parts = [
            self._sop_refresh_sql(index, table, columns, key, model, lead_ids)
            for index, (table, columns, key, model) in enumerate(
                tables if scripts else tables[:1]
            )
        ]
        # the last DELETE is the statement's own, the rest its CTEs
        return SQL(
            "WITH %s %s",
            SQL(", ").join(
                [
                    *(part[0] for part in parts),
                    *(part[1] for part in parts),
                    *(part[2] for part in parts[:-1]),
                ]
            ),
            parts[-1][3],
        )

    @api.model
    def _sop_refresh_sql(self, index, table, columns, key, model, lead_ids):
        """The parts of the refresh of ``table`` for ``lead_ids`` (an SQL
        array of ids): its facts (a CTE), their upsert (a CTE), the delete of
        the rows that no longer hold as a CTE and as a statement."""
        facts = SQL.identifier(f"facts_{index}")
        names = SQL(", ").join(SQL.identifier(c) for c in columns)
        delete = SQL(
            """DELETE FROM %(table)s f
                WHERE f.lead_id = ANY(%(lead_ids)s)
                  AND NOT EXISTS (SELECT 1 FROM %(facts)s n WHERE %(same)s)""",
            table=SQL.identifier(table),
            lead_ids=lead_ids,
            facts=facts,
            same=SQL(" AND ").join(
                SQL("n.%s = f.%s", SQL.identifier(c), SQL.identifier(c)) for c in key
            ),
        )
        return (
            SQL("%s (%s) AS (%s)", facts, names, model._sop_facts_sql(lead_ids)),
            SQL(
                """%(kept)s AS (
                       INSERT INTO %(table)s (%(names)s) SELECT * FROM %(facts)s
                       ON CONFLICT (%(key)s) DO UPDATE SET (%(names)s) = (%(excluded)s)
                   )""",
                kept=SQL.identifier(f"kept_{index}"),
                table=SQL.identifier(table),
                names=names,
                facts=facts,
                key=SQL(", ").join(SQL.identifier(c) for c in key),
                excluded=SQL(", ").join(
                    SQL("EXCLUDED.%s", SQL.identifier(c)) for c in columns
                ),
            ),
            SQL("%s AS (%s)", SQL.identifier(f"gone_{index}"), delete),
            delete,
        )

    @api.model
    def _sop_rebuild(self):
        """Make every deal's facts anew at once (install, migration, the
        demo's and a bench's history written in SQL); what was marked is
        made with them."""
        pending = self.env.cr.precommit.data.get(SOP_FACT_PENDING)
        if pending:
            pending.clear()
        self._sop_refresh()

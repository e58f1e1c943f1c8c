import contextlib

from odoo import api, fields, models
from odoo.tools import SQL

from .crm_sop_deal import SOP_LOST_SQL, sop_won_in_stages_sql

# the opportunity's fields that decide whether, where and how it counts in
# the history (closed: won or lost; team; company; an opportunity)
SOP_HISTORY_LEAD_FIELDS = (
    "stage_id",
    "active",
    "probability",
    "team_id",
    "company_id",
    "type",
)
# of those, what decides whether it is closed
SOP_HISTORY_CLOSING_FIELDS = ("stage_id", "active", "probability")
# a task's fields that decide how it counts
SOP_HISTORY_TASK_FIELDS = ("state", "active", "lead_id", "task_template_id")
# the whole history is to count anew (the review facts' job does it)
SOP_HISTORY_STALE = "crm_sales_sop.history_counts_stale"


class CrmSopHistoryCount(models.Model):
    """The closed opportunities' SOP history, counted per (team, company):
    the won and lost deals (``task_template_id`` empty: ``won_with`` and
    ``lost_with`` hold them), and for each task template how many won and
    lost deals had it done (``*_with``), left open (``*_without``) or set
    aside (``set_aside``).

    What the uplift, the coaching queue and the Task Feedback read instead
    of every closed task of the team on each call, as predictive lead
    scoring reads its frequency table: kept up to date as deals close,
    reopen or move and as the tasks of closed deals change
    (``_sop_add_leads`` / ``_sop_add_tasks`` with -1 before the change and
    +1 after), and as a task template leaves a playbook
    (``_sop_add_pruned``); made anew when which deals are won changes or a
    team goes (``_sop_rebuild``). Written by the engine only, in SQL.

    A (team, company, task template) has one row per salesperson of the
    deals counted (``user_key``, the deal's as it is when counted), and what
    reads them sums them: two reps closing deals of one team at once then
    update rows of their own, where one row per team made the second wait
    for the first and fail to serialize (Odoo retried it). A row alone means
    nothing (a deal reassigned while closed leaves +1 on one rep's row and
    -1 on another's when it reopens); their sums per team are the
    history."""

    _name = "crm.sop.history.count"
    _description = "Sales SOP History Counts"
    _log_access = False

    team_id = fields.Many2one("crm.team", readonly=True, ondelete="cascade")
    # the salesperson's id, without a foreign key: a user deleted (their
    # deals then have none) leaves their part in the team's sums
    user_key = fields.Integer("Salesperson", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True, ondelete="cascade")
    task_template_id = fields.Many2one(
        "crm.sop.task.template", readonly=True, ondelete="cascade"
    )
    won_with = fields.Integer(readonly=True)
    lost_with = fields.Integer(readonly=True)
    won_without = fields.Integer(readonly=True)
    lost_without = fields.Integer(readonly=True)
    # the closed deals' tasks set aside (not applicable), won or lost
    set_aside = fields.Integer(readonly=True)

    def init(self):
        # one row per (team, company, task template, salesperson), an empty
        # one included (the former key of one row per team is dropped by the
        # 18.0.1.4.0 migration)
        self.env.cr.execute(
            """CREATE UNIQUE INDEX IF NOT EXISTS crm_sop_history_count_user_key
                   ON crm_sop_history_count
                      (team_id, company_id, task_template_id, user_key)
                   NULLS NOT DISTINCT"""
        )

    # ------------------------------------------------------------
    # WHAT A DEAL OR A TASK ADDS
    # ------------------------------------------------------------

    @api.model
    def _sop_rows_sql(self, leads=None, tasks=None):
        """SELECT (team, company, task template, salesperson, won_with,
        lost_with, won_without, lost_without, set_aside) of what the closed
        opportunities count:
        of the leads ``leads`` (SQL condition on ``l``; their totals and
        tasks), of the tasks ``tasks`` alone (SQL condition on ``t``), or of
        every deal (neither given)."""
        won = sop_won_in_stages_sql(self.env["crm.stage"]._sop_won_ids())
        lost = SQL(SOP_LOST_SQL)
        if tasks is not None:
            # the deals of the tasks
            which = SQL(
                "l.id IN (SELECT t.lead_id FROM crm_sop_task t WHERE %s)", tasks
            )
        else:
            which = leads if leads is not None else SQL("TRUE")
        # whether each deal is won or lost, decided once: written again at
        # each use in the totals' and the tasks' rows, the OR of the two made
        # PostgreSQL take 1 ms to plan the count of one closing deal; a CTE
        # planned apart, 0.25 ms. Every deal's (a rebuild) keeps the one
        # join: materialized, 110,000 closed deals took 0.89 s instead of
        # 0.51 s
        fence = (
            SQL("NOT MATERIALIZED")
            if leads is None and tasks is None
            else SQL("MATERIALIZED")
        )
        deals = SQL(
            """SELECT l.id, l.team_id, l.company_id, l.user_id,
                      %(won)s AS won, %(lost)s AS lost
                 FROM crm_lead l
                WHERE %(which)s AND l.type = 'opportunity' AND (%(won)s OR %(lost)s)""",
            won=won,
            lost=lost,
            which=which,
        )
        task_rows = SQL(
            """SELECT d.team_id, d.company_id, t.task_template_id, d.user_id,
                      (t.state = 'done' AND d.won)::int,
                      (t.state = 'done' AND d.lost)::int,
                      (t.state = 'todo' AND d.won)::int,
                      (t.state = 'todo' AND d.lost)::int,
                      (t.state = 'na')::int
                 FROM sop_deals d
                 JOIN crm_sop_task t ON t.lead_id = d.id
                WHERE %s AND t.active""",
            tasks if tasks is not None else SQL("TRUE"),
        )
        if tasks is not None:
            return SQL("WITH sop_deals AS MATERIALIZED (%s) %s", deals, task_rows)
        return SQL(
            """WITH sop_deals AS %(fence)s (%(deals)s)
               SELECT d.team_id, d.company_id, NULL::integer, d.user_id,
                      d.won::int, d.lost::int, 0, 0, 0
                 FROM sop_deals d
            UNION ALL %(task_rows)s""",
            fence=fence,
            deals=deals,
            task_rows=task_rows,
        )

    @api.model
    def _sop_flush(self, leads=True):
        """Flush what the counts read. ``leads``: also the opportunities'
        fields; not before a change (the database then holds what was
        counted, and flushing would compute pending fields, e.g. lead
        scoring's probability, before core's own write)."""
        if leads:
            # and the salesperson: which of the team's rows it goes to
            self.env["crm.lead"].flush_model((*SOP_HISTORY_LEAD_FIELDS, "user_id"))
        self.env["crm.stage"].flush_model(["is_won"])
        self.env["crm.sop.task"].flush_model(SOP_HISTORY_TASK_FIELDS)

    @api.model
    def _sop_add(self, rows, sign):
        """Add ``sign`` (1 or -1) times the counts of ``rows`` (SQL): -1 as
        the database holds them before a change, 1 as flushed after it."""
        self._sop_flush(leads=sign > 0)
        self.env.cr.execute(
            SQL(
                """INSERT INTO crm_sop_history_count AS c
                          (team_id, company_id, task_template_id, user_key,
                           won_with, lost_with, won_without, lost_without,
                           set_aside)
                   SELECT r.team, r.company, r.template, r.salesperson,
                          %(sign)s * sum(r.ww), %(sign)s * sum(r.lw),
                          %(sign)s * sum(r.wo), %(sign)s * sum(r.lo),
                          %(sign)s * sum(r.na)
                     FROM (%(rows)s)
                          AS r (team, company, template, salesperson,
                                ww, lw, wo, lo, na)
                 GROUP BY r.team, r.company, r.template, r.salesperson
              ON CONFLICT (team_id, company_id, task_template_id, user_key) DO UPDATE
                      SET won_with = c.won_with + EXCLUDED.won_with,
                          lost_with = c.lost_with + EXCLUDED.lost_with,
                          won_without = c.won_without + EXCLUDED.won_without,
                          lost_without = c.lost_without + EXCLUDED.lost_without,
                          set_aside = c.set_aside + EXCLUDED.set_aside""",
                sign=sign,
                rows=rows,
            )
        )

    @api.model
    def _sop_add_leads(self, leads, sign):
        """What the closed ones of ``leads`` count, added ``sign`` times
        (nothing for open ones: no query when none is closed)."""
        closed = self._sop_closed(leads)
        if closed:
            self._sop_add(self._sop_rows_sql(SQL("l.id = ANY(%s)", closed.ids)), sign)
        return closed

    @api.model
    def _sop_add_tasks(self, tasks, sign, lead_of=None):
        """What ``tasks`` of closed deals count, added ``sign`` times.
        ``lead_of``: {task id: lead} when the caller knows them (the
        engine's rows), so that nothing is read for open deals."""
        if lead_of is None:
            lead_of = {task.id: task.lead_id for task in tasks}
        # a deal whose write counts it out and in again whole: its tasks too
        recounted = self._sop_recounted()
        if recounted:
            lead_of = {
                tid: lead for tid, lead in lead_of.items() if lead.id not in recounted
            }
        closed = self._sop_closed(
            self.env["crm.lead"].union(*lead_of.values()) if lead_of else None
        )
        if closed:
            ids = [tid for tid, lead in lead_of.items() if lead in closed]
            self._sop_add(self._sop_rows_sql(tasks=SQL("t.id = ANY(%s)", ids)), sign)

    @api.model
    def _sop_add_pruned(self, condition):
        """The engine is about to prune the tasks of ``condition`` (SQL on
        ``t``, its task template ``tt``, SOP stage ``s`` and deal ``l``):
        what those of closed deals count is taken out, on their task
        templates' rows alone. A manager archiving or moving a task
        template then neither recounts every team's history nor meets the
        reps closing deals of other teams meanwhile (a rebuild deleted every
        row: a rep's close committed after the manager's save began failed
        it)."""
        self._sop_add(
            self._sop_rows_sql(
                tasks=SQL(
                    """t.id IN (
                        SELECT t.id
                          FROM crm_sop_task t
                          JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
                          JOIN crm_sop_stage s ON s.id = tt.stage_id
                          JOIN crm_lead l ON l.id = t.lead_id
                         WHERE t.active AND %s)""",
                    condition,
                )
            ),
            -1,
        )

    @api.model
    def _sop_recounted(self):
        """Ids of the deals a write is counting out and in again whole
        (crm.lead.write): what their tasks do meanwhile is in that count."""
        return self.env.cr.cache.setdefault("crm_sop_history_recounted", set())

    @api.model
    def _sop_closed(self, leads):
        """The opportunities of ``leads`` that are won or lost (won: active
        in a won stage; lost: archived at 0 %), from the values the ORM holds,
        without reading a field nor computing one earlier than core would
        (an open deal costs nothing); a lead whose values are not held (or
        still to compute) is asked to the database, whose state is what the
        counts hold."""
        Lead = self.env["crm.lead"]
        if not leads:
            return Lead
        won_ids = self.env["crm.stage"]._sop_won_ids()

        def held(lead, fname):
            """The value the ORM holds, or KeyError (none, or to compute)."""
            field = Lead._fields[fname]
            if self.env.is_to_compute(field, lead):
                raise KeyError(fname)
            return self.env.cache.get(lead, field)

        closed, unknown = [], []
        for lead in leads.with_context(active_test=False):
            try:
                if held(lead, "active"):
                    # core keeps won deals at 100 %: below, it is open
                    with contextlib.suppress(KeyError):
                        if (held(lead, "probability") or 0) < 100:
                            continue
                    stage = held(lead, "stage_id")
                    if (stage.id if hasattr(stage, "id") else stage) in won_ids:
                        closed.append(lead.id)
                elif not held(lead, "probability"):
                    closed.append(lead.id)
            except KeyError:
                unknown.append(lead.id)
        if unknown:
            self.env.cr.execute(
                SQL(
                    """SELECT l.id FROM crm_lead l
                        WHERE l.id = ANY(%s) AND l.type = 'opportunity'
                          AND (%s OR %s)""",
                    unknown,
                    sop_won_in_stages_sql(won_ids),
                    SQL(SOP_LOST_SQL),
                )
            )
            closed += [row[0] for row in self.env.cr.fetchall()]
        return Lead.browse(closed)

    @api.model
    def _sop_mark_all(self):
        """The whole history is counted anew by the review facts' job soon
        after this transaction (which stages are won redefined, a pipeline
        stage or a team deleted), rather than in it: a recount deletes every
        row, and a manager's request doing it met any rep's close committed
        meanwhile, in any team (a serialization failure: Odoo tried the
        request again while the reps kept closing). The job takes the
        table's lock first, and comes back shortly when it meets one."""
        # sudo: the engine's own flag and job, whoever changed the pipeline
        self.env["ir.config_parameter"].sudo().set_param(SOP_HISTORY_STALE, "1")
        self.env.ref("crm_sales_sop.ir_cron_sop_facts_rebuild").sudo()._trigger()

    @api.model
    def _sop_rebuild(self):
        """Count the whole history anew (install; the review facts' job
        after ``_sop_mark_all``)."""
        self._sop_flush()
        self.env.cr.execute("DELETE FROM crm_sop_history_count")
        self._sop_add(self._sop_rows_sql(), 1)

    # ------------------------------------------------------------
    # READ: what the uplift (crm.lead.get_sop_uplift) and the coaching
    # queue (crm.sop.coaching) know of a history, whatever its size
    # ------------------------------------------------------------

    @api.model
    def _sop_companies_sql(self):
        """SQL on ``l`` (a deal, or a row of the counts): of the companies
        the user works in (or of none), as the multi-company rule of
        crm.lead reads them."""
        return SQL(
            "(l.company_id IS NULL OR l.company_id IN %s)",
            tuple(self.env.companies.ids),
        )

    @api.model
    def _sop_totals(self, history):
        """{company id: (won, lost)} of the history (SQL on ``l``: its
        team_id and company_id)."""
        self.env.cr.execute(
            SQL(
                """SELECT l.company_id, sum(l.won_with), sum(l.lost_with)
                     FROM crm_sop_history_count l
                    WHERE l.task_template_id IS NULL AND %s
                 GROUP BY l.company_id""",
                history,
            )
        )
        return {
            company: (int(won), int(lost))
            for company, won, lost in self.env.cr.fetchall()
            if won or lost
        }

    @api.model
    def _sop_task_counts(self, history, task_template_ids=None):
        """{(company id, task template id): (won_with, lost_with,
        won_without, lost_without)} of the history (SQL on ``l``: team_id,
        company_id), for ``task_template_ids`` (None: every one it had)."""
        if task_template_ids is not None and not task_template_ids:
            return {}
        templates = (
            SQL("l.task_template_id = ANY(%s)", list(task_template_ids))
            if task_template_ids is not None
            else SQL("l.task_template_id IS NOT NULL")
        )
        self.env.cr.execute(
            SQL(
                """SELECT l.company_id, l.task_template_id, sum(l.won_with),
                          sum(l.lost_with), sum(l.won_without), sum(l.lost_without)
                     FROM crm_sop_history_count l
                    WHERE %s AND %s
                 GROUP BY l.company_id, l.task_template_id""",
                templates,
                history,
            )
        )
        return {
            (row[0], row[1]): tuple(int(value) for value in row[2:])
            for row in self.env.cr.fetchall()
            if any(row[2:])
        }

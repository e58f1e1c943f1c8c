import logging
from collections import defaultdict

from odoo import api, models
from odoo.tools import SQL

from .crm_sop_config import SopTaskRow
from .crm_sop_prediction import sop_progress_band

_logger = logging.getLogger(__name__)


class SopBatch:
    """What the kinds' ``_sop_done_<kind>`` share in one evaluation pass: the
    leads (sudo, their fields fetched for the whole batch) by id, and the
    engine's configuration."""

    __slots__ = ("config", "leads")

    def __init__(self, leads, config):
        self.leads = leads
        self.config = config


class CrmSopTask(models.Model):
    """The engine, evaluation: the state of every task of a batch of leads
    from their data (each kind decides in crm_sop_task_kind.py), the leads'
    SOP summary, what the stage gates check, and the events that feed it."""

    _inherit = "crm.sop.task"

    # ------------------------------------------------------------
    # ENGINE: evaluation
    # ------------------------------------------------------------

    @api.model
    def _sop_read_rows(self, lead_ids):
        """The rows (SopTaskRow) of the active tasks of the leads, one query."""
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """SELECT id, lead_id, task_template_id, state, date_script_sent
                     FROM crm_sop_task
                    WHERE active AND lead_id = ANY(%s)""",
                list(lead_ids),
            )
        )
        return [SopTaskRow(*row) for row in self.env.cr.fetchall()]

    @api.model
    def _sop_heal(self, leads, rows, config):
        """Tasks an open lead should have and has not (a task template added
        while another transaction created the lead, whose insert could not see
        it): inserted now. No query when nothing is missing (the caller
        fetched the leads' playbook, active and probability)."""
        expected = defaultdict(set)
        for c in config.values():
            expected[c.template_id].add(c.id)
        present = defaultdict(set)
        for row in rows:
            present[row.lead_id].add(row.task_template_id)
        missing = [
            lead.id
            for lead in leads
            if lead.sop_template_id
            and lead.active
            and (lead.probability or 0) < 100
            and expected[lead.sop_template_id.id] - present[lead.id]
        ]
        if not missing:
            return []
        _logger.info("Sales SOP: %s opportunities get missing tasks", len(missing))
        return self._sop_insert(lead_ids=missing)

    @api.model
    def _sop_fetch(self, leads, rows, config, extra=()):
        """Read what the kinds of these rows need, for the whole batch: the
        fields their tasks watch, on the leads and on their customers."""
        configs = [config[tt_id] for tt_id in {row.task_template_id for row in rows}]
        lead_fields = {name for c in configs for name in c.lead_fields}
        partner_fields = {name for c in configs for name in c.partner_fields}
        if partner_fields:
            lead_fields.add("partner_id")
        if lead_fields or extra:
            leads.fetch(list(lead_fields | set(extra)))
        if partner_fields:
            leads.partner_id.fetch(list(partner_fields))

    @api.model
    def _sop_evaluate(self, leads, rows=None, templates=None):
        """Decide the state of every task of ``leads`` in one pass.

        Reads what the task kinds need for the whole batch (lead and customer
        fields), lets each kind decide for all its rows at once
        (``_sop_done_<kind>``, see crm_sop_task_kind.py), writes the tasks
        whose state changes (one UPDATE per target state), then the leads' SOP
        summary in one statement.

        ``rows``: the leads' task rows when the caller has them (new leads);
        ``templates``: playbooks to write with the summary (new leads).
        Works on plain rows and SQL rather than records: it derives task states
        from data the current user was allowed to write (reps have no write
        access on tasks), for batches of thousands of leads.
        """
        if not leads:
            return
        config = self.env["crm.sop.task.template"]._sop_config()
        leads = leads.sudo().with_context(active_test=False, prefetch_fields=False)
        if rows is None:
            rows = [
                row
                for row in self._sop_read_rows(leads.ids)
                if row.task_template_id in config
            ]
            self._sop_fetch(
                leads, rows, config, extra=("sop_template_id", "active", "probability")
            )
            healed = self._sop_heal(leads, rows, config)
            if healed:
                rows += [row for row in healed if row.task_template_id in config]
                self._sop_fetch(leads, rows, config)
        else:
            rows = [row for row in rows if row.task_template_id in config]
            self._sop_fetch(leads, rows, config)

        batch = SopBatch(leads={lead.id: lead for lead in leads}, config=config)
        rows_by_kind = defaultdict(list)
        for row in rows:
            rows_by_kind[config[row.task_template_id].kind].append(row)
        done = {}
        for kind, kind_rows in rows_by_kind.items():
            done.update(getattr(self, f"_sop_done_{kind}")(batch, kind_rows))

        to_done, to_todo, new_rows = [], [], []
        for row in rows:
            if row.state == "na":
                pass  # set aside by the rep: the system leaves it alone
            elif done[row.id] and row.state == "todo":
                to_done.append(row.id)
                row = row._replace(state="done")
            elif not done[row.id] and row.state == "done":
                to_todo.append(row.id)
                row = row._replace(state="todo")
            new_rows.append(row)
        if to_done or to_todo:
            self.flush_model()
            now, uid = self.env.cr.now(), self.env.uid
            # the credit (who, when) is the first completion's: a task undone
            # and done again (a field cleared and filled by someone else)
            # keeps it, so re-evaluating moves no credit and no stall clock
            if to_done:
                self.env.cr.execute(
                    SQL(
                        """UPDATE crm_sop_task
                              SET state = 'done', completion = 'auto',
                                  date_done = COALESCE(date_done, %s),
                                  done_user_id = COALESCE(done_user_id, %s)
                            WHERE id = ANY(%s)""",
                        now,
                        uid,
                        to_done,
                    )
                )
            if to_todo:
                self.env.cr.execute(
                    SQL(
                        """UPDATE crm_sop_task
                              SET state = 'todo', completion = NULL
                            WHERE id = ANY(%s)""",
                        to_todo,
                    )
                )
            self.invalidate_model(["state", "completion", "date_done", "done_user_id"])
        self._sop_update_summary(leads, new_rows, templates)

    @api.model
    def _sop_summary(self, items, lead_order, orders):
        """(progress, SOP stage id, next task id) of a lead from its tasks
        [(SopTaskConfig, SopTaskRow)] in SOP order and the order of its
        pipeline stage. Tasks marked not applicable count neither as open nor
        as done. The next step follows the deal: the first open task of a SOP
        stage at or after the deal's pipeline stage; open tasks of earlier
        stages are left behind (the next step only when nothing is ahead)."""
        applicable = [(c, row) for c, row in items if row.state != "na"]
        open_items = [(c, row) for c, row in applicable if row.state == "todo"]
        if applicable:
            done = len(applicable) - len(open_items)
            progress = round(100 * done / len(applicable))
        else:
            progress = 100 if items else 0
        if not open_items:
            return progress, (items[-1][0].stage_id if items else False), False
        ahead = [
            (c, row)
            for c, row in open_items
            if lead_order is None
            or not c.crm_stage_id
            or orders.get(c.crm_stage_id, lead_order) >= lead_order
        ]
        c, row = (ahead or open_items)[0]
        return progress, c.stage_id, row.id

    @api.model
    def _sop_gate_held(self, items, lead_order, orders):
        """A block gate holds the deal where it stands: a required task of a
        SOP stage that blocks the deal's own pipeline stage is open.
        ``items``: [(order, SopTaskConfig, SopTaskRow)] of the lead."""
        return any(
            c.gate == "block"
            and c.required
            and row.state == "todo"
            and c.crm_stage_id
            and orders.get(c.crm_stage_id) == lead_order
            for _order, c, row in items
        )

    @api.model
    def _sop_update_summary(self, leads, rows=None, templates=None, forward=()):
        """Write sop_progress, sop_stage_id and sop_next_task_id (and, for new
        leads, sop_template_id) of the leads in one UPDATE of the rows that
        change; ``forward``: ids of leads whose pipeline stage just moved
        forward.

        The stall clock (``sop_stage_date``) is the last real forward
        movement: the lead's creation, its last forward pipeline move
        (``sop_forward_date``), or the first completion of a task done now.
        Setting a task aside and restoring it, or ticking a task and
        reopening it, leaves it where it was.

        Raw SQL rather than stored computed fields (as core does for
        automated_probability): the summary derives from task rows that the
        engine already holds, written in SQL. Measured with a stored-compute
        prototype (compute_sudo, recompute marked by the engine): 1-2 queries
        fewer on create and stage moves, but one more per batch on every
        re-evaluation (the compute re-reads the task rows), 0.1-0.3 s slower
        per 1,000 leads re-evaluated, and the new lead's playbook then needs a
        dirty cache write outside write(). The new-lead path writes the
        playbook in this same statement. No caller outside the engine may
        write these fields (crm.lead refuses them)."""
        if not leads:
            return
        config = self.env["crm.sop.task.template"]._sop_config()
        if rows is None:
            rows = self._sop_read_rows(leads.ids)
        by_lead = defaultdict(list)
        for row in rows:
            c = config.get(row.task_template_id)
            if c is not None:
                by_lead[row.lead_id].append((c.order, c, row))
        fnames = ["sop_progress", "sop_stage_id", "sop_next_task_id", "sop_gate_held"]
        leads = leads.sudo().with_context(prefetch_fields=False)
        leads.fetch([*fnames, "sop_progress_band", "active"])
        # New leads whose stage core has not computed yet are in the first
        # stage of their team: reading it here would compute it now, lead by
        # lead, out of core's batch; the first open task is then the next step.
        stage_field = leads._fields["stage_id"]
        staged = leads.filtered(
            lambda lead: not self.env.is_to_compute(stage_field, lead)
        )
        staged.fetch(["stage_id"])
        staged_ids = set(staged.ids)
        orders = self.env["crm.stage"]._sop_orders()
        won_ids = self.env["crm.stage"]._sop_won_ids()
        values = []
        banded = []  # open leads whose band changes
        for lead in leads:
            lead_order = orders.get(lead.stage_id.id) if lead.id in staged_ids else None
            progress, stage_id, next_task_id = self._sop_summary(
                [(c, row) for _order, c, row in sorted(by_lead.get(lead.id, ()))],
                lead_order,
                orders,
            )
            # the band follows the progress while the deal is open, and is
            # frozen once it is won or lost (what predictive lead scoring
            # learns from): None keeps the band it has
            is_open = lead.active and (
                lead.id not in staged_ids or lead.stage_id.id not in won_ids
            )
            band = sop_progress_band(progress) if is_open else None
            held = bool(
                is_open
                and lead_order is not None
                and self._sop_gate_held(by_lead.get(lead.id, ()), lead_order, orders)
            )
            if (
                templates
                or lead.id in forward
                or lead.sop_progress != progress
                or lead.sop_stage_id.id != stage_id
                or lead.sop_next_task_id.id != next_task_id
                or lead.sop_gate_held != held
            ):
                values.append(
                    (
                        lead.id,
                        progress,
                        stage_id,
                        next_task_id,
                        band,
                        lead.id in forward,
                        held,
                    )
                )
                if band is not None and lead.sop_progress_band != band:
                    banded.append(lead.id)
        if not values:
            return
        self.env["crm.lead"].flush_model(
            [
                *fnames,
                "sop_template_id",
                "sop_stage_date",
                "sop_forward_date",
                "sop_stalled",
                "sop_progress_band",
            ]
        )
        self.flush_model(["state", "date_done", "active"])
        band = SQL("sop_progress_band = COALESCE(v.band, l.sop_progress_band)")
        # the stall clock: a later value is a real forward movement (the
        # deal is not stalled any more); an earlier one (a task reopened)
        # leaves the flag to the next stall pass
        moved = SQL(
            """sop_forward_date = CASE WHEN v.forward THEN %(now)s
                                       ELSE l.sop_forward_date END,
               sop_stage_date = c.date,
               sop_stalled = CASE WHEN c.date > COALESCE(l.sop_stage_date, c.date)
                                  THEN FALSE ELSE l.sop_stalled END""",
            now=self.env.cr.now(),
        )
        columns = ["id", "progress", "stage_id", "task_id", "band", "forward", "held"]
        row_sql = (
            "(%s, %s, %s::integer, %s::integer, %s::varchar, %s::boolean, %s::boolean"
        )
        set_template = SQL()
        if templates:
            fnames.append("sop_template_id")
            columns.append("template_id")
            row_sql += ", %s::integer"
            set_template = SQL("sop_template_id = v.template_id,")
        row_sql += ")"
        rows = SQL(", ").join(
            SQL(
                row_sql,
                lead_id,
                progress,
                stage_id or None,
                task_id or None,
                lead_band,
                lead_forward,
                lead_held,
                *((templates.get(lead_id) or None,) if templates else ()),
            )
            for (
                lead_id,
                progress,
                stage_id,
                task_id,
                lead_band,
                lead_forward,
                lead_held,
            ) in values
        )
        # one statement: the summary, and the SOP stage history of the leads
        # whose SOP stage changes (the stint left ends, the new one starts)
        self.env.cr.execute(
            SQL(
                """WITH v(%(columns)s) AS (VALUES %(rows)s),
                        old AS (SELECT l.id, l.sop_stage_id
                                  FROM crm_lead l JOIN v ON v.id = l.id),
                        c AS (
                            SELECT v.id, GREATEST(
                                       l.create_date,
                                       CASE WHEN v.forward THEN %(now)s
                                            ELSE l.sop_forward_date END,
                                       (SELECT MAX(t.date_done) FROM crm_sop_task t
                                         WHERE t.lead_id = v.id AND t.active
                                           AND t.state = 'done')) AS date
                              FROM v JOIN crm_lead l ON l.id = v.id),
                        summary AS (
                            UPDATE crm_lead l
                               SET sop_progress = v.progress,
                                   sop_stage_id = v.stage_id,
                                   sop_next_task_id = v.task_id,
                                   sop_gate_held = v.held,
                                   %(set_template)s
                                   %(moved)s, %(band)s
                              FROM v JOIN c ON c.id = v.id WHERE l.id = v.id),
                        entered AS (
                            SELECT v.id, v.stage_id FROM v JOIN old ON old.id = v.id
                             WHERE old.sop_stage_id IS DISTINCT FROM v.stage_id),
                        left_stage AS (
                            UPDATE crm_sop_stage_log g SET date_end = %(now)s
                              FROM entered
                             WHERE g.lead_id = entered.id AND g.date_end IS NULL)
                   INSERT INTO crm_sop_stage_log (lead_id, sop_stage_id, date_start)
                   SELECT id, stage_id, %(now)s FROM entered
                    WHERE stage_id IS NOT NULL""",
                columns=SQL(", ").join(SQL.identifier(c) for c in columns),
                rows=rows,
                set_template=set_template,
                moved=moved,
                band=band,
                now=self.env.cr.now(),
            )
        )
        self.env["crm.sop.stage.log"].invalidate_model()
        fnames += ["sop_stage_date", "sop_forward_date", "sop_stalled"]
        leads.invalidate_recordset([*fnames, "sop_progress_band"])
        leads.modified(fnames)
        if banded:
            # the band is a variable of predictive lead scoring: the deals
            # whose band moved get their automated probability recomputed
            leads.browse(banded).modified(["sop_progress_band"])

    # ------------------------------------------------------------
    # ENGINE: events
    # ------------------------------------------------------------

    @api.model
    def _sop_merge(self, head, tails):
        """Opportunities ``tails`` are merged into ``head``: what the system
        cannot re-derive from the merged data (tasks ticked by hand, set
        aside, scripts sent) is kept on the head; then the head is evaluated
        (the data, and the activities done, were merged before).

        A tail's task of a task template the head has is merged into the
        head's task. A tail's task with history whose task template the head
        has not (the tail followed another playbook, or held archived tasks
        of a former one) moves to the head archived, as a team change
        archives the done tasks of a former playbook: the board and the
        reports keep counting it, and it comes back if the head ever follows
        that playbook."""
        # sudo: crm lets the user merge these leads; their tasks follow them
        tasks = (
            self.sudo()
            .with_context(active_test=False)
            .search_fetch(
                [("lead_id", "in", (head | tails).ids)],
                [
                    "lead_id",
                    "task_template_id",
                    "state",
                    "completion",
                    "date_done",
                    "done_user_id",
                    "date_script_sent",
                    "na_reason",
                ],
            )
        )
        head_tasks = {t.task_template_id: t for t in tasks if t.lead_id == head}
        tail_tasks = defaultdict(list)
        for task in tasks:
            tail_tasks[task.lead_id].append(task)
        moved = tasks.browse()
        # the tails in merge order: the more confident one's history first
        for task in (task for tail in tails for task in tail_tasks[tail]):
            target = head_tasks.get(task.task_template_id)
            if not target:
                if task.state != "todo" or task.date_script_sent:
                    moved |= task
                    # a later tail's task of the same template merges into it
                    head_tasks[task.task_template_id] = task
                continue
            vals = {}
            if task.state == "na" and target.state == "todo":
                vals.update(state="na", na_reason=task.na_reason)
            elif (
                task.state == "done"
                and task.completion == "manual"
                and target.state == "todo"
            ):
                vals.update(
                    state="done",
                    completion="manual",
                    date_done=task.date_done,
                    done_user_id=task.done_user_id.id,
                )
            if task.date_script_sent and (
                not target.date_script_sent
                or task.date_script_sent < target.date_script_sent
            ):
                vals["date_script_sent"] = task.date_script_sent
            if vals:
                # at most a few tasks: merges take up to five opportunities
                target.write(vals)
        if moved:
            # one UPDATE; the evaluation below reactivates those the head's
            # own playbook has (its missing tasks are inserted over them)
            moved.write({"lead_id": head.id, "active": False})
            self.env["crm.lead"].invalidate_model(["sop_task_ids"])
        self._sop_evaluate(head)

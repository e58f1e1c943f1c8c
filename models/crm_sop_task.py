from collections import defaultdict

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL, create_index

from .crm_sop_deal import SOP_OPEN_SQL, sop_is_open
from .crm_sop_history_count import SOP_HISTORY_TASK_FIELDS
from .crm_sop_task_fact import SOP_FACT_TASK_FIELDS

# ids of SOP tasks a database connection draws from their sequence at once
SOP_TASK_ID_CACHE = 100

# a task ticked or reopened between these keeps or lacks its review facts'
# row as before (crm.sop.task.fact._sop_write_ticked)
SOP_TICKED_STATES = ("todo", "done")


class CrmSopTask(models.Model):
    _name = "crm.sop.task"
    _description = "Sales SOP Task"
    _order = "stage_id, state desc, task_template_id, id"
    _rec_name = "name"
    # One row per opportunity and task template: millions of rows, written by
    # the engine in SQL. Who and when are date_done / done_user_id; the
    # create/write columns (and their foreign-key checks on every insert) would
    # only slow the instantiation down.
    _log_access = False

    # no index of its own: UNIQUE(lead_id, task_template_id) serves it
    lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        required=True,
        ondelete="cascade",
        readonly=True,
    )
    task_template_id = fields.Many2one(
        "crm.sop.task.template",
        required=True,
        index=True,
        ondelete="cascade",
        readonly=True,
    )
    name = fields.Char(related="task_template_id.name", string="Task")
    # not stored: its task template's, read through it (a column would be a
    # third foreign key checked on each of the millions of rows the engine
    # inserts, and rewritten on every task of a template moved to another
    # SOP stage); the ORM orders, groups and filters by it with a join
    stage_id = fields.Many2one(related="task_template_id.stage_id", string="SOP Stage")
    stage_name = fields.Char(related="stage_id.name", string="SOP Stage Name")
    stage_sequence = fields.Integer(related="stage_id.sequence")
    kind = fields.Selection(related="task_template_id.kind")
    scope = fields.Selection(related="task_template_id.scope")
    required = fields.Boolean(related="task_template_id.required")
    guidance = fields.Html(related="task_template_id.guidance")
    active = fields.Boolean(default=True, readonly=True)
    state = fields.Selection(
        [("todo", "To Do"), ("na", "Not Applicable"), ("done", "Done")],
        required=True,
        default="todo",
        readonly=True,
        help="Not Applicable: set aside by the rep, with a reason; counted "
        "neither as open nor as done.",
    )
    na_reason = fields.Char(string="Why Not Applicable", readonly=True)
    # indexed where set: "done today" (the end-of-day digest) and "done in
    # the period" (the board) read a day or a month of it, not every task
    # the first completion: kept when the task is reopened, so that credit
    # stays with who completed it first (meaningful while state is done)
    date_done = fields.Datetime(
        string="Done On",
        readonly=True,
        index="btree_not_null",
        help="When the task was first done.",
    )
    done_user_id = fields.Many2one(
        "res.users",
        string="Done By",
        readonly=True,
        help="Who first completed the task (by filling its data or by hand).",
    )
    completion = fields.Selection(
        [("auto", "By the system"), ("manual", "By hand")],
        readonly=True,
        help="Who completed the task: the system, from the opportunity's data, "
        "or the rep, by hand.",
    )
    date_script_sent = fields.Datetime(string="Script Sent On", readonly=True)
    # not stored: a stored copy of the lead's salesperson or company would cost
    # queries on every lead write (core crm writes leads one by one when it
    # assigns or converts them); record rules follow lead_id instead
    user_id = fields.Many2one(related="lead_id.user_id", string="Salesperson")
    company_id = fields.Many2one(related="lead_id.company_id")

    button = fields.Selection(
        [
            ("fill_in", "Fill in"),
            ("view", "View"),
            ("send", "Send"),
            ("send_again", "Send again"),
            ("schedule", "Schedule"),
            ("mark_done", "Mark done"),
            ("reopen", "Reopen"),
            ("restore", "Restore"),
        ],
        compute="_compute_button",
        help="The button of the task in the SOP panel; it calls action_sop_open.",
    )
    hint = fields.Char(
        compute="_compute_hint",
        help="Where the task stands: what is missing, when it is planned, "
        "its condition in words, why it was set aside.",
    )
    left_behind = fields.Boolean(
        compute="_compute_left_behind",
        help="Open, and of a SOP stage before the deal's pipeline stage.",
    )
    can_set_aside = fields.Boolean(
        compute="_compute_can_set_aside",
        help="The user may mark this open task not applicable (a required "
        "task only by a sales manager).",
    )

    # My SOP Day: a salesperson's open tasks across all their deals, in the
    # order of the reminder digest (stalled deals first, then what is at
    # stake). The deal's values are read through lead_id (not stored on the
    # task: millions of rows, and core writes leads one by one), which Odoo
    # 18 also orders by in SQL.
    lead_stalled = fields.Boolean(related="lead_id.sop_stalled", string="Stalled")
    lead_prorated_revenue = fields.Monetary(
        related="lead_id.prorated_revenue",
        string="At Stake",
        currency_field="lead_currency_id",
    )
    lead_currency_id = fields.Many2one(related="lead_id.company_currency")
    lead_date_deadline = fields.Date(
        related="lead_id.date_deadline", string="Expected Closing"
    )
    # My SOP Day's deal headers (names: the web client reads no name of a
    # many2one it does not show)
    lead_name = fields.Char(related="lead_id.name", string="Deal")
    lead_partner_name = fields.Char(
        related="lead_id.partner_id.name", string="Customer"
    )
    lead_stage_name = fields.Char(related="lead_id.stage_id.name", string="Stage")
    sop_my_day = fields.Boolean(
        string="Next Steps of My Deals",
        compute="_compute_sop_my_day",
        search="_search_sop_my_day",
        help="An open task of one of my open deals that is a next step today: "
        "a task of the deal's current SOP stage, a required task the deal "
        "left behind, or the deal's next step.",
    )

    _sql_constraints = [
        (
            "lead_task_template_uniq",
            "UNIQUE(lead_id, task_template_id)",
            "An opportunity has one task per task template.",
        ),
    ]

    def init(self):
        # the tasks set aside, whose reasons the Task Feedback lists: found
        # without reading the others (they are few of all tasks)
        create_index(
            self.env.cr,
            "crm_sop_task_set_aside_index",
            self._table,
            ["task_template_id"],
            where="state = 'na'",
        )
        # A deal's tasks are inserted together, an import's by the thousand
        # (13,000 ids for 1,000 deals): an id drawn from the sequence one at
        # a time locks and writes the sequence's page (2,500 instructions
        # each, callgrind). A connection keeps SOP_TASK_ID_CACHE ids at hand
        # instead. Ids stay unique, neither gapless nor in the order of
        # insertion across workers: nothing reads them so (a task is found by
        # its deal and task template; an order by id only breaks ties
        # between tasks of different templates).
        sequence = f"{self._table}_id_seq"
        self.env.cr.execute(
            "SELECT seqcache FROM pg_sequence WHERE seqrelid = %s::regclass",
            [sequence],
        )
        if self.env.cr.fetchone()[0] != SOP_TASK_ID_CACHE:
            self.env.cr.execute(
                SQL(
                    "ALTER SEQUENCE %s CACHE %s",
                    SQL.identifier(sequence),
                    SOP_TASK_ID_CACHE,
                )
            )

    @api.depends("state", "task_template_id.kind")
    def _compute_button(self):
        Kind = self.env["crm.sop.task.kind"]
        for task in self:
            kind = task.task_template_id.kind
            if task.state == "na":
                task.button = "restore"
            else:
                task.button = kind and Kind._sop_kind(kind, "button")(task)

    @api.depends_context("lang")
    @api.depends(
        "state",
        "na_reason",
        "date_script_sent",
        "task_template_id.kind",
        "left_behind",
        "required",
        "stage_id.gate",
        "stage_id.crm_stage_id",
    )
    def _compute_hint(self):
        Kind = self.env["crm.sop.task.kind"]
        # the fields tasks list what is missing of, for all of them at once
        self.lead_id._sop_fetch_collected()
        self.lead_id.partner_id._sop_fetch_collected()
        for task in self:
            kind = task.task_template_id.kind
            method = kind and Kind._sop_kind(kind, "hint")
            if task.state == "na":
                task.hint = task.na_reason
                continue
            hint = (method and method(task)) or ""
            if task.left_behind:
                hint = self.env._("Left behind. %(hint)s", hint=hint).strip()
            elif task.state == "todo" and task.required:
                hint = " ".join(filter(None, [task._sop_gate_hint(), hint]))
            task.hint = hint or False

    @api.depends(
        "state",
        "active",
        "stage_id",
        "required",
        "left_behind",
        "lead_id.user_id",
        "lead_id.active",
        "lead_id.probability",
        "lead_id.sop_stage_id",
        "lead_id.sop_next_task_id",
    )
    @api.depends_context("uid")
    def _compute_sop_my_day(self):
        for task in self:
            lead = task.lead_id
            task.sop_my_day = bool(
                task.state == "todo"
                and task.active
                and lead.user_id.id == self.env.uid
                and sop_is_open(lead)
                and (
                    task.stage_id == lead.sop_stage_id
                    or task == lead.sop_next_task_id
                    or (task.required and task.left_behind)
                )
            )

    def _search_sop_my_day(self, operator, value):
        """My SOP Day is today's work: of the current user's open deals, the
        open tasks of the deal's current SOP stage (the engine's summary,
        ``sop_stage_id``), its next step (``sop_next_task_id``, which may lie
        ahead when nothing is open here) and the required tasks it left
        behind (of a SOP stage mapped to an earlier pipeline stage, as
        ``left_behind`` says); never the stages ahead. One subquery, on the
        user's deals (crm_lead's user index)."""
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(self.env._("Operation not supported"))
        # what the subquery reads, flushed as the ORM does for its own
        # domains: a deal created in this transaction has its summary
        # waiting for core's write of the new row
        self.env["crm.lead"].flush_model(
            ["user_id", "active", "probability", "stage_id"]
            + ["sop_stage_id", "sop_next_task_id"]
        )
        self.env["crm.sop.task"].flush_model(
            ["lead_id", "task_template_id", "state", "active"]
        )
        self.env["crm.sop.task.template"].flush_model(["required", "stage_id"])
        self.env["crm.sop.stage"].flush_model(["crm_stage_id"])
        self.env["crm.stage"].flush_model(["sequence"])
        # pipeline stages in the order of crm.stage._sop_orders (sequence, id)
        query = SQL(
            """
            SELECT t.id
              FROM crm_sop_task t
              JOIN crm_lead l ON l.id = t.lead_id
              JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
              LEFT JOIN crm_sop_stage ss ON ss.id = tt.stage_id
              LEFT JOIN crm_stage ts ON ts.id = ss.crm_stage_id
              LEFT JOIN crm_stage ls ON ls.id = l.stage_id
             WHERE l.user_id = %(uid)s
               AND %(open)s
               AND t.active
               AND t.state = 'todo'
               AND (
                    tt.stage_id = l.sop_stage_id
                    OR t.id = l.sop_next_task_id
                    OR (tt.required AND (ts.sequence, ts.id) < (ls.sequence, ls.id))
               )
            """,
            uid=self.env.uid,
            open=SQL(SOP_OPEN_SQL),
        )
        positive = (operator == "=") == value
        return [("id", "in" if positive else "not in", SQL("(%s)", query))]

    def _sop_gate_hint(self):
        """What the stage gate asks of this open required task."""
        stage = self.stage_id
        if stage.gate == "none" or not stage.crm_stage_id:
            return False
        if stage.gate == "block":
            return self.env._(
                "Needed to leave “%(stage)s”.", stage=stage.crm_stage_id.name
            )
        return self.env._(
            "Logged if still open when the deal leaves “%(stage)s”.",
            stage=stage.crm_stage_id.name,
        )

    @api.depends("state", "stage_id.crm_stage_id", "lead_id.stage_id")
    def _compute_left_behind(self):
        orders = self.env["crm.stage"]._sop_orders()
        for task in self:
            task_order = orders.get(task.stage_id.crm_stage_id.id)
            lead_order = orders.get(task.lead_id.stage_id.id)
            task.left_behind = bool(
                task.state == "todo" and task_order and lead_order
            ) and (task_order < lead_order)

    @api.depends("state", "required")
    @api.depends_context("uid")
    def _compute_can_set_aside(self):
        manager = self.env.user.has_group("sales_team.group_sale_manager")
        for task in self:
            task.can_set_aside = task.state == "todo" and (manager or not task.required)

    # ------------------------------------------------------------
    # CRUD: a closed deal's history counts and the task analysis' facts
    # follow its tasks
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        tasks = super().create(vals_list)
        self.env["crm.sop.history.count"]._sop_add_tasks(tasks, 1)
        self.env["crm.sop.task.fact"]._sop_mark(tasks.lead_id.ids)
        return tasks

    def write(self, vals):
        History = self.env["crm.sop.history.count"]
        Fact = self.env["crm.sop.task.fact"]
        recount = not vals.keys().isdisjoint(SOP_HISTORY_TASK_FIELDS)
        facts = not vals.keys().isdisjoint(SOP_FACT_TASK_FIELDS) or "lead_id" in vals
        # ticked or reopened (a task set aside or restored, moved or
        # deactivated may gain or lose its row: its deal is marked)
        written = vals.keys() & {*SOP_FACT_TASK_FIELDS, "lead_id"}
        ticked = (
            facts
            and written <= {"state", "date_done"}
            and vals.get("state", "todo") in SOP_TICKED_STATES
            and all(task.state in SOP_TICKED_STATES for task in self)
        )
        if facts and not ticked:
            # the deal a task leaves, and the one it joins
            Fact._sop_mark(self.lead_id.ids)
        if recount:
            History._sop_add_tasks(self, -1)
        res = super().write(vals)
        if recount:
            History._sop_add_tasks(self, 1)
        if ticked:
            Fact._sop_write_ticked({task.id: task.lead_id.id for task in self})
        elif facts:
            Fact._sop_mark(self.lead_id.ids)
        return res

    def unlink(self):
        self.env["crm.sop.history.count"]._sop_add_tasks(self, -1)
        return super().unlink()

    # ------------------------------------------------------------
    # ACTIONS (buttons of the SOP panel)
    # ------------------------------------------------------------

    def _sop_check_lead_access(self):
        """Reps have no write access on tasks: what they may do to a task is
        what they may do to its opportunity."""
        self.lead_id.check_access("write")

    def action_sop_open(self):
        """The task's button: what it opens depends on its kind
        (``_sop_action_<kind>``, see crm_sop_task_kind.py); a task set aside
        is restored."""
        self.ensure_one()
        if self.state == "na":
            return self.action_sop_restore()
        kind = self.task_template_id.kind
        return self.env["crm.sop.task.kind"]._sop_kind(kind, "action")(self)

    def action_sop_open_deal(self):
        """A tap on a task of My SOP Day, beside its button: its deal, where
        the SOP panel is."""
        self.ensure_one()
        self.lead_id.check_access("read")
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.lead",
            "res_id": self.lead_id.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
        }

    def action_sop_mark_na(self):
        """Ask why the task does not apply to this deal."""
        self._sop_check_set_aside()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Not applicable"),
            "res_model": "crm.sop.task.na",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {"default_task_ids": self.ids},
        }

    def action_sop_suggest(self):
        """Suggest a change to this task (the rep's voice: crm.sop.suggestion)."""
        self.ensure_one()
        return self.env["crm.sop.suggestion"]._sop_action_suggest(
            self.lead_id, task_template=self.task_template_id
        )

    def _sop_check_set_aside(self):
        self._sop_check_lead_access()
        required = self.filtered("required")
        if required and not self.env.user.has_group("sales_team.group_sale_manager"):
            raise AccessError(
                self.env._(
                    "Only a sales manager may set aside a required task: %(tasks)s.",
                    tasks=", ".join(required.mapped("name")),
                )
            )

    def _sop_set_aside(self, reason):
        """Mark open tasks not applicable, with the reason, logged on their
        opportunities."""
        reason = (reason or "").strip()
        if not reason:
            raise UserError(self.env._("Say why the task does not apply."))
        self._sop_check_set_aside()
        todo = self.filtered(lambda t: t.state == "todo")
        # sudo: reps have no write access on tasks (see _sop_check_lead_access)
        todo.sudo().write({"state": "na", "na_reason": reason, "completion": False})
        todo._sop_log(
            self.env._(
                "Sales SOP task “%(task)s” set aside as not applicable: %(reason)s"
            ),
            reason=reason,
        )
        self.env["crm.sop.engine"]._sop_update_summary(todo.lead_id)
        return True

    def action_sop_restore(self):
        """A task set aside applies again: it is open, or done if the deal's
        data already says so."""
        self._sop_check_lead_access()
        aside = self.filtered(lambda t: t.state == "na")
        aside.sudo().write({"state": "todo", "na_reason": False})
        aside._sop_log(self.env._("Sales SOP task “%(task)s” applies again."))
        self.env["crm.sop.engine"]._sop_evaluate(aside.lead_id)
        return True

    def _sop_log(self, message, **values):
        """A note per opportunity in its chatter, in one batch; ``message``
        is translated, with %(task)s and the keys of ``values``."""
        bodies = defaultdict(list)
        for task in self:
            line = message % {"task": task.name, **values}
            bodies[task.lead_id.id].append(Markup("<li>%s</li>") % line)
        self.lead_id._message_log_batch(
            {
                lead_id: Markup("<ul>%s</ul>") % Markup().join(lines)
                for lead_id, lines in bodies.items()
            }
        )

    # ------------------------------------------------------------
    # SCRIPTS (one-click send: crm_sop_script_send.py)
    # ------------------------------------------------------------

    def _sop_script_template(self):
        """The task's script, checked usable by the current user."""
        self.ensure_one()
        if self.kind != "script" or self.state == "na":
            raise UserError(
                self.env._("“%(task)s” has no script to send.", task=self.name)
            )
        self._sop_check_lead_access()
        self.env["crm.sop.script.send"]._sop_check_customer(self.lead_id)
        # sudo: reps may send scripts they cannot read the configuration of
        return self.sudo().task_template_id.mail_template_id.sudo(False)

    def sop_render_script(self, lang=None):
        """{'subject', 'body'}: the task's script rendered for its deal, the
        body as plain text ready to paste."""
        template = self._sop_script_template()
        return self.env["crm.sop.script.send"]._sop_text(
            self.lead_id, template.id, lang=lang
        )

    def action_sop_send_script(self, channel="email", lang=None):
        """Send the task's script in one click (``copy``: the rep confirms
        that the copied text was sent); it completes this task only. Returns
        what the rep is told: the script, to whom, and the Undo of an email
        still in the outgoing queue."""
        template = self._sop_script_template()
        Send = self.env["crm.sop.script.send"]
        send = Send._sop_send(
            self.lead_id, template.id, channel=channel, task=self, lang=lang
        )
        return send._sop_sent_notice(Send._sop_lang(self.lead_id, lang))

    def action_sop_copy_script(self):
        """Copy the rendered script to the clipboard (a messenger such as
        WeChat); the rep then confirms that it was sent."""
        template = self._sop_script_template()
        return self.env["crm.sop.script.send"]._sop_copy_action(
            self.lead_id, template.id, record=self
        )

    def action_sop_edit_script(self, lang=None):
        """ "Edit first": the composer with the script, sent from this task,
        in the language the rep chose (``lang``)."""
        template = self._sop_script_template()
        return self.env["crm.sop.script.send"]._sop_composer_action(
            self.lead_id, template, task=self, lang=lang
        )

    def action_sop_mark_done(self):
        manual = self.filtered(lambda t: t.task_template_id.kind == "manual")
        if manual != self:
            raise UserError(
                self.env._(
                    "Only tasks ticked by hand can be marked done by hand; the "
                    "system completes the others from the opportunity's data."
                )
            )
        manual._sop_check_lead_access()
        todo = manual.filtered(lambda t: t.state == "todo")
        # sudo: reps have no write access on tasks (see _sop_check_lead_access)
        todo.sudo().write({"state": "done", "completion": "manual"})
        # the credit is the first completion's (reopened and ticked again:
        # it stays with who ticked it first)
        todo.filtered(lambda t: not t.date_done).sudo().write(
            {"date_done": fields.Datetime.now(), "done_user_id": self.env.uid}
        )
        self.env["crm.sop.engine"]._sop_update_summary(manual.lead_id)
        return True

    def action_sop_reopen(self):
        manual = self.filtered(lambda t: t.task_template_id.kind == "manual")
        if manual != self:
            raise UserError(
                self.env._("Only tasks ticked by hand can be reopened by hand.")
            )
        manual._sop_check_lead_access()
        manual.sudo().write({"state": "todo", "completion": False})
        self.env["crm.sop.engine"]._sop_update_summary(manual.lead_id)
        return True

import logging
from collections import defaultdict

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, split_every

_logger = logging.getLogger(__name__)

# leads evaluated per pass when a whole playbook or the install reaches them
EVALUATE_CHUNK = 5000


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
    stage_id = fields.Many2one(
        related="task_template_id.stage_id", store=True, string="SOP Stage"
    )
    stage_name = fields.Char(related="stage_id.name", string="SOP Stage Name")
    kind = fields.Selection(related="task_template_id.kind")
    scope = fields.Selection(related="task_template_id.scope")
    required = fields.Boolean(related="task_template_id.required")
    guidance = fields.Html(related="task_template_id.guidance")
    active = fields.Boolean(default=True, readonly=True)
    state = fields.Selection(
        [("todo", "To Do"), ("done", "Done")],
        required=True,
        default="todo",
        readonly=True,
    )
    date_done = fields.Datetime(string="Done On", readonly=True)
    done_user_id = fields.Many2one("res.users", string="Done By", readonly=True)
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

    _sql_constraints = [
        (
            "lead_task_template_uniq",
            "UNIQUE(lead_id, task_template_id)",
            "An opportunity has one task per task template.",
        ),
    ]

    # ------------------------------------------------------------
    # ACTIONS (buttons of the SOP panel)
    # ------------------------------------------------------------

    def _sop_check_lead_access(self):
        """Reps have no write access on tasks: what they may do to a task is
        what they may do to its opportunity."""
        self.lead_id.check_access("write")

    def action_sop_open(self):
        """The task's button: fill in, view, send the script, schedule."""
        self.ensure_one()
        kind = self.task_template_id.kind
        lead = self.lead_id
        if kind == "fields":
            return self._sop_action_fill()
        if kind == "script":
            self._sop_check_lead_access()
            return {
                "type": "ir.actions.act_window",
                "name": self.name,
                "res_model": "mail.compose.message",
                "view_mode": "form",
                "views": [(False, "form")],
                "target": "new",
                "context": {
                    "default_model": "crm.lead",
                    "default_res_ids": lead.ids,
                    "default_template_id": self.sudo().task_template_id.mail_template_id.id,
                    "default_composition_mode": "comment",
                    "default_email_layout_xmlid": "mail.mail_notification_light",
                    "sop_task_id": self.id,
                },
            }
        if kind == "activity":
            self._sop_check_lead_access()
            return {
                "type": "ir.actions.act_window",
                "name": self.name,
                "res_model": "mail.activity.schedule",
                "view_mode": "form",
                "views": [(False, "form")],
                "target": "new",
                "context": {
                    "active_model": "crm.lead",
                    "active_id": lead.id,
                    "active_ids": lead.ids,
                    "default_res_model": "crm.lead",
                    "default_res_ids": str(lead.ids),
                    "default_activity_type_id": self.sudo().task_template_id.activity_type_id.id,
                },
            }
        if kind == "manual":
            return self.action_sop_mark_done()
        return False

    def _sop_action_fill(self):
        self.ensure_one()
        task_template = self.task_template_id
        if task_template.scope == "customer":
            record = self.lead_id.partner_id
            if not record:
                raise UserError(
                    self.env._(
                        "Set the customer of “%(lead)s” first: the task “%(task)s” "
                        "collects the customer's data.",
                        lead=self.lead_id.display_name,
                        task=self.name,
                    )
                )
        else:
            record = self.lead_id
        return {
            "type": "ir.actions.act_window",
            "name": self.name,
            "res_model": record._name,
            "res_id": record.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            # the key ends with _view_ref: the web client passes it to get_views
            # and it is part of the view cache key (see crm.sop.fill.mixin)
            "context": {"sop_fill_view_ref": task_template.id},
        }

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
        todo.sudo().write(
            {
                "state": "done",
                "completion": "manual",
                "date_done": fields.Datetime.now(),
                "done_user_id": self.env.uid,
            }
        )
        self._sop_update_summary(manual.lead_id)
        return True

    def action_sop_reopen(self):
        manual = self.filtered(lambda t: t.task_template_id.kind == "manual")
        if manual != self:
            raise UserError(
                self.env._("Only tasks ticked by hand can be reopened by hand.")
            )
        manual._sop_check_lead_access()
        manual.sudo().write(
            {
                "state": "todo",
                "completion": False,
                "date_done": False,
                "done_user_id": False,
            }
        )
        self._sop_update_summary(manual.lead_id)
        return True

    # ------------------------------------------------------------
    # ENGINE: instantiation
    # ------------------------------------------------------------

    @api.model
    def _sop_sync(self, leads, new=False, evaluate=None):
        """Give each lead the playbook of its team (or the company fallback) and
        that playbook's tasks, then evaluate them. ``new``: the leads were just
        created (nothing to prune; the playbook is written with the summary).
        ``evaluate``: leads to evaluate even if their playbook does not change.
        Costs no query when nothing changes."""
        if not leads:
            return
        Template = self.env["crm.sop.template"]
        targets = {}
        for lead in leads:
            template_id = (
                Template._sop_template_for(lead.team_id, lead.company_id)
                if lead.active
                else lead.sop_template_id.id
            )
            if lead.sop_template_id.id != template_id:
                targets[lead.id] = template_id
        if new:
            if targets:
                rows = self._sop_insert(templates=targets)
                self._sop_evaluate(leads.browse(list(targets)), rows, targets)
            return
        if targets:
            self._sop_set_templates(targets)
            self._sop_prune(list(targets))
            self._sop_insert(lead_ids=list(targets))
        self._sop_evaluate(leads.browse(list(targets)) | (evaluate or leads.browse()))

    @api.model
    def _sop_set_templates(self, targets):
        """targets: {lead id: playbook id or False}; one UPDATE per playbook."""
        self._sop_flush()
        by_template = defaultdict(list)
        for lead_id, template_id in targets.items():
            by_template[template_id].append(lead_id)
        for template_id, lead_ids in by_template.items():
            self.env.cr.execute(
                SQL(
                    "UPDATE crm_lead SET sop_template_id = %s WHERE id = ANY(%s)",
                    template_id or None,
                    lead_ids,
                )
            )
        self.env["crm.lead"].browse(list(targets)).invalidate_recordset(
            ["sop_template_id"]
        )

    @api.model
    def _sop_flush(self, lead_fields=()):
        """Flush what the engine's SQL reads, and only that: flushing everything
        would compute unrelated pending fields (e.g. PLS probabilities) earlier
        than core does."""
        self.env["crm.lead"].flush_model(["sop_template_id", "active", *lead_fields])
        self.env["crm.sop.task.template"].flush_model(
            ["template_id", "stage_id", "active", "name"]
        )
        self.env["crm.sop.stage"].flush_model(["active"])
        self.flush_model()

    @api.model
    def _sop_deferred(self):
        """While this module's own data is loaded, playbook changes do not reach
        leads one record at a time: the post_init_hook does it once for all."""
        # the registry is not ready while modules load: a client sending the
        # install_module key itself does not defer anything
        return (
            not self.pool.ready
            and self.env.context.get("install_module") == "crm_sales_sop"
        )

    @api.model
    def _sop_sync_all(self, everything=False):
        """Re-map every open opportunity to its playbook (install, playbook
        changes), by chunks, without per-record ORM work:

        - leads without playbook yet take the path of new leads: their tasks
          are inserted with RETURNING and evaluated from those rows, and the
          playbook is written with the summary (one UPDATE of crm_lead);
        - leads mapped to another playbook: one UPDATE per (team, company),
          then their old open tasks go, the new ones are inserted, evaluated.

        ``everything`` (install): also insert and evaluate the missing tasks
        of leads already mapped (created while the module's data loaded)."""
        if self._sop_deferred() and not everything:
            return
        self._sop_flush(["team_id", "company_id", "probability"])
        Lead = self.env["crm.lead"].with_context(
            active_test=False, prefetch_fields=False
        )
        Template = self.env["crm.sop.template"]
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT team_id, company_id FROM crm_lead
                    WHERE active AND COALESCE(probability, 0) < 100
                      AND sop_template_id IS NOT NULL"""
            )
        )
        changed_ids = []
        for team_id, company_id in self.env.cr.fetchall():
            template_id = Template._sop_template_for(
                self.env["crm.team"].browse(team_id),
                self.env["res.company"].browse(company_id),
            )
            self.env.cr.execute(
                SQL(
                    """UPDATE crm_lead SET sop_template_id = %(template)s
                        WHERE active AND COALESCE(probability, 0) < 100
                          AND sop_template_id IS NOT NULL
                          AND team_id IS NOT DISTINCT FROM %(team)s
                          AND company_id IS NOT DISTINCT FROM %(company)s
                          AND sop_template_id IS DISTINCT FROM %(template)s
                    RETURNING id""",
                    template=template_id or None,
                    team=team_id,
                    company=company_id,
                )
            )
            changed_ids += [row[0] for row in self.env.cr.fetchall()]
        Lead.invalidate_model(["sop_template_id"])
        if changed_ids:
            self._sop_prune(changed_ids)
            self._sop_insert(changed_ids)
            self._sop_evaluate_ids(changed_ids)
        mapped_ids = []
        if everything:
            # leads mapped before this pass whose playbook did not change
            self.env.cr.execute(
                SQL(
                    """SELECT id FROM crm_lead
                        WHERE active AND COALESCE(probability, 0) < 100
                          AND sop_template_id IS NOT NULL AND id != ALL(%s)
                     ORDER BY id""",
                    changed_ids,
                )
            )
            mapped_ids = [row[0] for row in self.env.cr.fetchall()]
        # leads without playbook yet: the path of new leads
        self.env.cr.execute(
            SQL(
                """SELECT id FROM crm_lead
                    WHERE active AND COALESCE(probability, 0) < 100
                      AND sop_template_id IS NULL
                 ORDER BY id"""
            )
        )
        for ids in split_every(
            EVALUATE_CHUNK, [row[0] for row in self.env.cr.fetchall()]
        ):
            leads = Lead.browse(ids)
            leads.fetch(["team_id", "company_id", "sop_template_id", "active"])
            self._sop_sync(leads, new=True)
            # keep memory flat on large databases
            self.env.invalidate_all(flush=True)
        if everything and mapped_ids:
            self._sop_insert(mapped_ids)
            self._sop_evaluate_ids(mapped_ids)

    @api.model
    def _sop_insert(self, lead_ids=None, task_template_ids=None, templates=None):
        """Create the missing tasks of the leads' playbooks in one statement
        (and reactivate those archived earlier). ``templates``: {lead id:
        playbook id} of new leads whose playbook is not written yet.
        Returns the rows (id, lead_id, task_template_id, state, sent) created or
        reactivated."""
        conditions = [SQL("tt.active"), SQL("s.active")]
        if templates is not None:
            pairs = [(lead_id, tid) for lead_id, tid in templates.items() if tid]
            if not pairs:
                return []
            source = SQL(
                "(VALUES %s) AS l(id, sop_template_id)",
                SQL(", ").join(SQL("(%s, %s)", lead_id, tid) for lead_id, tid in pairs),
            )
        else:
            source = SQL("crm_lead l")
        if lead_ids is not None:
            conditions.append(SQL("l.id = ANY(%s)", list(lead_ids)))
        open_leads = task_template_ids is not None
        if open_leads:
            # a task added to a live playbook reaches its open opportunities
            conditions.append(SQL("tt.id = ANY(%s)", list(task_template_ids)))
            conditions.append(SQL("l.active AND COALESCE(l.probability, 0) < 100"))
        self._sop_flush(["probability"] if open_leads else ())
        self.env.cr.execute(
            SQL(
                """INSERT INTO crm_sop_task (lead_id, task_template_id, stage_id,
                           state, active)
                    SELECT l.id, tt.id, tt.stage_id, 'todo', TRUE
                      FROM %(source)s
                      JOIN crm_sop_task_template tt
                        ON tt.template_id = l.sop_template_id
                      JOIN crm_sop_stage s ON s.id = tt.stage_id
                     WHERE %(where)s
                ON CONFLICT (lead_id, task_template_id)
                DO UPDATE SET active = TRUE WHERE crm_sop_task.active IS NOT TRUE
                RETURNING id, lead_id, task_template_id, state, date_script_sent""",
                source=source,
                where=SQL(" AND ").join(conditions),
            )
        )
        rows = self.env.cr.fetchall()
        self.invalidate_model()
        self.env["crm.lead"].invalidate_model(["sop_task_ids"])
        return rows

    @api.model
    def _sop_prune(self, lead_ids=None, task_template_ids=None):
        """Tasks that no longer belong to their lead's playbook (or whose
        template was archived): open ones are deleted, done ones archived with
        their history."""
        condition = SQL(
            """(tt.template_id IS DISTINCT FROM l.sop_template_id
                 OR NOT tt.active OR NOT s.active)"""
        )
        if lead_ids is not None:
            condition = SQL("%s AND t.lead_id = ANY(%s)", condition, list(lead_ids))
        if task_template_ids is not None:
            condition = SQL(
                "%s AND t.task_template_id = ANY(%s)",
                condition,
                list(task_template_ids),
            )
        self._sop_flush()
        self.env.cr.execute(
            SQL(
                """DELETE FROM crm_sop_task t
                     USING crm_sop_task_template tt, crm_sop_stage s, crm_lead l
                    WHERE tt.id = t.task_template_id AND s.id = tt.stage_id
                      AND l.id = t.lead_id AND t.state = 'todo' AND %s""",
                condition,
            )
        )
        self.env.cr.execute(
            SQL(
                """UPDATE crm_sop_task t SET active = FALSE
                     FROM crm_sop_task_template tt, crm_sop_stage s, crm_lead l
                    WHERE tt.id = t.task_template_id AND s.id = tt.stage_id
                      AND l.id = t.lead_id AND t.active AND %s""",
                condition,
            )
        )
        self.invalidate_model()
        self.env["crm.lead"].invalidate_model(["sop_task_ids"])

    @api.model
    def _sop_instantiate_templates(self, task_templates):
        """A task template was added, moved, archived or restored: open
        opportunities of its playbook get (or lose) its task."""
        if not task_templates or self._sop_deferred():
            return
        self._sop_prune(task_template_ids=task_templates.ids)
        self._sop_insert(task_template_ids=task_templates.ids)
        self._sop_evaluate_templates(task_templates)

    @api.model
    def _sop_evaluate_templates(self, task_templates):
        """Re-evaluate every lead holding a task of these task templates."""
        if self._sop_deferred():
            return
        self._sop_flush()
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT t.lead_id FROM crm_sop_task t
                    WHERE t.task_template_id = ANY(%s)""",
                task_templates.ids,
            )
        )
        self._sop_evaluate_ids([row[0] for row in self.env.cr.fetchall()])

    @api.model
    def _sop_evaluate_ids(self, lead_ids):
        Lead = self.env["crm.lead"].with_context(active_test=False)
        for ids in split_every(EVALUATE_CHUNK, lead_ids):
            self._sop_evaluate(Lead.browse(ids))
            # keep memory flat on large installs
            self.env.invalidate_all(flush=True)

    # ------------------------------------------------------------
    # ENGINE: evaluation
    # ------------------------------------------------------------

    @api.model
    def _sop_read_rows(self, lead_ids):
        """(id, lead_id, task_template_id, state, date_script_sent) of the
        active tasks of the leads, in one query."""
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """SELECT id, lead_id, task_template_id, state, date_script_sent
                     FROM crm_sop_task
                    WHERE active AND lead_id = ANY(%s)""",
                list(lead_ids),
            )
        )
        return self.env.cr.fetchall()

    @api.model
    def _sop_heal(self, leads, rows, config):
        """Tasks an open lead should have and has not (a task template added
        while another transaction created the lead, whose insert could not see
        it): inserted now. No query when nothing is missing."""
        expected = defaultdict(set)
        for c in config.values():
            expected[c.template_id].add(c.id)
        present = defaultdict(set)
        for row in rows:
            present[row[1]].add(row[2])
        leads.fetch(["sop_template_id", "active", "probability"])
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
    def _sop_evaluate(self, leads, rows=None, templates=None):
        """Decide the state of every task of ``leads`` in one pass.

        Reads what the task kinds need for the whole batch (lead fields, customer
        fields, one filtered_domain per condition, one grouped query for done
        activities), writes the tasks whose state changes (one UPDATE per target
        state), then the leads' SOP summary in one statement.

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
            rows = self._sop_read_rows(leads.ids)
            rows += self._sop_heal(leads, rows, config)
        rows = [row for row in rows if row[2] in config]
        lead_ids_by_config = defaultdict(list)
        for row in rows:
            lead_ids_by_config[row[2]].append(row[1])
        configs = [config[tt_id] for tt_id in lead_ids_by_config]

        # what the kinds need, for the whole batch
        lead_fields = {name for c in configs for name in c.lead_fields}
        partner_fields = {name for c in configs for name in c.partner_fields}
        if partner_fields:
            lead_fields.add("partner_id")
        if lead_fields:
            leads.fetch(list(lead_fields | {"sop_template_id"}))
        if partner_fields:
            leads.partner_id.fetch(list(partner_fields))
        matched = {}
        for c in configs:
            if c.kind == "condition" and c.domain is not None:
                try:
                    matched[c.id] = set(
                        leads.browse(lead_ids_by_config[c.id])
                        .filtered_domain(list(c.domain))
                        .ids
                    )
                except (ValueError, TypeError, KeyError):
                    # validated on save, but a field may have changed since:
                    # the task stays open rather than breaking the lead's write
                    _logger.warning(
                        "Sales SOP: condition of task template %s cannot be evaluated",
                        c.id,
                        exc_info=True,
                    )
        done_activities = set()
        activity_types = {c.activity_type_id for c in configs if c.kind == "activity"}
        if activity_types:
            # sudo: mail.message access is checked per document; these are the
            # done-activity notes of leads this pass is allowed to evaluate
            groups = (
                self.env["mail.message"]
                .sudo()
                ._read_group(
                    [
                        ("model", "=", "crm.lead"),
                        ("res_id", "in", leads.ids),
                        ("mail_activity_type_id", "in", list(activity_types)),
                    ],
                    ["res_id", "mail_activity_type_id"],
                )
            )
            done_activities = {(res_id, atype.id) for res_id, atype in groups}

        lead_records = {lead.id: lead for lead in leads}  # keeps the prefetch
        to_done, to_todo, new_rows = [], [], []
        for row in rows:
            task_id, lead_id, tt_id, state, sent = row
            c = config[tt_id]
            if c.kind == "fields":
                lead = lead_records[lead_id]
                record = lead.partner_id if c.partner_fields else lead
                names = c.partner_fields or c.lead_fields
                # a task whose fields are all gone checks nothing: never done
                done = bool(record and names) and all(record[n] for n in names)
            elif c.kind == "condition":
                done = lead_id in matched.get(c.id, ())
            elif c.kind == "script":
                done = bool(sent)
            elif c.kind == "activity":
                done = (lead_id, c.activity_type_id) in done_activities
            else:  # manual: the rep decides
                done = state == "done"
            if done and state == "todo":
                to_done.append(task_id)
                state = "done"
            elif not done and state == "done":
                to_todo.append(task_id)
                state = "todo"
            new_rows.append((task_id, lead_id, tt_id, state, sent))
        if to_done or to_todo:
            self.flush_model()
            now, uid = self.env.cr.now(), self.env.uid
            if to_done:
                self.env.cr.execute(
                    SQL(
                        """UPDATE crm_sop_task
                              SET state = 'done', completion = 'auto',
                                  date_done = %s, done_user_id = %s
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
                              SET state = 'todo', completion = NULL,
                                  date_done = NULL, done_user_id = NULL
                            WHERE id = ANY(%s)""",
                        to_todo,
                    )
                )
            self.invalidate_model(["state", "completion", "date_done", "done_user_id"])
        self._sop_update_summary(leads, new_rows, templates)

    @api.model
    def _sop_update_summary(self, leads, rows=None, templates=None):
        """Write sop_progress, sop_stage_id and sop_next_task_id (and, for new
        leads, sop_template_id) of the leads in one UPDATE of the rows that
        change."""
        if not leads:
            return
        config = self.env["crm.sop.task.template"]._sop_config()
        if rows is None:
            rows = self._sop_read_rows(leads.ids)
        by_lead = defaultdict(list)
        for task_id, lead_id, tt_id, state, _sent in rows:
            c = config.get(tt_id)
            if c is not None:
                by_lead[lead_id].append((c.order, c.stage_id, task_id, state))
        fnames = ["sop_progress", "sop_stage_id", "sop_next_task_id"]
        leads = leads.sudo().with_context(prefetch_fields=False)
        leads.fetch(fnames)
        values = []
        for lead in leads:
            items = sorted(by_lead.get(lead.id, ()))
            open_items = [item for item in items if item[3] == "todo"]
            progress = (
                round(100 * (len(items) - len(open_items)) / len(items)) if items else 0
            )
            if open_items:
                stage_id, next_task_id = open_items[0][1], open_items[0][2]
            else:
                stage_id, next_task_id = (items[-1][1] if items else False), False
            if (
                templates
                or lead.sop_progress != progress
                or lead.sop_stage_id.id != stage_id
                or lead.sop_next_task_id.id != next_task_id
            ):
                values.append((lead.id, progress, stage_id, next_task_id))
        if not values:
            return
        self.env["crm.lead"].flush_model([*fnames, "sop_template_id"])
        if templates:
            fnames.append("sop_template_id")
            self.env.cr.execute(
                SQL(
                    """UPDATE crm_lead l
                          SET sop_progress = v.progress, sop_stage_id = v.stage_id,
                              sop_next_task_id = v.task_id,
                              sop_template_id = v.template_id
                         FROM (VALUES %s) AS v(id, progress, stage_id, task_id,
                                               template_id)
                        WHERE l.id = v.id""",
                    SQL(", ").join(
                        SQL(
                            "(%s, %s, %s::integer, %s::integer, %s::integer)",
                            lead_id,
                            progress,
                            stage_id or None,
                            task_id or None,
                            templates.get(lead_id) or None,
                        )
                        for lead_id, progress, stage_id, task_id in values
                    ),
                )
            )
        else:
            self.env.cr.execute(
                SQL(
                    """UPDATE crm_lead l
                          SET sop_progress = v.progress, sop_stage_id = v.stage_id,
                              sop_next_task_id = v.task_id
                         FROM (VALUES %s) AS v(id, progress, stage_id, task_id)
                        WHERE l.id = v.id""",
                    SQL(", ").join(
                        SQL(
                            "(%s, %s, %s::integer, %s::integer)",
                            lead_id,
                            progress,
                            stage_id or None,
                            task_id or None,
                        )
                        for lead_id, progress, stage_id, task_id in values
                    ),
                )
            )
        leads.invalidate_recordset(fnames)
        leads.modified(fnames)

    # ------------------------------------------------------------
    # ENGINE: stage gates
    # ------------------------------------------------------------

    @api.model
    def _sop_gate_missing(self, targets, created=False):
        """The required tasks of gated SOP stages that opportunities leave
        undone by going to a pipeline stage: {lead: [SopTaskConfig]}.

        ``targets``: {lead: pipeline stage it goes to}. A move forward (or a
        creation in a stage) past the pipeline stage of a gated SOP stage needs
        that stage's required tasks done; moving back or sideways does not.
        A task the lead lacks counts as not done (and is inserted). One query
        when nothing is missing; none without gates."""
        config = self.env["crm.sop.task.template"]._sop_config()
        gated = defaultdict(list)
        for c in config.values():
            if c.gate != "none" and c.crm_stage_id and c.required:
                gated[c.template_id].append(c)
        leads = [
            lead
            for lead, stage in targets.items()
            if stage and lead.sop_template_id.id in gated
        ]
        if not leads:
            return {}
        # sudo: only the stages' order is read, whatever pipeline they belong to
        stages = (
            self.env["crm.stage"]
            .sudo()
            .browse(
                {c.crm_stage_id for items in gated.values() for c in items}
                | {targets[lead].id for lead in leads}
                | (
                    {lead.stage_id.id for lead in leads if lead.stage_id}
                    if not created
                    else set()
                )
            )
        )
        stages.fetch(["sequence"])
        order = {stage.id: (stage.sequence, stage.id) for stage in stages}
        candidates = {}
        for lead in leads:
            target_order = order[targets[lead].id]
            if (
                not created
                and lead.stage_id
                and target_order <= order[lead.stage_id.id]
            ):
                continue  # moving back or sideways is always allowed
            items = [
                c
                for c in gated[lead.sop_template_id.id]
                if order[c.crm_stage_id] < target_order
            ]
            if items:
                candidates[lead] = items
        if not candidates:
            return {}
        rows = self._sop_gate_rows(candidates)
        present = {(lead_id, tt_id) for lead_id, tt_id, _state in rows}
        absent = [
            lead.id
            for lead, items in candidates.items()
            if any((lead.id, c.id) not in present for c in items)
        ]
        if absent:
            self._sop_insert(lead_ids=absent)
            self._sop_evaluate(self.env["crm.lead"].browse(absent))
            rows = self._sop_gate_rows(candidates)
        done = {(lead_id, tt_id) for lead_id, tt_id, state in rows if state == "done"}
        missing = {}
        for lead, items in candidates.items():
            undone = [c for c in items if (lead.id, c.id) not in done]
            if undone:
                missing[lead] = undone
        return missing

    @api.model
    def _sop_gate_rows(self, candidates):
        """(lead_id, task_template_id, state) of the candidates' gated tasks."""
        self.flush_model(["state", "active"])
        self.env.cr.execute(
            SQL(
                """SELECT lead_id, task_template_id, state FROM crm_sop_task
                    WHERE active AND lead_id = ANY(%s) AND task_template_id = ANY(%s)""",
                [lead.id for lead in candidates],
                list({c.id for items in candidates.values() for c in items}),
            )
        )
        return self.env.cr.fetchall()

    # ------------------------------------------------------------
    # ENGINE: events
    # ------------------------------------------------------------

    @api.model
    def _sop_merge(self, head, tails):
        """Opportunities ``tails`` are merged into ``head``: what the system
        cannot re-derive from the merged data (tasks ticked by hand, scripts
        sent) is kept on the head; then the head is evaluated (the data and
        the done activities were merged by core)."""
        # sudo: crm lets the user merge these leads; their tasks follow them
        tasks = self.sudo().search_fetch(
            [("lead_id", "in", (head | tails).ids)],
            [
                "lead_id",
                "task_template_id",
                "state",
                "completion",
                "date_done",
                "done_user_id",
                "date_script_sent",
            ],
        )
        head_tasks = {t.task_template_id: t for t in tasks if t.lead_id == head}
        for task in tasks:
            target = head_tasks.get(task.task_template_id)
            if task.lead_id == head or not target:
                continue
            vals = {}
            if (
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
        self._sop_evaluate(head)

    @api.model
    def _sop_script_sent(self, leads, mail_template, task_id=None):
        """A script (mail template) was sent on leads: their script tasks with
        this template are done (or only ``task_id`` when sent from a task)."""
        config = self.env["crm.sop.task.template"]._sop_config()
        task_template_ids = [
            c.id
            for c in config.values()
            if c.kind == "script" and c.mail_template_id == mail_template.id
        ]
        if not task_template_ids or not leads:
            return
        domain = [
            ("lead_id", "in", leads.ids),
            ("task_template_id", "in", task_template_ids),
            ("date_script_sent", "=", False),
        ]
        if task_id:
            domain.append(("id", "=", task_id))
        tasks = self.sudo().search(domain)
        if not tasks:
            return
        tasks.write({"date_script_sent": fields.Datetime.now()})
        self._sop_evaluate(tasks.lead_id)

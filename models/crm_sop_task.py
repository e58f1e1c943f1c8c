from odoo import api, fields, models
from odoo.exceptions import UserError


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

    button = fields.Selection(
        [
            ("fill_in", "Fill in"),
            ("view", "View"),
            ("send", "Send"),
            ("send_again", "Send again"),
            ("schedule", "Schedule"),
            ("mark_done", "Mark done"),
            ("reopen", "Reopen"),
        ],
        compute="_compute_button",
        help="The button of the task in the SOP panel; it calls action_sop_open.",
    )

    _sql_constraints = [
        (
            "lead_task_template_uniq",
            "UNIQUE(lead_id, task_template_id)",
            "An opportunity has one task per task template.",
        ),
    ]

    @api.depends("state", "task_template_id.kind")
    def _compute_button(self):
        for task in self:
            kind = task.task_template_id.kind
            task.button = kind and getattr(task, f"_sop_button_{kind}")()

    # ------------------------------------------------------------
    # ACTIONS (buttons of the SOP panel)
    # ------------------------------------------------------------

    def _sop_check_lead_access(self):
        """Reps have no write access on tasks: what they may do to a task is
        what they may do to its opportunity."""
        self.lead_id.check_access("write")

    def action_sop_open(self):
        """The task's button: what it opens depends on its kind
        (``_sop_action_<kind>``, see crm_sop_task_kind.py)."""
        self.ensure_one()
        return getattr(self, f"_sop_action_{self.task_template_id.kind}")()

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

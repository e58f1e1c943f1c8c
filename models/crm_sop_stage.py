from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from odoo.addons.base.models.ir_model import MODULE_UNINSTALL_FLAG

from .crm_sop_deal import SOP_OPEN_SQL

# the most working days a SOP stage may wait before its deals stall (a year
# and a half of working days); the stall pass reads calendars that far back
SOP_STALL_DAYS_MAX = 365


class CrmSopStage(models.Model):
    _name = "crm.sop.stage"
    _description = "Sales SOP Stage"
    _inherit = ["crm.sop.company.mixin"]
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    template_id = fields.Many2one(
        "crm.sop.template",
        string="Playbook",
        required=True,
        index=True,
        ondelete="cascade",
    )
    company_id = fields.Many2one(related="template_id.company_id", store=True)
    crm_stage_id = fields.Many2one(
        "crm.stage",
        string="Pipeline Stage",
        ondelete="set null",
        help="Pipeline stage this SOP stage belongs to. Gating applies when an "
        "opportunity is moved beyond it.",
    )
    guidance = fields.Html(
        translate=True,
        help="What the rep should achieve in this stage; shown in the SOP panel "
        "and in the pipeline column tooltip.",
    )
    gate = fields.Selection(
        [
            ("none", "None"),
            ("warn", "Warn"),
            ("block", "Block"),
        ],
        required=True,
        default="none",
        help="What happens when an opportunity is moved beyond the pipeline stage "
        "of this SOP stage while its required tasks are open: nothing, a note in "
        "the chatter, or a refusal (sales managers may pass it; it is logged).",
    )
    stall_days = fields.Integer(
        string="Stall After (Working Days)",
        default=0,
        help="An opportunity in this SOP stage whose SOP has not moved for "
        "this many working days (company calendar) is flagged as stalled. "
        "0: never; at most 365.",
    )
    task_template_ids = fields.One2many(
        "crm.sop.task.template", "stage_id", string="Tasks"
    )
    task_count = fields.Integer(compute="_compute_task_count")
    gate_hold_count = fields.Integer(
        string="Deals Held Back",
        compute="_compute_gate_hold_count",
        help="Open opportunities of the playbook that stand in this SOP "
        "stage's pipeline stage (or before it) with required tasks of this "
        "stage open: the gate holds them until those tasks are done.",
    )

    _sql_constraints = [
        (
            "stall_days_positive",
            f"CHECK(stall_days >= 0 AND stall_days <= {SOP_STALL_DAYS_MAX})",
            "The stall days of a SOP stage are from 0 to 365 working days.",
        ),
    ]

    @api.depends("name", "template_id.name")
    @api.depends_context("sop_stage_show_playbook")
    def _compute_display_name(self):
        """In the pickers of the configuration, a stage says its playbook."""
        if not self.env.context.get("sop_stage_show_playbook"):
            return super()._compute_display_name()
        for stage in self:
            stage.display_name = self.env._(
                "%(playbook)s / %(stage)s",
                playbook=stage.template_id.name or "",
                stage=stage.name or "",
            )

    @api.depends("task_template_ids")
    def _compute_task_count(self):
        for stage in self:
            stage.task_count = len(stage.task_template_ids)

    @api.depends("gate", "crm_stage_id", "task_template_ids.required")
    @api.depends_context("allowed_company_ids")
    def _compute_gate_hold_count(self):
        counts = self._sop_gate_hold_counts()
        for stage in self:
            stage.gate_hold_count = counts.get(stage.id, 0)

    def _sop_gate_hold_counts(self):
        """{SOP stage id: open deals of the companies the user works in that
        its gate would hold back}, in one query: in its pipeline stage or an
        earlier one, not won, with a required task of the stage open and no
        manager's pass."""
        stages = self.filtered(lambda s: s.id and s.crm_stage_id and s.gate != "none")
        if not stages:
            return {}
        orders = self.env["crm.stage"]._sop_orders()
        won_ids = self.env["crm.stage"]._sop_won_ids()
        values = SQL(", ").join(
            SQL(
                "(%s, %s)",
                stage.id,
                [
                    crm_stage_id
                    for crm_stage_id, order in orders.items()
                    if order <= orders[stage.crm_stage_id.id]
                    and crm_stage_id not in won_ids
                ],
            )
            for stage in stages
        )
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """SELECT v.stage_id, COUNT(DISTINCT t.lead_id)
                     FROM (VALUES %(values)s) AS v(stage_id, crm_stage_ids)
                     JOIN crm_sop_task_template tt ON tt.stage_id = v.stage_id
                     JOIN crm_sop_task t ON t.task_template_id = tt.id
                     JOIN crm_lead l ON l.id = t.lead_id
                    WHERE t.active AND t.state = 'todo' AND tt.required
                      AND %(open)s AND l.stage_id = ANY(v.crm_stage_ids)
                      AND (l.company_id IS NULL OR l.company_id = ANY(%(companies)s))
                      AND NOT EXISTS (
                          SELECT 1 FROM crm_sop_gate_pass p
                           WHERE p.lead_id = t.lead_id AND p.sop_stage_id = tt.stage_id)
                    GROUP BY v.stage_id""",
                values=values,
                open=SQL(SOP_OPEN_SQL),
                companies=self.env.companies.ids,
            )
        )
        return dict(self.env.cr.fetchall())

    def _sop_gate_words(self):
        """The gate as a rep reads it in the column tooltip: what leaving the
        pipeline stage needs."""
        self.ensure_one()
        if self.gate == "none":
            return False
        tasks = self.task_template_ids.filtered("required").mapped("name")
        if not tasks:
            return False
        if self.gate == "block":
            text = self.env._(
                "Gate: leaving this stage needs these tasks done: %(tasks)s."
            )
        else:
            text = self.env._(
                "Gate: leaving this stage with these tasks open is logged: %(tasks)s."
            )
        return text % {"tasks": ", ".join(tasks)}

    @api.constrains("stall_days")
    def _check_stall_days(self):
        """A readable refusal before the database's CHECK."""
        for stage in self:
            if not 0 <= stage.stall_days <= SOP_STALL_DAYS_MAX:
                raise ValidationError(
                    self.env._(
                        "The stall days of the SOP stage %(stage)s must be "
                        "from 0 (never) to %(max)s working days, not %(days)s.",
                        stage=stage.display_name,
                        max=SOP_STALL_DAYS_MAX,
                        days=stage.stall_days,
                    )
                )

    @api.constrains("crm_stage_id", "template_id")
    def _check_crm_stage_team(self):
        for stage in self:
            stage.template_id._sop_check_stage_teams(stage)

    @api.model
    def _sop_company_paths(self):
        return {"template_id"}

    @api.model_create_multi
    def create(self, vals_list):
        stages = super().create(vals_list)
        self.env["crm.sop.task.template"]._sop_clear_caches()
        return stages

    def write(self, vals):
        # its task lines written one by one (its form saved with its tasks
        # reordered) and its own changes ask for their deals once
        with self.env["crm.sop.engine"]._sop_evaluate_once():
            res = super().write(vals)
            self._sop_written(vals)
        return res

    def _sop_written(self, vals):
        """What the engine follows of a write of ``vals``."""
        self.env["crm.sop.task.template"]._sop_clear_caches()
        if vals.get("gate") in ("warn", "block"):
            self._sop_gate_notify_hold()
        if {"gate", "crm_stage_id"} & vals.keys():
            # the cards say which deals a gate holds
            self.env["crm.sop.engine"]._sop_evaluate_templates(self.task_template_ids)
        if "template_id" in vals:
            # moved to another playbook: its tasks leave the old playbook's
            # opportunities and reach the new one's
            self.env["crm.sop.engine"]._sop_instantiate_templates(
                self.with_context(active_test=False).task_template_ids
            )
        if "active" in vals:
            # archiving a stage archives its tasks (history kept), restoring it
            # restores them; open opportunities follow
            self.with_context(active_test=False).task_template_ids.write(
                {"active": vals["active"]}
            )
        elif "sequence" in vals:
            self.env["crm.sop.engine"]._sop_evaluate_templates(self.task_template_ids)
        if {"crm_stage_id", "template_id"} & vals.keys():
            # which pipeline stage a task's deal must reach or leave
            self.env["crm.sop.task.fact"]._sop_mark_all()

    def _sop_gate_notify_hold(self):
        """Saving a gate says how many open deals it holds back."""
        counts = self._sop_gate_hold_counts()
        if self.env.su:
            return
        for stage in self:
            self.env.user._bus_send(
                "simple_notification",
                {
                    "type": "info",
                    "title": self.env._("Sales SOP gate saved"),
                    "message": self.env._(
                        "The gate of “%(stage)s” holds back %(count)s open "
                        "opportunities until their required tasks are done; "
                        "deals already past “%(crm_stage)s” are not stopped.",
                        stage=stage.name,
                        count=counts.get(stage.id, 0),
                        crm_stage=stage.crm_stage_id.name or "",
                    ),
                },
            )

    def unlink(self):
        """Tasks go first; a stage whose tasks hold done history is archived."""
        if self.env.context.get(MODULE_UNINSTALL_FLAG):
            # the addon is uninstalled: its tables go, history included
            return super().unlink()
        # archived ones too: one archived while deals still held its task
        # (a large pipeline: the setup job prunes them) goes now, if none does
        self.with_context(active_test=False).task_template_ids.unlink()
        keep = self.with_context(active_test=False).task_template_ids.stage_id
        if keep:
            keep.action_archive()
        res = super(CrmSopStage, self - keep).unlink()
        self.env["crm.sop.task.template"]._sop_clear_caches()
        # the review facts copy the SOP stage of each task
        self.env["crm.sop.task.fact"]._sop_mark_all()
        return res

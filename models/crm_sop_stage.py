from odoo import api, fields, models


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
        "0: never.",
    )
    task_template_ids = fields.One2many(
        "crm.sop.task.template", "stage_id", string="Tasks"
    )
    task_count = fields.Integer(compute="_compute_task_count")

    _sql_constraints = [
        (
            "stall_days_positive",
            "CHECK(stall_days >= 0)",
            "The stall days of a SOP stage cannot be negative.",
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
        res = super().write(vals)
        self.env["crm.sop.task.template"]._sop_clear_caches()
        if "template_id" in vals:
            # moved to another playbook: its tasks leave the old playbook's
            # opportunities and reach the new one's
            self.env["crm.sop.task"]._sop_instantiate_templates(
                self.with_context(active_test=False).task_template_ids
            )
        if "active" in vals:
            # archiving a stage archives its tasks (history kept), restoring it
            # restores them; open opportunities follow
            self.with_context(active_test=False).task_template_ids.write(
                {"active": vals["active"]}
            )
        elif "sequence" in vals:
            self.env["crm.sop.task"]._sop_evaluate_templates(self.task_template_ids)
        return res

    def unlink(self):
        """Tasks go first; a stage whose tasks hold done history is archived."""
        self.task_template_ids.unlink()
        keep = self.with_context(active_test=False).task_template_ids.stage_id
        if keep:
            keep.action_archive()
        res = super(CrmSopStage, self - keep).unlink()
        self.env["crm.sop.task.template"]._sop_clear_caches()
        return res

from odoo import api, fields, models, tools


class CrmStage(models.Model):
    _inherit = "crm.stage"

    sop_guidance = fields.Text(
        string="Sales SOP",
        compute="_compute_sop_guidance",
        help="Guidance of the Sales SOP stages that belong to this pipeline stage.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        stages = super().create(vals_list)
        self.env.registry.clear_cache()  # _sop_orders
        return stages

    def write(self, vals):
        res = super().write(vals)
        if "sequence" in vals or "is_won" in vals:
            self.env.registry.clear_cache()  # _sop_orders, _sop_won_ids
        if "is_won" in vals:
            # which deals are won changed: their history is counted anew (by
            # a job, soon after)
            self.env["crm.sop.history.count"]._sop_mark_all()
        if "sequence" in vals or "is_won" in vals:
            # which stages come after which, and which deals are won: every
            # deal's review facts are made anew (by a job, soon after)
            self.env["crm.sop.task.fact"]._sop_mark_all()
        return res

    def unlink(self):
        res = super().unlink()
        self.env.registry.clear_cache()  # _sop_orders
        self.env["crm.sop.history.count"]._sop_mark_all()
        self.env["crm.sop.task.fact"]._sop_mark_all()
        return res

    @api.model
    @tools.ormcache()
    def _sop_orders(self):
        """{pipeline stage id: (sequence, id)} of every pipeline stage: where
        deals stand for the SOP (next step, gates), with no query per use."""
        # sudo: the order of stages of every pipeline, whoever asks
        stages = (
            self.sudo().with_context(active_test=False).search_fetch([], ["sequence"])
        )
        return tools.frozendict(
            {stage.id: (stage.sequence, stage.id) for stage in stages}
        )

    @api.model
    @tools.ormcache()
    def _sop_won_ids(self):
        """The won pipeline stages: a deal there has closed its SOP."""
        # sudo: which stages are won, whoever asks
        return frozenset(
            self.sudo()
            .with_context(active_test=False)
            .search([("is_won", "=", True)])
            .ids
        )

    @api.depends_context("lang", "uid", "allowed_company_ids", "default_team_id")
    def _compute_sop_guidance(self):
        """The guidance of the playbook that applies to the deals of the
        column: the playbook of the stage's team, else of the pipeline being
        looked at (default_team_id, as the team's pipeline sets it), else of
        the user's team; one line per SOP stage."""
        Template = self.env["crm.sop.template"]
        context_team = self.env["crm.team"].browse(
            self.env.context.get("default_team_id")
            if isinstance(self.env.context.get("default_team_id"), int)
            else []
        )
        default_team = context_team or self.env.user.sale_team_id
        playbooks = {
            stage.id: Template._sop_template_for(
                stage.team_id or default_team, self.env.company
            )
            for stage in self
        }
        # sudo: the guidance (and the gate) is shown to every rep of the
        # pipeline, for the playbook chosen above only
        sop_stages = (
            self.env["crm.sop.stage"]
            .sudo()
            .search(
                [
                    ("crm_stage_id", "in", self.ids),
                    ("template_id", "in", list(set(playbooks.values()))),
                    "|",
                    ("guidance", "!=", False),
                    ("gate", "!=", "none"),
                ]
            )
        )
        texts = {}
        for sop_stage in sop_stages:
            if playbooks[sop_stage.crm_stage_id.id] != sop_stage.template_id.id:
                continue
            lines = []
            text = tools.html2plaintext(sop_stage.guidance or "").strip()
            if text:
                lines.append(
                    self.env._(
                        "%(stage)s: %(guidance)s", stage=sop_stage.name, guidance=text
                    )
                )
            gate = sop_stage._sop_gate_words()
            if gate:
                lines.append(gate)
            if lines:
                texts.setdefault(sop_stage.crm_stage_id.id, []).append("\n".join(lines))
        for stage in self:
            stage.sop_guidance = "\n\n".join(texts.get(stage.id, [])) or False

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
        if "sequence" in vals:
            self.env.registry.clear_cache()  # _sop_orders
        return res

    def unlink(self):
        res = super().unlink()
        self.env.registry.clear_cache()  # _sop_orders
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

    @api.depends_context("lang")
    def _compute_sop_guidance(self):
        # sudo: guidance is shown to every rep of the pipeline; the SOP stages
        # themselves are readable by reps, the playbook filter below is explicit
        sop_stages = (
            self.env["crm.sop.stage"]
            .sudo()
            .search(
                [
                    ("crm_stage_id", "in", self.ids),
                    ("template_id.active", "=", True),
                ]
            )
        )
        texts = {}
        for sop_stage in sop_stages:
            if not sop_stage.guidance:
                continue
            text = f"{sop_stage.name}: {tools.html2plaintext(sop_stage.guidance)}"
            texts.setdefault(sop_stage.crm_stage_id.id, []).append(text)
        for stage in self:
            stage.sop_guidance = "\n\n".join(texts.get(stage.id, [])) or False

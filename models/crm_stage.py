from odoo import api, fields, models, tools


class CrmStage(models.Model):
    _inherit = "crm.stage"

    sop_guidance = fields.Text(
        string="Sales SOP",
        compute="_compute_sop_guidance",
        help="Guidance of the Sales SOP stages that belong to this pipeline stage.",
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

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError

SCRIPT_FIELDS = ("sop_is_script", "sop_stage_ids")


class MailTemplate(models.Model):
    _inherit = "mail.template"

    sop_is_script = fields.Boolean(
        string="Sales SOP Script",
        copy=False,
        help="In the Scripts menu of the opportunities' SOP panel, sent in one "
        "click by email, SMS, or copied for a messenger.",
    )
    sop_stage_ids = fields.Many2many(
        "crm.sop.stage",
        "mail_template_crm_sop_stage_rel",
        "mail_template_id",
        "sop_stage_id",
        string="For SOP Stages",
        copy=False,
        help="The Scripts menu lists these scripts first on opportunities in "
        "these SOP stages.",
    )

    @api.constrains("model_id")
    def _check_sop_script_model(self):
        """A script of a Sales SOP task stays a template of opportunities."""
        self.env["crm.sop.task.template"]._sop_check_kept_on_leads(
            "mail_template_id",
            self.filtered(lambda template: template.model != "crm.lead"),
            self.env._(
                "The template “%(record)s” is the script of Sales SOP tasks "
                "(%(tasks)s): it must stay a template of Lead/Opportunity."
            ),
        )

    @api.constrains("model_id", "sop_is_script", "sop_stage_ids")
    def _check_sop_script_is_for_leads(self):
        for template in self:
            if (
                template.sop_is_script or template.sop_stage_ids
            ) and template.model != "crm.lead":
                raise ValidationError(
                    self.env._(
                        "“%(template)s” cannot be a Sales SOP script: scripts "
                        "are templates of Lead/Opportunity.",
                        template=template.display_name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        if any(vals.get(fname) for vals in vals_list for fname in SCRIPT_FIELDS):
            self._sop_check_script_editor()
        return super().create(vals_list)

    def write(self, vals):
        if any(fname in vals for fname in SCRIPT_FIELDS):
            self._sop_check_script_editor()
        return super().write(vals)

    def _sop_check_script_editor(self):
        """Sales managers keep the library of scripts: any user may edit
        templates in core, but what reps are offered as scripts is theirs."""
        if not (
            self.env.su or self.env.user.has_group("sales_team.group_sale_manager")
        ):
            raise AccessError(
                self.env._("Only a sales manager may choose the Sales SOP scripts.")
            )

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError

# set by the server, never by the client: who wrote it, and the company it
# belongs to (the deal's, else the playbook's, else the author's)
SUGGESTION_SERVER_FIELDS = ("user_id", "company_id")


class CrmSopSuggestion(models.Model):
    """A rep's suggestion to change a SOP task or a SOP stage, written from
    the SOP panel of a deal, reviewed by the sales managers who decide the
    playbook's next version (CRM › Reporting › Sales SOP › Task Feedback).

    Reps see and write only their own; managers see those of their
    companies. The author and the company are the server's: a client cannot
    set them (not even a manager), and only a manager moves the state."""

    _name = "crm.sop.suggestion"
    _description = "Sales SOP Suggestion"
    _inherit = ["crm.sop.company.mixin"]
    _order = "create_date desc, id desc"
    _rec_name = "text"

    task_template_id = fields.Many2one(
        "crm.sop.task.template",
        string="SOP Task",
        index=True,
        ondelete="cascade",
        check_company=True,
    )
    stage_id = fields.Many2one(
        "crm.sop.stage",
        string="SOP Stage",
        compute="_compute_stage_id",
        store=True,
        readonly=False,
        precompute=True,
        index=True,
        ondelete="cascade",
        check_company=True,
    )
    template_id = fields.Many2one(
        related="stage_id.template_id", store=True, index=True, string="Playbook"
    )
    text = fields.Text(string="Suggestion", required=True)
    not_helpful = fields.Boolean(
        string="This step does not help",
        help="The rep finds that this step does not help win the deal.",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Author",
        default=lambda self: self.env.user,
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        index="btree_not_null",
        ondelete="set null",
        check_company=True,
        help="The deal the suggestion was written from.",
    )
    company_id = fields.Many2one(
        "res.company",
        compute="_compute_company_id",
        store=True,
        readonly=True,
        precompute=True,
        index=True,
    )
    state = fields.Selection(
        [("new", "New"), ("considered", "Considered"), ("done", "Done")],
        default="new",
        required=True,
        index=True,
        help="The manager's review: Considered for the next version of the "
        "playbook, Done once the playbook was changed (or the suggestion "
        "answered).",
    )

    @api.depends("task_template_id")
    def _compute_stage_id(self):
        for suggestion in self.filtered("task_template_id"):
            suggestion.stage_id = suggestion.task_template_id.stage_id

    # the company where the suggestion was made: not followed through the
    # deal's later moves (a dependency on lead_id.company_id would make
    # every company write of every deal search the suggestions: core's lead
    # assignment tests count those queries)
    @api.depends("lead_id", "stage_id")
    def _compute_company_id(self):
        for suggestion in self:
            suggestion.company_id = (
                suggestion.lead_id.company_id
                or suggestion.stage_id.company_id
                or self.env.company
            )

    @api.constrains("task_template_id", "stage_id")
    def _check_subject(self):
        for suggestion in self:
            if not suggestion.stage_id:
                raise ValidationError(
                    self.env._("A suggestion is about a SOP task or a SOP stage.")
                )
            task = suggestion.task_template_id
            if task and task.stage_id != suggestion.stage_id:
                raise ValidationError(
                    self.env._(
                        "The SOP task “%(task)s” is not of the SOP stage “%(stage)s”.",
                        task=task.name,
                        stage=suggestion.stage_id.name,
                    )
                )

    @api.constrains("text")
    def _check_text(self):
        if any(not (suggestion.text or "").strip() for suggestion in self):
            raise ValidationError(self.env._("Write what you suggest."))

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        self._sop_check_server_fields(vals_list, create=True)
        if not self.env.su:
            vals_list = [{**vals, "user_id": self.env.uid} for vals in vals_list]
        return super().create(vals_list)

    def write(self, vals):
        self._sop_check_server_fields([vals])
        self._sop_check_author(vals)
        return super().write(vals)

    @api.model
    def _sop_company_paths(self):
        # the company follows the deal, else the SOP stage
        return {"lead_id", "stage_id", "task_template_id"}

    @api.model
    def _sop_check_server_fields(self, vals_list, create=False):
        """Refuse what only the server sets (the author, the company) and the
        review's state to whoever is not a sales manager."""
        if self.env.su:
            return
        for vals in vals_list:
            forged = [
                fname
                for fname in SUGGESTION_SERVER_FIELDS
                if fname in vals
                # a create may repeat the author the server sets anyway
                and not (create and fname == "user_id" and vals[fname] == self.env.uid)
            ]
            if forged:
                raise AccessError(
                    self.env._(
                        "The author and the company of a suggestion are set "
                        "by the server: %(fields)s cannot be written.",
                        fields=", ".join(
                            self._fields[fname].get_description(self.env)["string"]
                            for fname in forged
                        ),
                    )
                )
            if (
                "state" in vals
                and not (create and vals["state"] == "new")
                and not self.env.user.has_group("sales_team.group_sale_manager")
            ):
                raise AccessError(
                    self.env._("Only a sales manager reviews suggestions.")
                )

    def _sop_check_author(self, vals):
        """What a suggestion says is its author's: a manager reviews it (its
        state), never rewrites it."""
        if self.env.su or not vals.keys() - {"state"}:
            return
        if any(suggestion.user_id != self.env.user for suggestion in self):
            raise AccessError(
                self.env._("Only its author may change what a suggestion says.")
            )

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_sop_send(self):
        """The dialog's Send (the record is saved first): thank the rep."""
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._(
                    "Thank you: your sales manager reads it when the playbook "
                    "is reviewed."
                ),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def action_sop_consider(self):
        self.write({"state": "considered"})

    def action_sop_done(self):
        self.write({"state": "done"})

    def action_sop_reset(self):
        self.write({"state": "new"})

    @api.model
    def _sop_on_merge(self, lead, opportunities):
        """Suggestions written from merged opportunities follow them into
        ``lead`` (else their deal would be forgotten with the deleted ones)."""
        # sudo: they belong to other reps, whom the merging user cannot read
        self.sudo().search([("lead_id", "in", opportunities.ids)]).lead_id = lead

    @api.model
    def _sop_action_suggest(self, lead, task_template=None, stage=None):
        """The dialog of the SOP panel's Suggest buttons: a suggestion about
        a task (or, without one, a SOP stage) of ``lead``, as the user."""
        lead.check_access("read")
        context = {
            "default_lead_id": lead.id,
            "default_task_template_id": task_template.id if task_template else False,
            "default_stage_id": (stage or task_template.stage_id).id,
        }
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Suggest a change"),
            "res_model": self._name,
            "view_mode": "form",
            "views": [
                (
                    self.env.ref(
                        "crm_sales_sop.crm_sop_suggestion_view_form_suggest"
                    ).id,
                    "form",
                )
            ],
            "target": "new",
            "context": context,
        }

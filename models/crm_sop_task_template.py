from lxml import etree

from odoo import api, fields, models, tools
from odoo.exceptions import UserError, ValidationError

# fields a task cannot ask a rep to fill, nor a condition compare
FIELD_TYPES_EXCLUDED = ("properties", "properties_definition", "json")


class CrmSopTaskTemplate(models.Model):
    _name = "crm.sop.task.template"
    _description = "Sales SOP Task Template"
    _inherit = ["crm.sop.company.mixin"]
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    stage_id = fields.Many2one(
        "crm.sop.stage",
        string="SOP Stage",
        required=True,
        index=True,
        ondelete="cascade",
    )
    template_id = fields.Many2one(
        related="stage_id.template_id", store=True, index=True, string="Playbook"
    )
    company_id = fields.Many2one(related="stage_id.company_id", store=True)
    kind = fields.Selection(
        [
            ("fields", "Fill in fields"),
            ("condition", "Condition"),
            ("script", "Send a script"),
            ("activity", "Complete an activity"),
            ("manual", "Tick by hand"),
        ],
        required=True,
        default="fields",
        help="How the system decides the task is done:\n"
        "- Fill in fields: every listed field is set;\n"
        "- Condition: the opportunity matches the condition;\n"
        "- Send a script: the rep sent the script (email template);\n"
        "- Complete an activity: an activity of the type is marked done;\n"
        "- Tick by hand: the rep ticks it.",
    )
    scope = fields.Selection(
        [("opportunity", "Opportunity"), ("customer", "Customer")],
        required=True,
        default="opportunity",
        help="Customer: the fields are read on the opportunity's customer, shared "
        "by all the customer's opportunities. Opportunity: they are read on the "
        "opportunity itself.",
    )
    field_ids = fields.Many2many(
        "ir.model.fields",
        "crm_sop_task_template_field_rel",
        "task_template_id",
        "field_id",
        string="Fields",
        domain="[('model', '=', 'res.partner' if scope == 'customer' else 'crm.lead'),"
        " ('store', '=', True), ('readonly', '=', False)]",
        help="Fields that must be filled for the task to be done.",
    )
    domain = fields.Char(
        string="Condition",
        help="Condition on the opportunity, e.g. [('expected_revenue', '>', 0)].",
    )
    mail_template_id = fields.Many2one(
        "mail.template",
        string="Script",
        domain="[('model', '=', 'crm.lead')]",
        ondelete="restrict",
    )
    activity_type_id = fields.Many2one(
        "mail.activity.type",
        domain="['|', ('res_model', '=', False), ('res_model', '=', 'crm.lead')]",
        ondelete="restrict",
    )
    required = fields.Boolean(
        default=True, help="Required tasks are checked by the stage gate."
    )
    condition_words = fields.Char(
        string="Reads",
        compute="_compute_condition_words",
        help="The condition as the rep reads it with the task.",
    )
    guidance = fields.Html(
        translate=True, help="How to do it well: shown to the rep with the task."
    )

    @api.depends("kind", "domain")
    @api.depends_context("lang")
    def _compute_condition_words(self):
        for task in self:
            task.condition_words = (
                task.kind == "condition" and task._sop_condition_words()
            ) or False

    @api.onchange("kind")
    def _onchange_kind(self):
        # a condition the server accepts, to start from (an empty one is not)
        if self.kind == "condition" and not self.domain:
            self.domain = "[('expected_revenue', '>', 0)]"

    # ------------------------------------------------------------
    # CONSTRAINTS
    # ------------------------------------------------------------

    @api.constrains("kind", "scope", "field_ids")
    def _check_field_ids(self):
        for task in self:
            if task.kind != "fields":
                continue
            if not task.field_ids:
                raise ValidationError(
                    self.env._(
                        "The task “%(task)s” is done when fields are filled: "
                        "choose at least one field.",
                        task=task.name,
                    )
                )
            model = "res.partner" if task.scope == "customer" else "crm.lead"
            for field in task.sudo().field_ids:
                if field.model != model:
                    raise ValidationError(
                        self.env._(
                            "The field “%(field)s” of “%(model)s” cannot be used "
                            "by the task “%(task)s”: a task of scope %(scope)s "
                            "checks fields of “%(expected)s”.",
                            field=field.field_description,
                            model=field.model,
                            task=task.name,
                            scope=dict(
                                task._fields["scope"]._description_selection(self.env)
                            )[task.scope],
                            expected=model,
                        )
                    )
                if (
                    not field.store
                    or field.readonly
                    or field.ttype in FIELD_TYPES_EXCLUDED
                ):
                    raise ValidationError(
                        self.env._(
                            "The field “%(field)s” cannot be filled in by a rep "
                            "(it is computed, read-only or not stored).",
                            field=field.field_description,
                        )
                    )

    @api.constrains("kind", "domain")
    def _check_domain(self):
        for task in self:
            if task.kind == "condition" or task.domain:
                task._sop_parse_domain(task.domain)

    @api.constrains("kind", "mail_template_id")
    def _check_mail_template_id(self):
        for task in self.sudo():
            if task.kind == "script" and not task.mail_template_id:
                raise ValidationError(
                    self.env._(
                        "The task “%(task)s” needs a script to send.", task=task.name
                    )
                )
            if task.mail_template_id and task.mail_template_id.model != "crm.lead":
                raise ValidationError(
                    self.env._(
                        "The script “%(script)s” is written for “%(model)s”: a "
                        "sales SOP script must be a template of the model Lead/"
                        "Opportunity (crm.lead).",
                        script=task.mail_template_id.name,
                        model=task.mail_template_id.model or "-",
                    )
                )

    @api.constrains("kind", "activity_type_id")
    def _check_activity_type_id(self):
        for task in self:
            if task.kind == "activity" and not task.activity_type_id:
                raise ValidationError(
                    self.env._(
                        "The task “%(task)s” needs an activity type.", task=task.name
                    )
                )
            res_model = task.activity_type_id.res_model
            if res_model and res_model != "crm.lead":
                raise ValidationError(
                    self.env._(
                        "The activity type “%(type)s” is reserved for “%(model)s”.",
                        type=task.activity_type_id.name,
                        model=res_model,
                    )
                )

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    @api.model
    def _sop_company_paths(self):
        return {"stage_id"}

    @api.model_create_multi
    def create(self, vals_list):
        task_templates = super().create(vals_list)
        self._sop_clear_caches()
        self.env["crm.sop.engine"]._sop_instantiate_templates(task_templates)
        return task_templates

    def _sop_check_kind_switch(self, kind):
        """Tasks ticked by hand keep their history: once a task template has
        any (archived ones included), how it is decided cannot change, since
        the new kind would reopen them for ever. Set aside tasks need no
        such care: the engine leaves them alone, whatever the kind."""
        switched = self.filtered(lambda task_template: task_template.kind != kind)
        if not switched:
            return
        # sudo: the ticks of every opportunity count, including those the
        # manager cannot read (another company's, for a shared playbook)
        ticked = (
            self.env["crm.sop.task"]
            .sudo()
            .with_context(active_test=False)
            ._read_group(
                [
                    ("task_template_id", "in", switched.ids),
                    ("state", "=", "done"),
                    ("completion", "=", "manual"),
                ],
                ["task_template_id"],
                ["__count"],
            )
        )
        if ticked:
            task_template, count = ticked[0]
            raise UserError(
                self.env._(
                    "The task “%(task)s” was ticked by hand on %(count)s "
                    "opportunities: deciding it another way would erase those "
                    "ticks. Archive this task instead (its history is kept) and "
                    "add a new one of the kind you want.",
                    task=self.browse(task_template.id).name,
                    count=count,
                )
            )

    def write(self, vals):
        if "kind" in vals:
            self._sop_check_kind_switch(vals["kind"])
        res = super().write(vals)
        self._sop_clear_caches()
        Engine = self.env["crm.sop.engine"]
        if "active" in vals or "stage_id" in vals:
            Engine._sop_instantiate_templates(self)
        elif {
            "kind",
            "scope",
            "field_ids",
            "domain",
            "mail_template_id",
            "activity_type_id",
            "sequence",
            "required",
        } & vals.keys():
            Engine._sop_evaluate_templates(self)
        return res

    def unlink(self):
        """Removing a task from a playbook keeps its history: a task template
        with done tasks is archived, the others are deleted (with their open
        tasks)."""
        with_history = (
            self.env["crm.sop.task"]
            .sudo()
            .with_context(active_test=False)
            ._read_group(
                [("task_template_id", "in", self.ids), ("state", "=", "done")],
                ["task_template_id"],
            )
        )
        keep = self.browse([task_template.id for (task_template,) in with_history])
        if keep:
            keep.action_archive()
        leads = (
            self.env["crm.sop.task"]
            .sudo()
            .search([("task_template_id", "in", (self - keep).ids)])
            .lead_id
        )
        res = super(CrmSopTaskTemplate, self - keep).unlink()
        self._sop_clear_caches()
        if leads:
            self.env["crm.sop.engine"]._sop_evaluate(leads)
        return res

    # ------------------------------------------------------------
    # FILL-IN DIALOG
    # ------------------------------------------------------------

    def _sop_fill_model(self):
        """The model whose fields the task collects."""
        self.ensure_one()
        return "res.partner" if self.scope == "customer" else "crm.lead"

    def _sop_fill_fields(self):
        """Names of the fields the "Fill in" dialog shows: what the task
        checks (``_sop_fill_fields_<kind>``; a kind without it has no dialog)."""
        self.ensure_one()
        method = getattr(self, f"_sop_fill_fields_{self.kind}", None)
        return method() if method else ()

    def _sop_fill_arch(self, model_name):
        """The form of the "Fill in" dialog: exactly the task's fields and its
        guidance (as text), built as an element tree (nothing typed by a manager
        is parsed as XML)."""
        task = self.sudo()
        form = etree.Element("form", string=task.name)
        sheet = etree.SubElement(form, "sheet")
        if task.guidance:
            alert = etree.SubElement(
                sheet, "div", {"class": "alert alert-info o_crm_sop_guidance"}
            )
            alert.set("role", "status")
            alert.text = tools.html2plaintext(task.guidance)
        group = etree.SubElement(sheet, "group")
        model = self.env[model_name]
        for fname in task._sop_fill_fields():
            if fname not in model._fields:
                continue
            # the task's fields stand out: the dialog is about them
            node = etree.SubElement(
                group, "field", {"name": fname, "class": "o_crm_sop_fill_field"}
            )
            if model._fields[fname].type == "many2many":
                node.set("widget", "many2many_tags")
        if model_name == "crm.lead":
            # keep what the lead form's onchanges and widgets expect around
            etree.SubElement(group, "field", name="company_id", invisible="1")
        return form

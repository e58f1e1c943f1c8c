import ast
import logging
from collections import namedtuple

from lxml import etree

from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError
from odoo.osv import expression

# What the engine needs to know of an active task template, cached per registry
# (see ``_sop_config``) so that evaluating a batch costs no configuration query.
SopTaskConfig = namedtuple(
    "SopTaskConfig",
    [
        "id",
        "kind",
        "template_id",
        "stage_id",
        "order",  # (stage sequence, stage id, task sequence, task id)
        "required",
        "lead_fields",
        "partner_fields",
        "domain",
        "mail_template_id",
        "activity_type_id",
        "gate",
        "crm_stage_id",
    ],
)

_logger = logging.getLogger(__name__)

DOMAIN_MAX_LENGTH = 4000
# what a condition may compare: no sub-domains (any, not any) nor hierarchies
# (child_of, parent_of), which walk other records
CONDITION_OPERATORS = (
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "like",
    "not like",
    "ilike",
    "not ilike",
    "=like",
    "=ilike",
)
RELATIONAL_OPERATORS = ("=", "!=", "in", "not in")
FIELD_TYPES_EXCLUDED = ("properties", "properties_definition", "json")


class CrmSopTaskTemplate(models.Model):
    _name = "crm.sop.task.template"
    _description = "Sales SOP Task Template"
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
    guidance = fields.Html(
        translate=True, help="How to do it well: shown to the rep with the task."
    )

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

    @api.model
    def _sop_parse_domain(self, text):
        """Parse a condition typed by a manager as data, never as code.

        Only literals are accepted (``ast.literal_eval``); every leaf must name
        a stored field of crm.lead (no dotted path) with a known operator; the
        domain is finally run once inside a savepoint to catch wrong values.
        Returns the domain as a list; raises a translated ValidationError.
        """
        if not text or not text.strip():
            raise ValidationError(self.env._("A condition task needs a condition."))
        if len(text) > DOMAIN_MAX_LENGTH:
            raise ValidationError(
                self.env._(
                    "The condition is too long (%(max)s characters at most).",
                    max=DOMAIN_MAX_LENGTH,
                )
            )
        try:
            domain = ast.literal_eval(text.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ValidationError(
                self.env._(
                    "The condition “%(domain)s” is not a valid domain: write it as "
                    "a list of conditions, e.g. [('expected_revenue', '>', 0)].",
                    domain=text,
                )
            ) from None
        if not isinstance(domain, (list, tuple)) or not domain:
            raise ValidationError(
                self.env._(
                    "The condition “%(domain)s” must be a non-empty list, e.g. "
                    "[('expected_revenue', '>', 0)].",
                    domain=text,
                )
            )
        for leaf in domain:
            self._sop_check_leaf(leaf)
        domain = [tuple(leaf) if isinstance(leaf, list) else leaf for leaf in domain]
        Lead = self.env["crm.lead"]
        try:
            domain = expression.normalize_domain(domain)
            # as the manager who typed it, never as superuser
            with self.env.cr.savepoint():
                Lead.search_count(domain, limit=1)
            # the engine evaluates it in Python (filtered_domain) too
            Lead.new({}).filtered_domain(domain)
        except Exception as error:
            raise ValidationError(
                self.env._(
                    "The condition “%(domain)s” cannot be applied to opportunities: "
                    "%(error)s",
                    domain=text,
                    error=str(error),
                )
            ) from None
        return domain

    def _sop_condition_fields(self):
        """Names of the opportunity fields the condition reads (empty when it
        cannot be read)."""
        self.ensure_one()
        if self.kind != "condition" or not self.domain:
            return set()
        try:
            domain = ast.literal_eval(self.domain)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return set()
        if not isinstance(domain, (list, tuple)):
            return set()
        return {
            leaf[0]
            for leaf in domain
            if isinstance(leaf, (list, tuple)) and leaf and isinstance(leaf[0], str)
        }

    @api.model
    def _sop_check_leaf(self, leaf):
        """A leaf of a condition stays on the opportunity's own stored fields:
        no dotted path, no sub-domain (``any``, ``child_of``...), and a
        relational field is compared with record ids only (a name would be
        searched on the other model). Pure check, no query; raises a
        translated ValidationError."""
        if leaf in expression.DOMAIN_OPERATORS:
            return
        if not (
            isinstance(leaf, (list, tuple))
            and len(leaf) == 3
            and isinstance(leaf[0], str)
            and isinstance(leaf[1], str)
        ):
            raise ValidationError(
                self.env._(
                    "“%(leaf)s” is not a condition: write (field, operator, value).",
                    leaf=str(leaf),
                )
            )
        fname, operator, value = leaf
        field = self.env["crm.lead"]._fields.get(fname)
        if (
            field is None
            or not field.store
            or field.type in ("one2many", *FIELD_TYPES_EXCLUDED)
        ):
            raise ValidationError(
                self.env._(
                    "The condition uses “%(field)s”, which is not a stored field "
                    "of the opportunity itself.",
                    field=fname,
                )
            )
        label = field._description_string(self.env)
        if operator not in CONDITION_OPERATORS:
            raise ValidationError(
                self.env._(
                    "The operator “%(operator)s” cannot be used in a condition "
                    "(on “%(field)s”).",
                    operator=operator,
                    field=label,
                )
            )
        values = value if isinstance(value, (list, tuple)) else [value]
        if field.relational:
            ok = operator in RELATIONAL_OPERATORS and all(
                v is False
                or v is None
                or (isinstance(v, int) and not isinstance(v, bool) and v > 0)
                for v in values
            )
            if not ok:
                raise ValidationError(
                    self.env._(
                        "“%(field)s” links to other records: compare it with “=”, "
                        "“!=”, “in” or “not in” and record ids, or with False "
                        "(empty).",
                        field=label,
                    )
                )
        elif not all(
            v is None or isinstance(v, (str, int, float, bool)) for v in values
        ):
            raise ValidationError(
                self.env._(
                    "The value compared with “%(field)s” must be a text, a number, "
                    "True/False or a list of them.",
                    field=label,
                )
            )

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        task_templates = super().create(vals_list)
        self._sop_clear_caches()
        self.env["crm.sop.task"]._sop_instantiate_templates(task_templates)
        return task_templates

    def write(self, vals):
        res = super().write(vals)
        self._sop_clear_caches()
        Task = self.env["crm.sop.task"]
        if "active" in vals or "stage_id" in vals:
            Task._sop_instantiate_templates(self)
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
            Task._sop_evaluate_templates(self)
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
            self.env["crm.sop.task"]._sop_evaluate(leads)
        return res

    # ------------------------------------------------------------
    # ENGINE CONFIGURATION (cached)
    # ------------------------------------------------------------

    @api.model
    def _sop_clear_caches(self):
        """The engine's configuration ("default" cache) and the views built
        from it: Fill in dialogs, customer profile ("templates" cache)."""
        self.env.registry.clear_cache("default", "templates")

    @api.model
    @tools.ormcache()
    def _sop_config(self):
        """{task template id: SopTaskConfig} of every active task template."""
        task_templates = (
            self.sudo()
            .with_context(active_test=True)
            .search_fetch(
                [("stage_id.active", "=", True), ("template_id.active", "=", True)],
                [
                    "kind",
                    "scope",
                    "template_id",
                    "stage_id",
                    "sequence",
                    "required",
                    "field_ids",
                    "domain",
                    "mail_template_id",
                    "activity_type_id",
                ],
            )
        )
        config = {}
        for task in task_templates:
            names = tuple(task.field_ids.mapped("name"))
            if task.kind == "fields":
                lead_fields = names if task.scope == "opportunity" else ()
                partner_fields = names if task.scope == "customer" else ()
            else:
                lead_fields = partner_fields = ()
            domain = None
            if task.kind == "condition" and task.domain:
                try:
                    domain = tuple(
                        tuple(leaf) if isinstance(leaf, list) else leaf
                        for leaf in ast.literal_eval(task.domain)
                    )
                    # saved under older rules, or a field changed since: a
                    # condition that is no longer acceptable checks nothing
                    for leaf in domain:
                        self._sop_check_leaf(leaf)
                except (ValueError, SyntaxError, TypeError, ValidationError):
                    _logger.warning(
                        "Sales SOP: the condition of task template %s is ignored",
                        task.id,
                    )
                    domain = None
            stage = task.stage_id
            config[task.id] = SopTaskConfig(
                id=task.id,
                kind=task.kind,
                template_id=task.template_id.id,
                stage_id=stage.id,
                order=(stage.sequence, stage.id, task.sequence, task.id),
                required=task.required,
                lead_fields=lead_fields,
                partner_fields=partner_fields,
                domain=domain,
                mail_template_id=task.mail_template_id.id,
                activity_type_id=task.activity_type_id.id,
                gate=stage.gate,
                crm_stage_id=stage.crm_stage_id.id,
            )
        return tools.frozendict(config)

    @api.model
    def _sop_names(self, task_template_ids):
        """{task template id: (SOP stage name, task name)} in the user's
        language, for messages about the user's own opportunities."""
        # sudo: the names of the tasks of the playbook an opportunity follows
        task_templates = (
            self.sudo().with_context(active_test=False).browse(task_template_ids)
        )
        return {tt.id: (tt.stage_id.name, tt.name) for tt in task_templates}

    @api.model
    @tools.ormcache("model_name")
    def _sop_watched_fields(self, model_name):
        """Fields of ``model_name`` whose write may change a task's state."""
        names = set()
        for config in self._sop_config().values():
            if model_name == "crm.lead":
                names.update(config.lead_fields)
                if config.partner_fields:
                    names.add("partner_id")
                for leaf in config.domain or ():
                    if isinstance(leaf, tuple):
                        names.add(leaf[0])
            elif model_name == "res.partner":
                names.update(config.partner_fields)
        model = self.env[model_name]
        for name in list(names):
            field = model._fields.get(name)
            if field is not None and field.compute:
                # a stored computed field changes when what it depends on is written
                names.update(
                    dep.split(".")[0] for dep in self.pool.field_depends[field]
                )
        return frozenset(names)

    # ------------------------------------------------------------
    # FILL-IN DIALOG
    # ------------------------------------------------------------

    def _sop_fill_model(self):
        """The model whose fields the task collects."""
        self.ensure_one()
        return "res.partner" if self.scope == "customer" else "crm.lead"

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
        for field in task.field_ids:
            if field.model != model_name or field.name not in model._fields:
                continue
            node = etree.SubElement(group, "field", name=field.name)
            if model._fields[field.name].type == "many2many":
                node.set("widget", "many2many_tags")
        if model_name == "crm.lead":
            # keep what the lead form's onchanges and widgets expect around
            etree.SubElement(group, "field", name="company_id", invisible="1")
        return form

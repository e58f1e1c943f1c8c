import ast
import logging

from lxml import etree

from odoo import api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools.i18n import format_list

from odoo.addons.base.models.ir_model import MODULE_UNINSTALL_FLAG

from .crm_sop_config import SopTaskConfig

_logger = logging.getLogger(__name__)

# fields a task cannot ask a rep to fill, nor a condition compare
FIELD_TYPES_EXCLUDED = ("properties", "properties_definition", "json")
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
# what a condition may not read although stored on the opportunity: field
# types with nothing a manager compares (markup, files), fields of
# technical modules (mail bounces and cc, lead enrichment), and fields kept
# for the system: ids and authors, colours, matching copies (normalized,
# sanitized, quality) and automation stamps. The engine's own results
# (read-only fields of this addon) are refused too: a task cannot wait for
# its own progress.
CONDITION_TYPES_EXCLUDED = ("one2many", "html", "binary", *FIELD_TYPES_EXCLUDED)
CONDITION_MODULES_EXCLUDED = (
    "mail",
    "sms",
    "phone_validation",
    "iap_crm",
    "crm_iap_enrich",
    "crm_iap_mine",
    "website_crm_iap_reveal",
)
CONDITION_FIELDS_EXCLUDED = frozenset(
    {
        "id",
        "active",
        "color",
        "create_uid",
        "write_uid",
        "write_date",
        "automated_probability",
        "date_automation_last",
        "email_domain_criterion",
        "email_normalized",
        "email_state",
        "phone_sanitized",
        "phone_state",
    }
)
NUMBER_TYPES = ("integer", "float", "monetary")


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
        if "required" in vals:
            # adherence counts required tasks only
            self.env["crm.sop.task.fact"]._sop_mark_all()
        return res

    def unlink(self):
        """Removing a task from a playbook keeps its history: a task template
        with done tasks is archived, the others are deleted (with their open
        tasks)."""
        if self.env.context.get(MODULE_UNINSTALL_FLAG):
            # the addon is uninstalled: its tables go, history included
            return super().unlink()
        # sudo: every deal's tasks of these task templates, whoever deletes
        # them (a manager's record rules may hide some deals); ids only
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
        # the others' tasks go first as when they are archived (the deals
        # that lose one locked, at most SOP_EVALUATE_INLINE evaluated in this
        # save, the others by the setup job), rather than by the deletion,
        # which would write every deal whose next step one was; one a rep is
        # saving keeps its task until the job prunes it, and its task
        # template stays archived (deleting it would wait for the rep)
        remove = self - keep
        remove.filtered("active").action_archive()
        # sudo: as above
        held = (
            self.env["crm.sop.task"]
            .sudo()
            ._read_group([("task_template_id", "in", remove.ids)], ["task_template_id"])
        )
        remove -= self.browse([task_template.id for (task_template,) in held])
        res = super(CrmSopTaskTemplate, remove).unlink()
        self._sop_clear_caches()
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
        method = self.env["crm.sop.task.kind"]._sop_kind(self.kind, "fill_fields")
        return method(self) if method else ()

    def _sop_fill_arch(self, model_name, view_only=False):
        """The form of the "Fill in" dialog: exactly the task's fields and its
        guidance (as text), built as an element tree (nothing typed by a manager
        is parsed as XML). ``view_only``: the dialog of "View", read-only
        (``edit="0"``), with a Close button."""
        task = self.sudo()
        form = etree.Element("form", string=task.name)
        if view_only:
            form.set("edit", "0")
            form.set("create", "0")
            form.set("delete", "0")
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
        if view_only:
            footer = etree.SubElement(form, "footer")
            etree.SubElement(
                footer,
                "button",
                {
                    "string": self.env._("Close"),
                    "special": "cancel",
                    "class": "btn-primary",
                    "data-hotkey": "x",
                },
            )
        return form

    # ------------------------------------------------------------
    # CONDITIONS: typed by a manager, parsed as data and never as code:
    # every leaf stays on a stored field of the opportunity itself
    # ------------------------------------------------------------

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

    def _sop_config_domain(self, log=True):
        """The condition as the engine caches it (a tuple of leaves), or None
        when it is no longer acceptable (saved under older rules, a field
        changed since): such a condition checks nothing."""
        self.ensure_one()
        try:
            domain = tuple(
                tuple(leaf) if isinstance(leaf, list) else leaf
                for leaf in ast.literal_eval(self.domain or "")
            )
            for leaf in domain:
                self._sop_check_leaf(leaf)
        except (
            ValueError,
            SyntaxError,
            TypeError,
            MemoryError,
            RecursionError,
            ValidationError,
        ):
            if log:
                _logger.warning(
                    "Sales SOP: the condition of task template %s is ignored", self.id
                )
            return None
        return domain or None

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
        if field is None or not field.store:
            raise ValidationError(
                self.env._(
                    "The condition uses “%(field)s”, which is not a stored field "
                    "of the opportunity itself.",
                    field=fname,
                )
            )
        if not self._sop_condition_field_ok(field):
            raise ValidationError(
                self.env._(
                    "The condition uses “%(field)s”, a field the system keeps "
                    "for itself: choose one of the opportunity's business "
                    "fields.",
                    field=field._description_string(self.env),
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
        else:
            self._sop_check_leaf_values(field, label, operator, values)

    @api.model
    def _sop_check_leaf_values(self, field, label, operator, values):
        """A number field is compared with numbers, a date with dates, a
        yes/no field with True or False, a choice with its choices: said in
        words here, before the database or Python says it in theirs (or the
        condition silently matches nothing). Empty (False, None) is always
        fine."""
        choices = None
        if field.type == "selection" and operator in RELATIONAL_OPERATORS:
            choices = dict(field._description_selection(self.env))
        for value in values:
            if value is False or value is None:
                continue
            if field.type == "boolean" and value not in (True, False):
                raise ValidationError(
                    self.env._(
                        "“%(value)s” is not True or False: “%(field)s” is "
                        "compared with True or False.",
                        value=value,
                        field=label,
                    )
                )
            if choices is not None and value not in choices:
                raise ValidationError(
                    self.env._(
                        "“%(value)s” is not a choice of “%(field)s”: compare it "
                        "with %(choices)s.",
                        value=value,
                        field=label,
                        choices=format_list(
                            self.env,
                            [f"“{key}” ({name})" for key, name in choices.items()],
                        ),
                    )
                )
            if field.type in NUMBER_TYPES and not isinstance(value, (int, float)):
                raise ValidationError(
                    self.env._(
                        "“%(value)s” is not a number: “%(field)s” is compared "
                        "with numbers.",
                        value=value,
                        field=label,
                    )
                )
            if field.type in ("date", "datetime"):
                try:
                    ok = isinstance(value, str) and bool(
                        fields.Datetime.to_datetime(value)
                    )
                except ValueError:
                    ok = False
                if not ok:
                    raise ValidationError(
                        self.env._(
                            "“%(value)s” is not a date: “%(field)s” is compared "
                            "with dates written as 2026-12-31.",
                            value=value,
                            field=label,
                        )
                    )

    @api.model
    def _sop_condition_field_ok(self, field):
        """Whether a condition may read this stored field of the
        opportunity: its business fields, custom ones included (see
        CONDITION_FIELDS_EXCLUDED); fields reserved to some groups are not
        offered either (the engine reads every deal)."""
        return not (
            field.type in CONDITION_TYPES_EXCLUDED
            or field.name in CONDITION_FIELDS_EXCLUDED
            or field.groups
            or field._module in CONDITION_MODULES_EXCLUDED
            or (field._module == "crm_sales_sop" and field.readonly)
        )

    @api.model
    @api.readonly
    def get_sop_condition_field_names(self):
        """The opportunity fields the condition editor offers: what
        ``_sop_check_leaf`` accepts, and nothing else (to whoever may read
        task templates)."""
        self.check_access("read")
        return sorted(
            name
            for name, field in self.env["crm.lead"]._fields.items()
            if field.store and self._sop_condition_field_ok(field)
        )

    @api.model
    @api.readonly
    def get_sop_condition_operators(self):
        """The domain operators ``_sop_check_leaf`` accepts, for the
        condition editor to offer those only (to whoever may read task
        templates): ``{'operators', 'relational_operators'}`` (the latter for
        fields that link to other records)."""
        self.check_access("read")
        return {
            "operators": list(CONDITION_OPERATORS),
            "relational_operators": list(RELATIONAL_OPERATORS),
        }

    # ------------------------------------------------------------
    # THE CONDITION IN WORDS (shown to the rep with the task)
    # ------------------------------------------------------------

    def _sop_condition_words(self):
        """The condition as a rep reads it, e.g. "Priority is at least High",
        in the user's language; False when there is none."""
        self.ensure_one()
        domain = (
            self._sop_config_domain(log=False) if self.kind == "condition" else None
        )
        if not domain:
            return False
        domain = expression.normalize_domain(list(domain))

        def parse(index):
            token = domain[index]
            if token in ("&", "|"):
                left, index = parse(index + 1)
                right, index = parse(index)
                return ("op", token, left, right), index
            if token == "!":
                operand, index = parse(index + 1)
                return ("op", "!", operand), index
            return ("leaf", token), index + 1

        def words(node, parent=None):
            if node[0] == "leaf":
                return self._sop_leaf_words(node[1])
            if node[1] == "!":
                return self.env._("not (%(condition)s)", condition=words(node[2]))
            left, right = words(node[2], node[1]), words(node[3], node[1])
            if node[1] == "&":
                text = self.env._("%(left)s and %(right)s", left=left, right=right)
            else:
                text = self.env._("%(left)s or %(right)s", left=left, right=right)
            return f"({text})" if parent and parent != node[1] else text

        return words(parse(0)[0])

    def _sop_leaf_words(self, leaf):
        fname, operator, value = leaf
        if leaf in (expression.TRUE_LEAF, expression.FALSE_LEAF):
            return self.env._("always") if leaf == expression.TRUE_LEAF else "-"
        field = self.env["crm.lead"]._fields[fname]
        label = field._description_string(self.env)
        if value is False or value is None:
            if operator == "=":
                return self.env._("%(field)s is empty", field=label)
            if operator == "!=":
                return self.env._("%(field)s is set", field=label)
        text = self._sop_value_words(field, value)
        phrases = {
            "=": self.env._("%(field)s is %(value)s", field=label, value=text),
            "!=": self.env._("%(field)s is not %(value)s", field=label, value=text),
            ">": self.env._(
                "%(field)s is more than %(value)s", field=label, value=text
            ),
            ">=": self.env._(
                "%(field)s is at least %(value)s", field=label, value=text
            ),
            "<": self.env._(
                "%(field)s is less than %(value)s", field=label, value=text
            ),
            "<=": self.env._("%(field)s is at most %(value)s", field=label, value=text),
            "in": self.env._("%(field)s is one of %(value)s", field=label, value=text),
            "not in": self.env._(
                "%(field)s is none of %(value)s", field=label, value=text
            ),
        }
        if operator in phrases:
            return phrases[operator]
        if operator.startswith("not"):
            return self.env._(
                "%(field)s does not contain %(value)s", field=label, value=text
            )
        return self.env._("%(field)s contains %(value)s", field=label, value=text)

    def _sop_value_words(self, field, value):
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if field.type == "selection":
            labels = dict(field._description_selection(self.env))
            texts = [str(labels.get(v, v)) for v in values]
        elif field.relational:
            # as the user: a record they cannot read is named by its id only
            records = self.env[field.comodel_name].browse(
                [v for v in values if isinstance(v, int)]
            )
            names = {
                record.id: record.display_name
                for record in records.exists()._filtered_access("read")
            }
            texts = [names.get(v, f"#{v}") for v in values if v]
        elif field.type == "boolean":
            texts = [self.env._("Yes") if v else self.env._("No") for v in values]
        else:
            texts = [str(v) for v in values]
        return ", ".join(texts)

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
        Kind = self.env["crm.sop.task.kind"]
        for task in task_templates:
            stage = task.stage_id
            config[task.id] = SopTaskConfig(
                id=task.id,
                kind=task.kind,
                template_id=task.template_id.id,
                stage_id=stage.id,
                order=(stage.sequence, stage.id, task.sequence, task.id),
                required=task.required,
                gate=stage.gate,
                crm_stage_id=stage.crm_stage_id.id,
                **Kind._sop_kind(task.kind, "config")(task),
            )
        return tools.frozendict(config)

    @api.model
    def _sop_check_kept_on_leads(self, fname, moved, message):
        """``moved`` (scripts, activity types) no longer serve opportunities:
        refused when task templates (archived ones too, of every company) use
        them in ``fname``. ``message``: translated, with %(record)s and
        %(tasks)s."""
        if not moved:
            return
        # sudo: every playbook counts, whoever edits the records
        used = (
            self.sudo()
            .with_context(active_test=False)
            .search([(fname, "in", moved.ids)])
        )
        if used:
            raise ValidationError(
                message
                % {
                    "record": used[0][fname].display_name,
                    "tasks": ", ".join(used.mapped("name")),
                }
            )

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
    def _sop_collected_fields(self, model_name):
        """Fields of ``model_name`` (``crm.lead`` or ``res.partner``) that the
        active playbooks have reps fill or read, in the playbooks' order."""
        attr = "partner_fields" if model_name == "res.partner" else "lead_fields"
        names = {}
        for config in sorted(self._sop_config().values(), key=lambda c: c.order):
            names.update(dict.fromkeys(getattr(config, attr)))
        return tuple(names)

    @api.model
    @tools.ormcache("model_name")
    def _sop_watched_fields(self, model_name):
        """Fields of ``model_name`` whose write may change a task's state."""
        names = set(self._sop_collected_fields(model_name))
        if model_name == "crm.lead" and self._sop_collected_fields("res.partner"):
            names.add("partner_id")
        model = self.env[model_name]
        for name in list(names):
            field = model._fields.get(name)
            if field is not None and field.compute:
                # a stored computed field changes when what it depends on is written
                names.update(
                    dep.split(".")[0] for dep in self.pool.field_depends[field]
                )
        return frozenset(names)

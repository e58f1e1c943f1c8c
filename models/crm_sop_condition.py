import ast
import logging

from odoo import api, models
from odoo.exceptions import ValidationError
from odoo.osv import expression

from .crm_sop_task_template import FIELD_TYPES_EXCLUDED

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


class CrmSopTaskTemplate(models.Model):
    """Conditions typed by a manager, parsed as data and never as code: every
    leaf stays on a stored field of the opportunity itself."""

    _inherit = "crm.sop.task.template"

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

"""The default playbook's own fields become its data.

Until 18.0.1.4.0 the fields the default (furniture showroom) playbook collects
were Python fields of the engine: ``sop_companions``, ``sop_decision_makers``,
``sop_intended_category``, ``sop_intended_style`` on ``crm.lead``,
``sop_gender``, ``sop_age_range`` on ``res.partner``. They are now custom
fields the addon ships as data (``data/ir.model.fields.csv``), which Odoo
requires to be named ``x_...``. Before the module loads, each one is renamed
in place: its column (the values stay), its field record (the same id: task
templates, tracking, defaults and selections keep pointing at it) and the
external ids that make it the addon's (so that the data files take it over
instead of Odoo deleting it as an obsolete field). Then what a customer saved
under the old names is rewritten: their copies of the scripts (mail
templates), filters, exports, views, server actions, window actions, record
rules, custom fields, automation rules, conditions of task templates, and the
predictive lead scoring's fields and frequencies.
"""

import logging

from odoo.tools import SQL
from odoo.tools.sql import column_exists, rename_column, table_exists

_logger = logging.getLogger(__name__)

RENAMED = {
    ("crm.lead", "crm_lead"): (
        "sop_companions",
        "sop_decision_makers",
        "sop_intended_category",
        "sop_intended_style",
    ),
    ("res.partner", "res_partner"): ("sop_gender", "sop_age_range"),
}
OLD_NAMES = tuple(name for names in RENAMED.values() for name in names)
# a whole word: x_sop_gender, field_res_partner__sop_gender do not match
# (the underscore is a letter of the word)
OLD_WORD = r"\m(" + "|".join(OLD_NAMES) + r")\M"

# (table, columns) where a customer may have written a field's name
TEXTS = (
    (
        "mail_template",
        (
            "subject",
            "body_html",
            "email_from",
            "email_to",
            "email_cc",
            "partner_to",
            "reply_to",
            "lang",
            "scheduled_date",
        ),
    ),
    ("sms_template", ("body",)),
    ("ir_filters", ("domain", "context", "sort")),
    ("ir_exports_line", ("name",)),
    ("ir_ui_view", ("arch_db", "arch_prev")),
    ("ir_act_server", ("code", "update_path", "value")),
    ("ir_act_window", ("domain", "context")),
    ("ir_rule", ("domain_force",)),
    ("ir_model_fields", ("related", "depends", "compute", "domain")),
    ("base_automation", ("filter_domain", "filter_pre_domain")),
    ("crm_sop_task_template", ("domain",)),
)


def _rename_fields(cr):
    for (model, table), names in RENAMED.items():
        model_ = model.replace(".", "_")
        for old in names:
            new = f"x_{old}"
            if column_exists(cr, table, old) and not column_exists(cr, table, new):
                rename_column(cr, table, old, new)
            cr.execute(
                """UPDATE ir_model_fields SET name = %s, state = 'manual'
                    WHERE model = %s AND name = %s""",
                (new, model, old),
            )
            cr.execute(
                """UPDATE ir_model_data SET name = %s
                    WHERE module = 'crm_sales_sop' AND model = 'ir.model.fields'
                      AND name = %s""",
                (f"field_{model_}__{new}", f"field_{model_}__{old}"),
            )
            cr.execute(
                """UPDATE ir_model_data
                      SET name = %s || substr(name, length(%s) + 1)
                    WHERE module = 'crm_sales_sop'
                      AND model = 'ir.model.fields.selection'
                      AND starts_with(name, %s)""",
                (
                    f"selection__{model_}__{new}__",
                    f"selection__{model_}__{old}__",
                    f"selection__{model_}__{old}__",
                ),
            )


def _text_columns(cr, table, columns):
    """{column: data type} of those of ``columns`` that ``table`` has."""
    cr.execute(
        """SELECT column_name, data_type FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = %s
              AND column_name = ANY(%s)""",
        (table, list(columns)),
    )
    return dict(cr.fetchall())


def rewrite_texts(cr):
    """Every old name written in a customer's configuration becomes the new
    one; returns the number of rows changed."""
    changed = 0
    for table, columns in TEXTS:
        if not table_exists(cr, table):
            continue
        for column, data_type in _text_columns(cr, table, columns).items():
            # a translated column (jsonb) is rewritten in every language
            cast = SQL("::jsonb") if data_type == "jsonb" else SQL()
            cr.execute(
                SQL(
                    """UPDATE %(table)s
                          SET %(column)s = regexp_replace(
                                  %(column)s::text, %(word)s, 'x_\\1', 'g')%(cast)s
                        WHERE %(column)s::text ~ %(word)s""",
                    table=SQL.identifier(table),
                    column=SQL.identifier(column),
                    word=OLD_WORD,
                    cast=cast,
                )
            )
            changed += cr.rowcount
    cr.execute(
        """UPDATE ir_config_parameter
              SET value = regexp_replace(value, %s, 'x_\\1', 'g')
            WHERE key = 'crm.pls_fields' AND value ~ %s""",
        (OLD_WORD, OLD_WORD),
    )
    changed += cr.rowcount
    if table_exists(cr, "crm_lead_scoring_frequency"):
        cr.execute(
            """UPDATE crm_lead_scoring_frequency SET variable = 'x_' || variable
                WHERE variable = ANY(%s)""",
            (list(OLD_NAMES),),
        )
        changed += cr.rowcount
    return changed


def migrate(cr, version):
    _rename_fields(cr)
    changed = rewrite_texts(cr)
    if changed:
        _logger.info(
            "Sales SOP upgrade: the default playbook's fields renamed x_... in "
            "%s saved configuration row(s)",
            changed,
        )

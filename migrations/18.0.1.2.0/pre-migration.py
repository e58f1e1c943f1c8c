import logging

from odoo.tools.sql import column_exists, table_exists

_logger = logging.getLogger(__name__)

# the bounds of this version (models/crm_sop_stage.py, models/res_company.py):
# the CHECK constraints cannot be added while a row is past them
STALL_DAYS_MAX = 365
REMINDER_OFFSET_MAX = 480


def _fix(cr, query, what):
    cr.execute(query)
    if cr.rowcount:
        _logger.warning("Sales SOP upgrade: %s on %s row(s)", what, cr.rowcount)


def migrate(cr, version):
    # the reminder ledger gets its company (the multi-company rule): the
    # salesperson's main company, whose calendar and offsets decided the
    # prompt; filled before the ORM adds the column NOT NULL
    if table_exists(cr, "crm_sop_reminder"):
        cr.execute(
            """ALTER TABLE crm_sop_reminder
                 ADD COLUMN IF NOT EXISTS company_id integer"""
        )
        _fix(
            cr,
            """UPDATE crm_sop_reminder r SET company_id = u.company_id
                 FROM res_users u
                WHERE u.id = r.user_id AND r.company_id IS NULL""",
            "reminder ledger: company set from the salesperson",
        )
    # numbers past the new bounds: a stage stalling after more than the
    # bound never stalled in practice (0: never); an offset past a workday
    # is the longest one; a negative high-value amount counted every win,
    # as 0 does
    if column_exists(cr, "crm_sop_stage", "stall_days"):
        _fix(
            cr,
            f"""UPDATE crm_sop_stage SET stall_days = 0
                 WHERE stall_days > {STALL_DAYS_MAX} OR stall_days < 0""",
            f"SOP stage stall days past {STALL_DAYS_MAX} set to 0 (never)",
        )
    for column in ("sop_reminder_start_offset", "sop_reminder_end_offset"):
        if column_exists(cr, "res_company", column):
            _fix(
                cr,
                f"""UPDATE res_company
                       SET {column} = LEAST(GREATEST({column}, 0),
                                            {REMINDER_OFFSET_MAX})
                     WHERE {column} NOT BETWEEN 0 AND {REMINDER_OFFSET_MAX}""",
                f"company {column} brought within 0-{REMINDER_OFFSET_MAX} minutes",
            )
    if column_exists(cr, "res_company", "sop_high_value_amount"):
        _fix(
            cr,
            """UPDATE res_company SET sop_high_value_amount = 0
                WHERE sop_high_value_amount < 0""",
            "negative high-value amount set to 0",
        )

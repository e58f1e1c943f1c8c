"""The engine's rows: what it knows of an active task template, and of a
task, as plain tuples (no records: millions of rows)."""

from collections import namedtuple
from functools import partial

# What the engine needs to know of an active task template, cached per registry
# (see ``_sop_config``) so that evaluating a batch costs no configuration query.
# The kind-specific part comes from ``_sop_config_<kind>`` (crm_sop_task_kind.py).
SopTaskConfig = namedtuple(
    "SopTaskConfig",
    [
        "id",
        "kind",
        "template_id",
        "stage_id",
        "order",  # (stage sequence, stage id, task sequence, task id)
        "required",
        "gate",
        "crm_stage_id",
        # what its tasks read and watch
        "lead_fields",
        "partner_fields",
        # kind-specific
        "domain",
        "mail_template_id",
        "activity_type_id",
    ],
    defaults=[(), (), None, False, False],
)

# A task row as the engine reads it: SQL, no records (millions of rows).
# ``date_done``: its first completion (kept when it is reopened)
SopTaskRow = namedtuple(
    "SopTaskRow",
    ["id", "lead_id", "task_template_id", "state", "date_script_sent", "date_done"],
)

# a SopTaskRow made of a database row by tuple.__new__ (C), not by the
# namedtuple's __new__ (Python): a batch makes one per task, 13,000 for an
# import of 1,000 deals
_sop_task_row = partial(tuple.__new__, SopTaskRow)


def sop_task_rows(rows):
    """[SopTaskRow] of the database ``rows`` (id, lead_id, task_template_id,
    state, date_script_sent, date_done)."""
    return list(map(_sop_task_row, rows))

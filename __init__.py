from . import models, wizard

# review reports
from . import report  # isort: skip


def _crm_sop_post_init(env):
    """Give every open lead that exists at install its playbook and tasks.

    Done in SQL by the engine (one UPDATE per playbook, one INSERT ... SELECT),
    then evaluated in chunks: no per-record ORM work.
    """
    env["crm.sop.task"]._sop_sync_all(everything=True)
    env["crm.lead"]._sop_pls_enable()

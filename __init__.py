from . import models, report, wizard


def _crm_sop_post_init(env):
    """Give every open lead that exists at install its playbook and tasks.

    Done in SQL by the engine (one UPDATE per playbook, one INSERT ... SELECT),
    then evaluated in chunks: no per-record ORM work.
    """
    env["crm.sop.engine"]._sop_sync_all(everything=True)
    # the stage moves of the deals that exist: adherence reads them
    env["crm.sop.stage.move"]._sop_seed_from_tracking()

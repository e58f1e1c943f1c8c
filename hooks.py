from odoo.tools import SQL

from odoo.addons.base.models.ir_model import MODULE_UNINSTALL_FLAG

from .models.crm_lead import SOP_DATE_CLOSED_INDEX


def _crm_sop_post_init(env):
    """Give every open lead that exists at install its playbook and tasks.

    Done in SQL by the engine (one UPDATE per playbook, one INSERT ... SELECT),
    then evaluated in chunks: no per-record ORM work. Over more than
    SOP_SETUP_INLINE open leads, the newest are set up here and the setup
    job (triggered) does the others after the install, batch by batch.
    """
    env["crm.sop.engine"]._sop_sync_all(everything=True)
    # the stage moves of the deals that exist: adherence reads them
    env["crm.sop.stage.move"]._sop_seed_from_tracking()


def _crm_sop_uninstall(env):
    """What Odoo's uninstall does not undo by itself; it runs before it.

    - Predictive lead scoring: the increments closes left to the addon's
      job (``crm.sop.scoring.increment``) are made now, its table going;
      the addon's fields are taken out of
      ``crm.pls_fields`` (a manager may have added the SOP band) and their
      learnt frequencies deleted, so that core's scoring and its settings name
      no field that is gone.
    - The index the addon puts on core's ``crm_lead`` columns (the closed
      deals' dates) is dropped: no column of the addon takes it away.
    - The record of each script sent refuses the deletion of its script
      (``ondelete="restrict"``, the history must not lose its script); the
      scripts the addon ships are deleted before its tables are dropped, so
      the records go first.
    """
    Lead = env["crm.lead"]
    sop_fields = {
        name
        for name, field in Lead._fields.items()
        if "crm_sales_sop" in field._modules and name.startswith("sop_")
    }
    # and the custom fields the default playbook ships as data (x_sop_...)
    shipped = (
        env["ir.model.data"]
        .sudo()
        .search([("module", "=", "crm_sales_sop"), ("model", "=", "ir.model.fields")])
    )
    sop_fields.update(
        env["ir.model.fields"]
        .sudo()
        .browse(shipped.mapped("res_id"))
        .filtered(lambda field: field.model == "crm.lead" and field.state == "manual")
        .mapped("name")
    )
    env["crm.sop.scoring.increment"]._cron_sop_add()
    params = env["ir.config_parameter"].sudo()
    pls_fields = params.get_param("crm.pls_fields")
    if pls_fields:
        kept = [name for name in pls_fields.split(",") if name not in sop_fields]
        if kept != pls_fields.split(","):
            # writing the parameter re-sets crm.lead's probability depends
            # (crm/models/ir_config_parameter.py)
            params.set_param("crm.pls_fields", ",".join(kept))
    # sudo: frequencies are read by every rep's scoring, deleted for all
    env["crm.lead.scoring.frequency"].sudo().search(
        [("variable", "in", sorted(sop_fields))]
    ).unlink()
    # sudo: every company's sends go with the addon's tables; the uninstall
    # flag, as Odoo's own uninstall sets it: guards kept for live databases
    # (@api.ondelete(at_uninstall=False)) do not apply
    env["crm.sop.script.send"].sudo().with_context(
        **{MODULE_UNINSTALL_FLAG: True}
    ).search([]).unlink()
    env.cr.execute(
        SQL("DROP INDEX IF EXISTS %s", SQL.identifier(SOP_DATE_CLOSED_INDEX))
    )

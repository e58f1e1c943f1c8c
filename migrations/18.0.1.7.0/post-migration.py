from odoo.tools.sql import drop_index, make_index_name


def migrate(cr, version):
    # a deal's stints are now indexed with their SOP stage
    # (crm_sop_stage_log_lead_stage_index, made by the model's init): the
    # index of the deal alone, which Odoo keeps when a field is no longer
    # indexed, is redundant beside it
    drop_index(
        cr,
        make_index_name("crm_sop_stage_log", "lead_id"),
        "crm_sop_stage_log",
    )

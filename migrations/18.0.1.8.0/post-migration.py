def migrate(cr, version):
    # a task's SOP stage is no longer stored: it is its task template's, read
    # through it. Odoo keeps the column of a field no longer stored, and with
    # it the foreign key that every task the engine inserts checked for
    # nothing (0.04-0.05 ms per new deal of 13 tasks): both go, with the
    # record of the constraint
    cr.execute("ALTER TABLE crm_sop_task DROP COLUMN IF EXISTS stage_id")
    cr.execute(
        """DELETE FROM ir_model_constraint
            WHERE name = 'crm_sop_task_stage_id_fkey' AND type = 'f'"""
    )

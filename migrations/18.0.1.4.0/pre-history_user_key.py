def migrate(cr, version):
    # the history counts now have one row per salesperson (user_key): the
    # former key of one row per (team, company, task template) goes before
    # the module's tables are updated (its rows stay valid: no salesperson)
    cr.execute("DROP INDEX IF EXISTS crm_sop_history_count_key")

def migrate(cr, version):
    """The stall clock now counts from the last real forward movement
    (creation, a forward pipeline move, a task first done). Deals keep the
    clock they had: their last forward move starts where their clock stood,
    so that no deal is found stalled by the upgrade alone."""
    cr.execute(
        """UPDATE crm_lead
              SET sop_forward_date = sop_stage_date
            WHERE sop_template_id IS NOT NULL AND sop_forward_date IS NULL"""
    )

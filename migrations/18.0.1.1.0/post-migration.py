from odoo import SUPERUSER_ID, api

# The default scripts became the library of the Scripts menu: flag those
# installed before, and link the new ones to their SOP stages (the data is
# noupdate: an upgrade does not write it), unless a manager already chose.
SCRIPTS = {
    "mail_template_sop_welcome": "crm_sop_stage_first_contact",
    "mail_template_sop_introduction": "crm_sop_stage_first_contact",
    "mail_template_sop_follow_up": "crm_sop_stage_build_trust",
    "mail_template_sop_reference": "crm_sop_stage_build_trust",
    "mail_template_sop_proposal": "crm_sop_stage_product_pitch",
}


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    # the stall clock (sop_stage_date, new in this version) of the deals that
    # already follow a playbook: their last task done, else their creation
    cr.execute(
        """UPDATE crm_lead l
              SET sop_stage_date = COALESCE(
                    (SELECT MAX(t.date_done) FROM crm_sop_task t
                      WHERE t.lead_id = l.id),
                    l.create_date)
            WHERE l.sop_template_id IS NOT NULL AND l.sop_stage_date IS NULL"""
    )
    # the SOP progress band, a variable of predictive lead scoring: from the
    # progress the deals have (closed ones keep the one they closed with)
    cr.execute(
        """UPDATE crm_lead
              SET sop_progress_band = LEAST(COALESCE(sop_progress, 0) / 25 * 25, 100)::text
            WHERE sop_template_id IS NOT NULL AND sop_progress_band IS NULL"""
    )
    # the SOP stage history starts with the stage each deal is in
    cr.execute(
        """INSERT INTO crm_sop_stage_log (lead_id, sop_stage_id, date_start)
           SELECT l.id, l.sop_stage_id, COALESCE(l.sop_stage_date, l.create_date)
             FROM crm_lead l
            WHERE l.sop_stage_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM crm_sop_stage_log g
                               WHERE g.lead_id = l.id AND g.date_end IS NULL)"""
    )
    for template_xmlid, stage_xmlid in SCRIPTS.items():
        template = env.ref(f"crm_sales_sop.{template_xmlid}", raise_if_not_found=False)
        stage = env.ref(f"crm_sales_sop.{stage_xmlid}", raise_if_not_found=False)
        if not template or template.model != "crm.lead" or template.sop_stage_ids:
            continue
        template.write(
            {
                "sop_is_script": True,
                "sop_stage_ids": [(4, stage.id)] if stage else [],
            }
        )

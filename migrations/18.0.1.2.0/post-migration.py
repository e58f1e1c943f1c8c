# The pipeline stage moves are recorded by the addon itself from this version
# on (crm.sop.stage.move, written by crm.lead create and write). Fill the log
# once from the stage_id tracking of the chatter, so that adherence and the
# review reports keep the history of the deals moved before the upgrade.
#
# This one-off read of mail tracking is the only one: nothing else in the
# addon reads stage moves from mail_tracking_value, which a client can write.


def migrate(cr, version):
    cr.execute("SELECT 1 FROM crm_sop_stage_move LIMIT 1")
    if cr.fetchone():
        return  # filled already (the migration ran before)
    cr.execute(
        """
        WITH tracked AS (
            SELECT m.res_id AS lead_id, m.date, m.id AS message_id, v.id AS value_id,
                   v.old_value_integer AS old_id, v.new_value_integer AS new_id,
                   m.create_uid AS user_id
              FROM mail_tracking_value v
              JOIN mail_message m ON m.id = v.mail_message_id
              JOIN ir_model_fields f ON f.id = v.field_id
             WHERE m.model = 'crm.lead' AND f.model = 'crm.lead'
               AND f.name = 'stage_id'
        ), first_tracked AS (
            SELECT DISTINCT ON (lead_id) lead_id, old_id
              FROM tracked
          ORDER BY lead_id, date, message_id, value_id
        ), moves AS (
            -- created in a stage: the one the first tracked move left, else
            -- the one the deal is in
            SELECT l.id AS lead_id, NULL::integer AS old_id,
                   CASE WHEN ft.lead_id IS NULL THEN l.stage_id ELSE ft.old_id END
                       AS new_id,
                   l.create_date AS date, l.create_uid AS user_id,
                   l.company_id, 0 AS message_id, 0 AS value_id
              FROM crm_lead l
         LEFT JOIN first_tracked ft ON ft.lead_id = l.id
         UNION ALL
            SELECT tr.lead_id, tr.old_id, tr.new_id, tr.date, tr.user_id,
                   l.company_id, tr.message_id, tr.value_id
              FROM tracked tr
              JOIN crm_lead l ON l.id = tr.lead_id
        )
        INSERT INTO crm_sop_stage_move
               (lead_id, stage_from_id, stage_id, date, user_id, company_id)
        SELECT mv.lead_id, fs.id, ts.id, mv.date, u.id, mv.company_id
          FROM moves mv
          JOIN crm_stage ts ON ts.id = mv.new_id
     LEFT JOIN crm_stage fs ON fs.id = mv.old_id
     LEFT JOIN res_users u ON u.id = mv.user_id
         WHERE mv.date IS NOT NULL
      ORDER BY mv.lead_id, mv.date, mv.message_id, mv.value_id
        """
    )

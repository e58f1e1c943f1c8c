def migrate(cr, version):
    """Activity tasks are now completed from the activities the product
    recorded done (crm.sop.activity.done), no longer from chatter messages,
    which anybody who may post can forge. The activity tasks done today stay
    done: one row per (opportunity, activity type) of those tasks, archived
    ones included (history of a former playbook), by who completed them and
    when. Nothing is read from the messages."""
    cr.execute(
        """INSERT INTO crm_sop_activity_done (lead_id, activity_type_id, user_id, date)
           SELECT DISTINCT ON (t.lead_id, tt.activity_type_id)
                  t.lead_id, tt.activity_type_id, t.done_user_id,
                  COALESCE(t.date_done, NOW() AT TIME ZONE 'UTC')
             FROM crm_sop_task t
             JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
            WHERE t.state = 'done'
              AND tt.kind = 'activity'
              AND tt.activity_type_id IS NOT NULL
              AND NOT EXISTS (
                    SELECT 1 FROM crm_sop_activity_done d
                     WHERE d.lead_id = t.lead_id
                       AND d.activity_type_id = tt.activity_type_id)
         ORDER BY t.lead_id, tt.activity_type_id, t.date_done"""
    )

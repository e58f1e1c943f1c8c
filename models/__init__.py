# the mixin first: crm.lead and res.partner inherit it
from . import crm_sop_record_mixin  # isort: skip
from . import crm_sop_company_mixin  # isort: skip
from . import crm_sop_engine_record  # isort: skip

# the SOP models, then the files that extend them by concern
from . import (  # isort: skip
    crm_sop_template,
    crm_sop_stage,
    crm_sop_task_template,
    crm_sop_task,
    crm_sop_task_kind,
    crm_sop_script_send,
    crm_sop_stage_log,
    crm_sop_stage_move,
    crm_sop_engine,
    crm_sop_evaluation_queue,
    crm_sop_gate_pass,
    crm_sop_activity_done,
    crm_sop_history_count,
    crm_sop_script_fact,
    crm_sop_task_fact,
    crm_sop_scoring_increment,
)

# reminders, My SOP day and stalled deals
from . import (  # isort: skip
    crm_sop_reminder,
    res_company,
    res_config_settings,
    res_users,
    res_users_settings,
)

from . import (
    crm_lead,
    crm_sop_prediction,
    crm_stage,
    crm_team,
    ir_model_fields,
    mail_activity,
    mail_activity_type,
    mail_compose_message,
    mail_mail,
    mail_notification,
    mail_template,
    res_partner,
)

# achievement board
from . import (  # isort: skip
    crm_sop_board,
    gamification_challenge,
    gamification_goal,
    gamification_goal_definition,
)

# the demo's history (called by the demo data only)
from . import crm_sop_demo  # isort: skip

# the reps' voice: suggestions to change a SOP task or stage
from . import crm_sop_suggestion  # isort: skip

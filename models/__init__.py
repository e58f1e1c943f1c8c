from . import (
    crm_lead,
    crm_sop_stage,
    crm_sop_task,
    crm_sop_task_template,
    crm_sop_template,
    crm_stage,
    ir_model_fields,
    mail_activity,
    mail_compose_message,
    res_partner,
)

from . import crm_sop_task_na

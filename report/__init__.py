from . import crm_sop_stage_report

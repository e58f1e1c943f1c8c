from . import crm_sop_stage_report

# review reports ("Review: does the SOP work?")
from . import (  # isort: skip
    crm_sop_task_report,
    crm_sop_playbook_report,
    crm_sop_script_report,
    crm_sop_coaching,
)

# the reps' voice: set-aside reasons and suggestions beside the lift
from . import crm_sop_feedback_report  # isort: skip

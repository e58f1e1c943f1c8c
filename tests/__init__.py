from . import (
    test_sop_concurrency,
    test_sop_config,
    test_sop_engine,
    test_sop_gating,
    test_sop_i18n,
    test_sop_install,
    test_sop_merge,
    test_sop_my_day,
    test_sop_panel,
    test_sop_performance,
    test_sop_prediction,
    test_sop_script,
    test_sop_security,
    test_sop_stage_report,
    test_ui,
)

# reminders, My SOP day and stalled deals
from . import test_sop_digest_mail, test_sop_reminder, test_sop_stalled  # isort: skip

# achievement board
from . import test_sop_board, test_sop_board_ui  # isort: skip

# review reports
from . import test_sop_reports, test_sop_reports_ui  # isort: skip

# uninstall hook
from . import test_sop_uninstall  # isort: skip

# the demo's history
from . import test_sop_demo  # isort: skip

# read-only entry points (the replica), the load test's small run
from . import test_sop_load, test_sop_readonly  # isort: skip

# the history counts of the uplift and the coaching queue
from . import test_sop_history_count  # isort: skip

# lead scoring's frequencies a close left to the job
from . import test_sop_scoring_increment  # isort: skip

# the task analysis' facts, kept as deals change
from . import test_sop_task_fact  # isort: skip

# the reps' voice: suggestions, task feedback
from . import test_sop_feedback  # isort: skip

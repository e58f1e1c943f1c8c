{
    "name": "Sales SOP for CRM",
    "version": "18.0.1.8.0",
    "category": "Sales/CRM",
    "summary": "Guided sales playbooks: per-opportunity tasks that complete "
    "themselves, pipeline progress and stage gating",
    "author": "crm_sales_sop contributors",
    "website": "https://github.com/crm-sales-sop/crm_sales_sop",
    "license": "LGPL-3",
    "depends": [
        "crm",
        # achievement board
        "gamification",
    ],
    "data": [
        "security/crm_sales_sop_security.xml",
        "security/ir.model.access.csv",
        # the default playbook: the fields it collects (custom fields, one
        # create each file), its scripts, its stages and tasks
        "data/ir.model.fields.csv",
        "data/ir.model.fields.selection.csv",
        "data/mail_template_data.xml",
        "data/crm_sop_template_data.xml",
        "data/crm_sop_reminder_data.xml",
        "data/crm_sop_task_fact_data.xml",
        "data/crm_sop_engine_data.xml",
        "data/crm_sop_scoring_increment_data.xml",
        "data/crm_lead_prediction_data.xml",
        "views/crm_sop_template_views.xml",
        "views/crm_sop_stage_views.xml",
        "views/crm_sop_task_template_views.xml",
        "views/crm_sop_task_views.xml",
        "views/crm_sop_task_na_views.xml",
        "views/crm_lead_views.xml",
        "views/res_partner_views.xml",
        "views/mail_template_views.xml",
        "views/crm_sop_script_send_views.xml",
        # reminders, My SOP day and stalled deals
        "views/crm_sop_reminder_views.xml",
        "views/crm_sop_task_my_day_views.xml",
        # achievement board
        "data/crm_sop_board_data.xml",
        "views/res_config_settings_board_views.xml",
        "views/crm_sop_board_views.xml",
        "report/crm_sop_stage_report_views.xml",
        # review reports
        "report/crm_sop_task_report_views.xml",
        "report/crm_sop_playbook_report_views.xml",
        "report/crm_sop_script_report_views.xml",
        "report/crm_sop_coaching_views.xml",
        # the reps' voice
        "views/crm_sop_suggestion_views.xml",
        "report/crm_sop_feedback_report_views.xml",
        # menus last
        "views/crm_sop_menus.xml",
    ],
    "demo": [
        "demo/crm_sop_demo.xml",
        "demo/crm_sop_suggestion_demo.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "crm_sales_sop/static/src/scss/crm_sales_sop.scss",
            "crm_sales_sop/static/src/views/*",
            "crm_sales_sop/static/src/patches/*",
            "crm_sales_sop/static/src/scripts/*",
            "crm_sales_sop/static/src/my_day/*",
            "crm_sales_sop/static/src/prediction/*",
            # achievement board
            "crm_sales_sop/static/src/board/*",
            # review reports
            "crm_sales_sop/static/src/reports/*",
        ],
        "web.assets_tests": [
            "crm_sales_sop/static/tests/tours/*.js",
        ],
    },
    "post_init_hook": "_crm_sop_post_init",
    "uninstall_hook": "_crm_sop_uninstall",
    "installable": True,
    "application": False,
}

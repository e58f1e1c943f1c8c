from odoo.tests import HttpCase, tagged

from odoo.addons.mail.tests.common import mail_new_test_user


def _reports_fixture(cls):
    """Two playbooks, A won 3 of 10 closed deals, B 9 of 10, and an open
    deal of B's team."""
    Team = cls.env["crm.team"]
    won_stage = cls.env["crm.stage"].search([("is_won", "=", True)], limit=1)
    other_stage = cls.env["crm.stage"].search([("is_won", "=", False)], limit=1)
    for name, won in (("Tour Playbook A", 3), ("Tour Playbook B", 9)):
        # first in the list of teams of the coaching queue
        team = Team.create({"name": f"{name} team", "sequence": -1})
        # first in the list of playbooks (sequence, id)
        cls.env["crm.sop.template"].create(
            {"name": name, "sequence": -1, "team_ids": [(6, 0, team.ids)]}
        )
        leads = cls.env["crm.lead"].create(
            [
                {
                    "name": f"{name} deal {index}",
                    "type": "opportunity",
                    "team_id": team.id,
                    "stage_id": (won_stage if index < won else other_stage).id,
                }
                for index in range(10)
            ]
        )
        leads[won:].action_set_lost()
    # an open deal of the last team, which has too little history
    cls.env["crm.lead"].create(
        {
            "name": "Tour open deal",
            "type": "opportunity",
            "team_id": team.id,
            "stage_id": other_stage.id,
            "expected_revenue": 5000,
        }
    )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopReportsUi(HttpCase):
    """A sales manager compares two playbooks: A won 3 of 10 closed deals,
    B 9 of 10; two-proportion z-test p = 0.006: B wins, for real."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        _reports_fixture(cls)

    def _manager(self, login, lang="en_US"):
        mail_new_test_user(
            self.env,
            login=login,
            name="Report Manager",
            groups="sales_team.group_sale_manager",
            lang=lang,
        )

    def test_manager_compares_playbooks(self):
        self._manager("sop_reports_manager")
        self.start_tour(
            "/odoo/action-crm_sales_sop.crm_sop_playbook_compare_action",
            "crm_sales_sop_playbook_compare",
            login="sop_reports_manager",
        )

    def test_manager_compares_playbooks_in_chinese(self):
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(
            ["crm_sales_sop"], ["zh_CN"], overwrite=True
        )
        self._manager("sop_reports_manager_zh", lang="zh_CN")
        self.start_tour(
            "/odoo/action-crm_sales_sop.crm_sop_playbook_compare_action",
            "crm_sales_sop_playbook_compare_zh",
            login="sop_reports_manager_zh",
        )

    def test_manager_opens_the_task_analysis(self):
        self._manager("sop_reports_manager_pivot")
        self.start_tour(
            "/odoo/action-crm_sales_sop.crm_sop_task_report_action",
            "crm_sales_sop_task_analysis",
            login="sop_reports_manager_pivot",
        )

    def test_manager_opens_the_coaching_queue(self):
        self._manager("sop_reports_manager_coach")
        self.start_tour(
            "/odoo/action-crm_sales_sop.crm_sop_coaching_action",
            "crm_sales_sop_coaching",
            login="sop_reports_manager_coach",
        )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopReportsUiPhone(HttpCase):
    """Issue 15, item 10, at 390 px: the coaching queue as cards, in English
    and Simplified Chinese."""

    browser_size = "390x844"
    touch_enabled = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        _reports_fixture(cls)

    _manager = TestSopReportsUi._manager

    def test_coaching_queue_on_a_phone(self):
        self._manager("sop_coach_phone")
        self.start_tour(
            "/odoo/action-crm_sales_sop.crm_sop_coaching_action",
            "crm_sales_sop_coaching_phone",
            login="sop_coach_phone",
        )

    def test_coaching_queue_on_a_phone_zh(self):
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(
            ["crm_sales_sop"], ["zh_CN"], overwrite=True
        )
        self._manager("sop_coach_phone_zh", lang="zh_CN")
        self.start_tour(
            "/odoo/action-crm_sales_sop.crm_sop_coaching_action",
            "crm_sales_sop_coaching_phone",
            login="sop_coach_phone_zh",
        )

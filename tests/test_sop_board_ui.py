from odoo import fields
from odoo.tests import HttpCase, tagged

from odoo.addons.mail.tests.common import mail_new_test_user


def _board_fixture(cls):
    """A rep alone in a team, first on the board this month."""
    # the rainbow man, not its fallback notification
    cls.env["ir.config_parameter"].set_param("base_setup.show_effect", True)
    cls.rep = mail_new_test_user(
        cls.env,
        login="sop_board_rep",
        name="Board Rep",
        groups="sales_team.group_sale_salesman",
        tz="UTC",
    )
    cls.team = cls.env["crm.team"].create(
        {"name": "Board Team", "member_ids": [(6, 0, cls.rep.ids)]}
    )
    won_stage = cls.env["crm.stage"].search([("is_won", "=", True)], limit=1)
    # won now: this week, month and quarter; more than any demo rep
    cls.env["crm.lead"].create(
        {
            "name": "Board deal",
            "type": "opportunity",
            "user_id": cls.rep.id,
            "team_id": cls.team.id,
            "stage_id": won_stage.id,
            "expected_revenue": 12345678,
            "date_closed": fields.Datetime.now(),
        }
    )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopBoardUi(HttpCase):
    browser_size = "1440x900"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        _board_fixture(cls)

    def test_rep_opens_the_board(self):
        """Celebrated once, under the tabs; not on the next visit."""
        self.start_tour(
            "/odoo/action-crm_sales_sop.action_sop_board",
            "crm_sales_sop_board",
            login="sop_board_rep",
        )
        self.start_tour(
            "/odoo/action-crm_sales_sop.action_sop_board",
            "crm_sales_sop_board_again",
            login="sop_board_rep",
        )

    def test_board_in_chinese(self):
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(
            ["crm_sales_sop"], ["zh_CN"], overwrite=True
        )
        mail_new_test_user(
            self.env,
            login="sop_board_zh",
            name="Zhang Board",
            groups="sales_team.group_sale_salesman",
            lang="zh_CN",
        )
        self.start_tour(
            "/odoo/action-crm_sales_sop.action_sop_board",
            "crm_sales_sop_board_zh",
            login="sop_board_zh",
        )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopBoardUiPhone(HttpCase):
    browser_size = "390x844"
    touch_enabled = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        _board_fixture(cls)

    def test_rep_opens_the_board_on_a_phone(self):
        """390 px: the tabs fit, the rainbow man once and under them."""
        self.start_tour(
            "/odoo/action-crm_sales_sop.action_sop_board",
            "crm_sales_sop_board",
            login="sop_board_rep",
        )
        self.start_tour(
            "/odoo/action-crm_sales_sop.action_sop_board",
            "crm_sales_sop_board_again",
            login="sop_board_rep",
        )

    def test_board_in_chinese_on_a_phone(self):
        """390 px in Simplified Chinese: translated, the tabs still fit."""
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(
            ["crm_sales_sop"], ["zh_CN"], overwrite=True
        )
        mail_new_test_user(
            self.env,
            login="sop_board_zh",
            name="Zhang Board",
            groups="sales_team.group_sale_salesman",
            lang="zh_CN",
        )
        self.start_tour(
            "/odoo/action-crm_sales_sop.action_sop_board",
            "crm_sales_sop_board_zh",
            login="sop_board_zh",
        )

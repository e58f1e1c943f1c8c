import ast
from pathlib import Path

from odoo.tests import TransactionCase, tagged

from ..models.crm_sop_prediction import UPLIFT_MIN_LOST, UPLIFT_MIN_WON

ADDON = Path(__file__).resolve().parent.parent


@tagged("post_install", "-at_install")
class TestSopDemoHistory(TransactionCase):
    """The demo's history (models/crm_sop_demo.py): what a newcomer's first
    look shows, and that only a database installed with demo data has it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not cls.env.ref("base.module_crm_sales_sop").demo:
            cls.skipTest(cls, "installed without demo data")
        cls.li = cls.env.ref("crm_sales_sop.user_sop_rep_li")
        cls.han = cls.env.ref("crm_sales_sop.user_sop_rep_han")
        cls.zhang = cls.env.ref("crm_sales_sop.user_sop_rep_zhang")
        cls.standard = cls.env.ref("crm_sales_sop.crm_sop_template_default")
        cls.showroom = cls.env.ref("crm_sales_sop.crm_sop_template_showroom")
        cls.demo_teams = cls.env.ref("sales_team.team_sales_department") | cls.env.ref(
            "crm_sales_sop.crm_team_sop_showroom"
        )

    def test_uplift_has_enough_history_for_both_teams(self):
        for xmlid, user in (
            ("crm_sales_sop.crm_lead_sop_wang_wardrobe", self.li),
            ("crm_sales_sop.crm_lead_sop_chen_sofa", self.han),
        ):
            lead = self.env.ref(xmlid).with_user(user)
            uplift = lead.get_sop_uplift()
            self.assertTrue(uplift["enough_history"], xmlid)
            self.assertGreaterEqual(uplift["won"], UPLIFT_MIN_WON)
            self.assertGreaterEqual(uplift["lost"], UPLIFT_MIN_LOST)
            figures = [
                task["probability_if_done"]
                for task in uplift["tasks"]
                if task["probability_if_done"] is not False
            ]
            self.assertTrue(figures, f"{xmlid}: no task with a figure")
            # the SOP works in the demo: doing the next tasks raises the chance
            self.assertTrue(
                any(figure > uplift["probability"] for figure in figures), xmlid
            )

    def test_playbooks_compared(self):
        result = self.env["crm.sop.playbook.report"].compare(
            [self.standard.id, self.showroom.id]
        )
        self.assertEqual(
            [row["id"] for row in result["playbooks"]],
            [self.standard.id, self.showroom.id],
        )
        for row in result["playbooks"]:
            self.assertGreaterEqual(row["won"], UPLIFT_MIN_WON)
            self.assertGreaterEqual(row["deals"] - row["won"], UPLIFT_MIN_LOST)
            self.assertTrue(0 < row["won_rate"] < 100)
            self.assertGreater(row["avg_cycle_days"], 7)
        self.assertIsNot(result["p_value"], False)

    def test_board_has_figures_for_the_demo_reps(self):
        Board = self.env["crm.sop.board"]
        for user in (self.li, self.han, self.zhang):
            for metric in ("won_revenue", "tasks_done"):
                board = Board.with_user(user).get_board(metric, "month")
                self.assertTrue(board["me"], (user.login, metric))
                self.assertGreater(board["me"]["value"], 0, (user.login, metric))
            adherence = Board.with_user(user).get_board("adherence", "quarter")
            self.assertTrue(0 < adherence["me"]["value"] <= 100, user.login)
        teams = Board.with_user(self.li).get_board(
            "won_revenue", "month", group_by="team"
        )
        ranked = {row["id"] for row in teams["rows"] if row["value"]}
        self.assertLessEqual(set(self.demo_teams.ids), ranked)

    def test_history_is_made_of_the_products_records(self):
        """A year of closed deals, each with its stage moves, tasks done and
        scripts sent in the past, in the order they happened."""
        cr = self.env.cr
        self.env.flush_all()
        cr.execute(
            """SELECT count(*),
                      count(*) FILTER (WHERE l.date_closed < now() - interval '300 days'),
                      count(*) FILTER (WHERE NOT l.active AND l.lost_reason_id IS NULL),
                      count(*) FILTER (WHERE l.expected_revenue <= 0 AND l.active),
                      count(*) FILTER (WHERE l.create_date >= l.date_closed)
                 FROM crm_lead l
                WHERE l.type = 'opportunity' AND l.date_closed IS NOT NULL
                  AND l.team_id = ANY(%s) AND l.user_id = ANY(%s)""",
            [self.demo_teams.ids, (self.li | self.han | self.zhang).ids],
        )
        closed, old, lost_no_reason, won_no_revenue, backwards = cr.fetchone()
        self.assertGreaterEqual(closed, 300)
        self.assertGreater(old, 0, "the history spans the year")
        self.assertEqual((lost_no_reason, won_no_revenue, backwards), (0, 0, 0))
        # stage moves, tasks done, scripts sent: within their deal's life
        for query in (
            """SELECT count(*), count(*) FILTER (WHERE m.date < l.create_date
                                                 OR m.date > l.date_closed)
                 FROM crm_sop_stage_move m JOIN crm_lead l ON l.id = m.lead_id
                WHERE l.date_closed IS NOT NULL AND l.team_id = ANY(%s)""",
            """SELECT count(*), count(*) FILTER (WHERE t.date_done < l.create_date
                                                 OR t.date_done > l.date_closed)
                 FROM crm_sop_task t JOIN crm_lead l ON l.id = t.lead_id
                WHERE t.state = 'done' AND l.date_closed IS NOT NULL
                  AND l.team_id = ANY(%s)""",
            """SELECT count(*), count(*) FILTER (WHERE s.date < l.create_date
                                                 OR s.date > l.date_closed
                                                 OR s.delivery_state != 'sent')
                 FROM crm_sop_script_send s JOIN crm_lead l ON l.id = s.lead_id
                WHERE l.date_closed IS NOT NULL AND l.team_id = ANY(%s)""",
        ):
            cr.execute(query, [self.demo_teams.ids])
            rows, outside = cr.fetchone()
            self.assertGreater(rows, 100, query)
            self.assertEqual(outside, 0, query)
        # some tasks set aside with a reason, some open deals stalled
        aside = self.env["crm.sop.task"].search(
            [("state", "=", "na"), ("lead_id.team_id", "in", self.demo_teams.ids)]
        )
        self.assertTrue(aside)
        self.assertTrue(all(aside.mapped("na_reason")))
        self.assertTrue(
            self.env["crm.lead"].search_count(
                [("sop_stalled", "=", True), ("team_id", "in", self.demo_teams.ids)]
            )
        )

    def test_history_only_with_demo_data(self):
        """The history is made only by a file the manifest lists under
        'demo', once (noupdate: not again on an update); nothing in the
        module's data calls it, so a database installed without demo data
        gets none of it."""
        manifest = ast.literal_eval((ADDON / "__manifest__.py").read_text())
        callers = {
            path.relative_to(ADDON).as_posix()
            for path in ADDON.rglob("*.xml")
            if "_sop_demo_history" in path.read_text()
        }
        self.assertEqual(callers, {"demo/crm_sop_demo.xml"})
        self.assertIn("demo/crm_sop_demo.xml", manifest["demo"])
        self.assertNotIn("demo/crm_sop_demo.xml", manifest["data"])
        python_callers = {
            path.name
            for path in ADDON.rglob("*.py")
            if "_sop_demo_history" in path.read_text() and path.parent.name != "tests"
        }
        self.assertEqual(python_callers, {"crm_sop_demo.py"})
        # and it touched the demo teams only: a company of its own (what a
        # database without demo data is) has no closed deal and no history
        company = self.env["res.company"].create({"name": "No demo here"})
        team = self.env["crm.team"].create({"name": "Fresh", "company_id": company.id})
        lead = self.env["crm.lead"].create(
            {
                "name": "First deal",
                "type": "opportunity",
                "team_id": team.id,
                "company_id": company.id,
            }
        )
        uplift = (
            lead.with_company(company)
            .with_context(allowed_company_ids=[company.id])
            .get_sop_uplift()
        )
        self.assertEqual((uplift["won"], uplift["lost"]), (0, 0))
        self.assertFalse(uplift["enough_history"])

import logging

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import file_open
from odoo.tools.safe_eval import safe_eval

from ..models.crm_sop_board import GROUP_BYS, METRICS, PERIODS
from .common import TestSopCommon, sop_migration

_logger = logging.getLogger(__name__)

# a month far from the demo data's dates: the board reads only this test's deals
JUNE = "2031-06-15 10:00:00"
MAY = "2031-05-20 10:00:00"


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopBoard(TestSopCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Board = cls.env["crm.sop.board"]
        cls.group_salesman = cls.env.ref("sales_team.group_sale_salesman")
        cls.company_main.sop_high_value_amount = 1000.0
        cls.rep_1, cls.rep_2, cls.rep_3, cls.rep_4 = cls._sop_reps(
            4, cls.sales_team_1, prefix="board_rep"
        )

    @classmethod
    def _sop_reps(cls, count, team, company=None, prefix="rep"):
        """``count`` salespeople (own documents only) of ``company``, members
        of ``team``, in one batch."""
        company = company or cls.company_main
        users = (
            cls.env["res.users"]
            .with_context(
                no_reset_password=True,
                mail_create_nolog=True,
                mail_create_nosubscribe=True,
                mail_notrack=True,
            )
            .create(
                [
                    {
                        "name": f"{prefix} {index:02d}",
                        "login": f"{prefix}_{index:02d}",
                        "email": f"{prefix}_{index:02d}@example.com",
                        "company_id": company.id,
                        "company_ids": [(6, 0, company.ids)],
                        "groups_id": [(6, 0, cls.group_salesman.ids)],
                        "tz": "Asia/Shanghai",
                    }
                    for index in range(count)
                ]
            )
        )
        cls.env["crm.team.member"].create(
            [{"crm_team_id": team.id, "user_id": user.id} for user in users]
        )
        return users

    @classmethod
    def _sop_won(cls, user, revenue, date_closed=JUNE, team=None, company=None):
        """A deal won on ``date_closed`` (bulk fixtures: created won)."""
        team = team or cls.sales_team_1
        return cls.env["crm.lead"].create(
            {
                "name": f"Won {revenue}",
                "type": "opportunity",
                "user_id": user.id,
                "team_id": team.id,
                "company_id": (company or cls.company_main).id,
                "stage_id": cls.stage_gen_won.id,
                "expected_revenue": revenue,
                "date_closed": date_closed,
            }
        )

    def _at(self, when):
        """Freeze the clock and the transaction's ``now()`` (the engine
        stamps tasks done with it) at ``when``."""
        return self.mock_datetime_and_now(fields.Datetime.from_string(when))

    def _board(self, user, *args, **kwargs):
        return self.Board.with_user(user).get_board(*args, **kwargs)

    def _goal(self, definition_xmlid, user, start="2031-06-01", end="2031-06-30"):
        return self.env["gamification.goal"].create(
            {
                "definition_id": self.env.ref(definition_xmlid).id,
                "user_id": user.id,
                "start_date": start,
                "end_date": end,
                "target_goal": 1,
                "state": "inprogress",
            }
        )

    # ------------------------------------------------------------
    # goal definitions on known data
    # ------------------------------------------------------------

    def test_goal_won_revenue_and_high_value(self):
        Lead = self.env["crm.lead"]
        with self._at("2031-06-03 09:00:00"):
            leads = Lead.create(
                [
                    self._sop_lead_vals(user_id=self.rep_1.id, expected_revenue=1500),
                    self._sop_lead_vals(user_id=self.rep_1.id, expected_revenue=1000),
                    self._sop_lead_vals(user_id=self.rep_1.id, expected_revenue=999),
                    self._sop_lead_vals(user_id=self.rep_1.id, expected_revenue=5000),
                    self._sop_lead_vals(user_id=self.rep_2.id, expected_revenue=2000),
                ]
            )
            leads[:3].action_set_won()
            leads[4].action_set_won()
            # a lost deal counts for nothing
            leads[3].action_set_lost()
        with self._at("2031-05-30 09:00:00"):
            # won in May: outside June's goals
            self._sop_won(self.rep_1, 7000, date_closed="2031-05-30 09:00:00")
        revenue = self._goal(
            "crm_sales_sop.goal_definition_sop_won_revenue", self.rep_1
        ) + self._goal("crm_sales_sop.goal_definition_sop_won_revenue", self.rep_2)
        high = self._goal(
            "crm_sales_sop.goal_definition_sop_high_value_won", self.rep_1
        ) + self._goal("crm_sales_sop.goal_definition_sop_high_value_won", self.rep_2)
        (revenue + high).update_goal()
        self.assertEqual(revenue.mapped("current"), [3499.0, 2000.0])
        # >= 1000 of the deal's company: 1500 and 1000, not 999
        self.assertEqual(high.mapped("current"), [2.0, 1.0])
        self.assertEqual(high.mapped("state"), ["reached", "reached"])
        # the definition's python code, as core would run it, agrees
        for goal in high:
            context = {"object": goal, "env": self.env}
            safe_eval(
                goal.definition_id.compute_code, context, mode="exec", nocopy=True
            )
            self.assertEqual(context["result"], goal.current)
        # the board agrees (June 2031 as seen from Shanghai)
        with self._at(JUNE):
            board = self._board(self.rep_1, "won_revenue", "month")
            self.assertEqual(board["me"]["value"], 3499.0)
            board = self._board(self.rep_1, "high_value_won", "month")
            self.assertEqual(board["me"]["value"], 2.0)
        # the threshold is the company's
        self.company_main.sop_high_value_amount = 2000.0
        high.update_goal()
        self.assertEqual(high.mapped("current"), [0.0, 1.0])

    def test_board_serves_its_labels(self):
        """The board's tabs and filters come with its answer, in the user's
        language, one per metric, period and grouping the server accepts
        (the client holds no copy)."""
        labels = self._board(self.rep_1, "won_revenue", "month")["labels"]
        self.assertEqual([key for key, _label in labels["metrics"]], list(METRICS))
        self.assertEqual([key for key, _label in labels["periods"]], list(PERIODS))
        self.assertEqual([key for key, _label in labels["group_bys"]], list(GROUP_BYS))
        self.assertEqual(labels["metrics"][0], ["won_revenue", "Won revenue"])
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["crm_sales_sop"], ["zh_CN"])
        board = self.Board.with_user(self.rep_1).with_context(lang="zh_CN")
        labels = board.get_board("tasks_done", "week")["labels"]
        self.assertEqual(labels["metrics"][0], ["won_revenue", "赢单金额"])
        self.assertEqual(labels["periods"][0], ["week", "本周"])
        self.assertEqual(labels["group_bys"][0], ["user", "销售人员"])

    def test_goal_code_migration(self):
        """A database from before 18.0.1.3.0 has the board's python goal
        definitions (noupdate) call the method that is gone: the upgrade
        gives them the batch method's code; a definition a manager changed
        is left alone."""
        high = self.env.ref("crm_sales_sop.goal_definition_sop_high_value_won")
        adherence = self.env.ref("crm_sales_sop.goal_definition_sop_adherence")
        old_code = "result = env['crm.sop.board']._sop_goal_value(object)"
        high.compute_code = old_code
        adherence.compute_code = "result = 42"
        migration = sop_migration("18.0.1.3.0", "post-goal_code.py")
        migration.migrate(self.env.cr, "18.0.1.2.0")
        self.assertEqual(high.compute_code, migration.NEW_CODE)
        # the code of a new install
        with file_open("crm_sales_sop/data/crm_sop_board_data.xml") as data:
            self.assertIn(f">{migration.NEW_CODE}<", data.read())
        self.assertEqual(adherence.compute_code, "result = 42")

    def test_goal_tasks_done(self):
        Lead = self.env["crm.lead"]
        with self._at("2031-06-03 09:00:00"):
            lead_1, lead_2 = Lead.create(
                [
                    self._sop_lead_vals(user_id=self.rep_1.id),
                    self._sop_lead_vals(user_id=self.rep_2.id),
                ]
            )
            # rep 1 fills the visit data (done by the system) and ticks a task
            lead_1.with_user(self.rep_1).write(
                {"x_sop_companions": "Her sister", "x_sop_decision_makers": "Husband"}
            )
            self._task(lead_1, self.tt_manual).with_user(
                self.rep_1
            ).action_sop_mark_done()
            # a task set aside is not done
            self._task(lead_2, self.tt_manual).with_user(self.rep_2)._sop_set_aside(
                "No needs meeting"
            )
        with self._at("2031-07-01 09:00:00"):
            # July: outside June
            lead_2.with_user(self.rep_2).write(
                {"x_sop_companions": "Alone", "x_sop_decision_makers": "Herself"}
            )
        self.assertEqual(self._task(lead_1, self.tt_visit).done_user_id, self.rep_1)
        goals = self._goal(
            "crm_sales_sop.goal_definition_sop_tasks_done", self.rep_1
        ) + self._goal("crm_sales_sop.goal_definition_sop_tasks_done", self.rep_2)
        goals.update_goal()
        self.assertEqual(goals.mapped("current"), [2.0, 0.0])
        with self._at(JUNE):
            board = self._board(self.rep_2, "tasks_done", "month")
        rows = {row["id"]: row for row in board["rows"]}
        self.assertEqual(rows[self.rep_1.id]["value"], 2.0)
        # nothing done: not ranked
        self.assertFalse(board["me"])

    def test_goal_adherence(self):
        """rep 1: visit data done before leaving Contact; customer profile and
        welcome script not (3 counted, 1 adhered); budget done before
        winning, call not (2 counted, 1 adhered): 2 / 5 = 40 %.
        rep 2: visit data done after leaving Contact, script set aside:
        0 / 2. rep 3 left Contact in May (1 / 3): not counted in June."""
        Lead = self.env["crm.lead"]
        with self._at("2031-05-10 09:00:00"):
            lead_3 = Lead.create(self._sop_lead_vals(user_id=self.rep_3.id))
            lead_3.write({"x_sop_companions": "Alone", "x_sop_decision_makers": "Him"})
            self.flush_tracking()
        with self._at("2031-05-11 09:00:00"):
            lead_3.stage_id = self.stage_team1_2
            self.flush_tracking()
        with self._at("2031-06-01 09:00:00"):
            lead_1, lead_2 = Lead.create(
                [
                    self._sop_lead_vals(user_id=self.rep_1.id),
                    self._sop_lead_vals(user_id=self.rep_2.id),
                ]
            )
            self._task(lead_2, self.tt_script).with_user(
                self.user_sales_manager
            )._sop_set_aside("Met at the fair")
            self.flush_tracking()
        with self._at("2031-06-02 09:00:00"):
            lead_1.write({"x_sop_companions": "Sister", "x_sop_decision_makers": "Her"})
            self.flush_tracking()
        with self._at("2031-06-03 09:00:00"):
            (lead_1 + lead_2).write({"stage_id": self.stage_team1_2.id})
            self.flush_tracking()
        with self._at("2031-06-04 09:00:00"):
            lead_1.expected_revenue = 1000
            lead_2.write({"x_sop_companions": "Sister", "x_sop_decision_makers": "Her"})
            self.flush_tracking()
        with self._at("2031-06-05 09:00:00"):
            lead_1.action_set_won()
            self.flush_tracking()
        self.assertEqual(self._task(lead_1, self.tt_budget).state, "done")
        self.assertEqual(self._task(lead_2, self.tt_visit).state, "done")
        goals = (
            self._goal("crm_sales_sop.goal_definition_sop_adherence", self.rep_1)
            + self._goal("crm_sales_sop.goal_definition_sop_adherence", self.rep_2)
            + self._goal("crm_sales_sop.goal_definition_sop_adherence", self.rep_3)
        )
        goals.update_goal()
        self.assertEqual(goals.mapped("current"), [40.0, 0.0, 0.0])
        may = self._goal(
            "crm_sales_sop.goal_definition_sop_adherence",
            self.rep_3,
            start="2031-05-01",
            end="2031-05-31",
        )
        may.update_goal()
        # 3 required Contact tasks, the visit data done before the move
        self.assertAlmostEqual(may.current, 100 / 3, places=6)
        with self._at(JUNE):
            board = self._board(self.rep_1, "adherence", "month", group_by="user")
        self.assertEqual(board["me"]["value"], 40.0)
        self.assertEqual(board["me"]["rank"], 1)

    # ------------------------------------------------------------
    # ranking
    # ------------------------------------------------------------

    def test_ranking_ties_and_me_outside_top(self):
        for rep, revenue in (
            (self.rep_1, 300),
            (self.rep_2, 200),
            (self.rep_3, 200),
            (self.rep_4, 100),
        ):
            self._sop_won(rep, revenue)
        # last month: rep 4 was first
        self._sop_won(self.rep_4, 900, date_closed=MAY)
        with self._at(JUNE):
            board = self._board(self.rep_4, "won_revenue", "month", top=3)
        ranks = [(row["id"], row["rank"], row["value"]) for row in board["rows"]]
        self.assertEqual(
            ranks,
            [
                (self.rep_1.id, 1, 300.0),
                (self.rep_2.id, 2, 200.0),
                (self.rep_3.id, 2, 200.0),
            ],
        )
        self.assertEqual(
            board["me"],
            {
                "rank": 4,
                "id": self.rep_4.id,
                "name": self.rep_4.name,
                "value": 100.0,
                "previous_rank": 1,
            },
        )
        self.assertTrue(board["monetary"])
        # nothing won last month: not ranked then
        with self._at(JUNE):
            board = self._board(self.rep_1, "won_revenue", "month", top=3)
        self.assertEqual(
            (board["me"]["rank"], board["me"]["previous_rank"]), (1, False)
        )
        self.assertEqual(
            (board["date_from"], board["date_to"]), ("2031-06-01", "2031-06-30")
        )
        # only who scored is ranked: the salespeople with nothing won yet
        # are no 5th place (and no trophy), a rep with 0 has no rank
        with self._at(JUNE):
            board = self._board(self.rep_4, "won_revenue", "month", top=100)
        self.assertEqual(
            [row["rank"] for row in board["rows"]], [1, 2, 2, 4], board["rows"]
        )
        self.assertTrue(all(row["value"] > 0 for row in board["rows"]))
        with self._at(JUNE):
            nobody = self._board(self.rep_4, "high_value_won", "month", top=100)
        self.assertEqual((nobody["rows"], nobody["me"]), ([], False))

    def test_period_in_user_timezone(self):
        """A deal won on Monday 2031-06-02 01:00 in Shanghai (Sunday 17:00
        UTC) counts in Shanghai's week of June 2nd."""
        self._sop_won(self.rep_1, 500, date_closed="2031-06-01 17:00:00")
        with self._at("2031-06-03 02:00:00"):
            week = self._board(self.rep_1, "won_revenue", "week")
            utc = self.Board.with_user(self.rep_1).with_context(tz="UTC")
            week_utc = utc.get_board("won_revenue", "week")
        self.assertEqual(week["me"]["value"], 500.0)
        self.assertEqual(week["date_from"], "2031-06-02")
        self.assertFalse(week_utc["me"])  # nothing won that week in UTC
        with self._at(JUNE):
            quarter = self._board(self.rep_1, "won_revenue", "quarter")
        self.assertEqual(quarter["me"]["value"], 500.0)
        self.assertEqual(quarter["date_from"], "2031-04-01")

    def test_team_and_branch_per_head(self):
        """A team of 3 beats a team of 12 when it sells more per head; a
        branch of 2 beats its parent company of many."""
        small_team = self.env["crm.team"].create({"name": "Small team"})
        big_team = self.env["crm.team"].create({"name": "Big team"})
        small = self._sop_reps(3, small_team, prefix="small")
        big = self._sop_reps(12, big_team, prefix="big")
        for rep in small:
            self._sop_won(rep, 100, team=small_team)
        for rep in big:
            self._sop_won(rep, 50, team=big_team)
        with self._at(JUNE):
            board = self._board(small[0], "won_revenue", "month", group_by="team")
        rows = {row["id"]: row for row in board["rows"]}
        self.assertEqual(rows[small_team.id]["value"], 100.0)
        self.assertEqual(rows[big_team.id]["value"], 50.0)
        self.assertLess(rows[small_team.id]["rank"], rows[big_team.id]["rank"])
        self.assertEqual(board["me"]["id"], small_team.id)
        # filtered on a team: its salespeople only
        with self._at(JUNE):
            board = self._board(
                small[0], "won_revenue", "month", team_id=small_team.id, top=50
            )
        self.assertEqual({row["id"] for row in board["rows"]}, set(small.ids))

        branch = self.env["res.company"].create(
            {"name": "Shanghai branch", "parent_id": self.company_main.id}
        )
        branch_team = self.env["crm.team"].create(
            {"name": "Branch team", "company_id": branch.id}
        )
        branch_reps = self._sop_reps(2, branch_team, company=branch, prefix="branch")
        for rep in branch_reps:
            self._sop_won(rep, 1000, team=branch_team, company=branch)
        manager = self.user_sales_manager
        manager.company_ids = [(4, branch.id)]
        both = self.Board.with_user(manager).with_context(
            allowed_company_ids=[self.company_main.id, branch.id]
        )
        heads = self.env["res.users"].search_count(
            [
                ("company_id", "=", self.company_main.id),
                ("groups_id", "in", self.group_salesman.id),
                ("share", "=", False),
            ]
        )
        with self._at(JUNE):
            board = both.get_board("won_revenue", "month", group_by="company")
            branch_only = both.get_board(
                "won_revenue", "month", group_by="company", company_id=branch.id
            )
        rows = {row["id"]: row for row in board["rows"]}
        self.assertEqual(rows[branch.id]["value"], 1000.0)
        self.assertEqual(rows[branch.id]["rank"], 1)
        self.assertAlmostEqual(
            rows[self.company_main.id]["value"], (300 + 600) / heads, places=6
        )
        self.assertEqual(board["me"]["id"], self.company_main.id)
        self.assertEqual([row["id"] for row in branch_only["rows"]], [branch.id])
        self.assertEqual(branch_only["me"]["id"], branch.id)

    # ------------------------------------------------------------
    # refresh cron
    # ------------------------------------------------------------

    def test_cron_refreshes_reps_never_online(self):
        challenge = self.env.ref("crm_sales_sop.challenge_sop_honor_roll")
        self.assertEqual(challenge.state, "draft")
        with self._at("2031-06-01 08:00:00"):
            challenge.action_start()
        goal_domain = [
            ("challenge_id", "=", challenge.id),
            ("user_id", "=", self.rep_1.id),
            ("definition_id.sop_board_metric", "=", "won_revenue"),
        ]
        goal = self.env["gamification.goal"].search(goal_domain)
        self.assertEqual(goal.current, 0.0)
        self._sop_won(self.rep_1, 1234, date_closed="2031-06-10 08:00:00")
        self.assertFalse(
            self.env["bus.presence"].search_count([("user_id", "=", self.rep_1.id)])
        )
        with self._at(JUNE):
            # core's cron skips the reps it has not seen online
            challenge._cron_update(commit=False)
            self.assertEqual(goal.current, 0.0)
            self.env.ref(
                "crm_sales_sop.ir_cron_sop_honor_roll_refresh"
            ).method_direct_trigger()
        self.assertEqual(goal.current, 1234.0)
        # a salesperson who joins is given their goals by the next run
        newcomer = self._sop_reps(1, self.sales_team_1, prefix="newcomer")
        self._sop_won(newcomer, 4321, date_closed="2031-06-11 08:00:00")
        with self._at(JUNE):
            self.env["gamification.challenge"]._cron_sop_refresh_honor_roll()
        goals = self.env["gamification.goal"].search(
            [("challenge_id", "=", challenge.id), ("user_id", "=", newcomer.id)]
        )
        self.assertEqual(len(goals), 4)
        self.assertEqual(
            goals.filtered(
                lambda g: g.definition_id.sop_board_metric == "won_revenue"
            ).current,
            4321.0,
        )

    def test_honor_roll_rewards_no_zero(self):
        """Only who scored earns a place and a badge: with one rep who won
        something, the second and third badges go to nobody (core's
        ``reward_failure`` would rank the reps at 0 too)."""
        challenge = self.env.ref("crm_sales_sop.challenge_sop_honor_roll")
        with self._at("2031-06-01 08:00:00"):
            challenge.action_start()
        self._sop_won(self.rep_1, 1234, date_closed="2031-06-10 08:00:00")
        with self._at(JUNE):
            challenge._sop_refresh_goals()
            top = challenge._get_topN_users(3)
        self.assertEqual(top, (self.rep_1, False, False))
        with self._at(JUNE):
            challenge._check_challenge_reward(force=True)
        badges = self.env["gamification.badge.user"].search(
            [("challenge_id", "=", challenge.id)]
        )
        self.assertEqual(badges.user_id, self.rep_1)
        self.assertEqual(
            badges.badge_id, self.env.ref("crm_sales_sop.badge_sop_honor_roll_first")
        )

    def test_cron_leaves_a_draft_challenge_alone(self):
        challenge = self.env.ref("crm_sales_sop.challenge_sop_honor_roll")
        self._sop_won(self.rep_1, 1234)
        with self._at(JUNE):
            self.env["gamification.challenge"]._cron_sop_refresh_honor_roll()
        self.assertEqual(challenge.state, "draft")
        self.assertFalse(
            self.env["gamification.goal"].search_count(
                [("challenge_id", "=", challenge.id)]
            )
        )

    # ------------------------------------------------------------
    # security
    # ------------------------------------------------------------

    def test_rep_sees_only_their_companies(self):
        company_2 = self.env["res.company"].create({"name": "Company Two"})
        team_2 = self.env["crm.team"].create(
            {"name": "Team Two", "company_id": company_2.id}
        )
        (rep_c2,) = self._sop_reps(1, team_2, company=company_2, prefix="c2rep")
        self._sop_won(rep_c2, 99999, team=team_2, company=company_2)
        self._sop_won(self.rep_1, 10)
        with self._at(JUNE):
            for group_by in ("user", "team", "company"):
                board = self._board(
                    self.rep_1, "won_revenue", "month", group_by=group_by, top=100
                )
                ids = {row["id"] for row in board["rows"]}
                values = {row["value"] for row in board["rows"]}
                self.assertNotIn(99999.0, values)
                self.assertNotIn(
                    {"user": rep_c2.id, "team": team_2.id, "company": company_2.id}[
                        group_by
                    ],
                    ids,
                )
            with self.assertRaises(AccessError):
                self._board(self.rep_1, "won_revenue", "month", company_id=company_2.id)
            with self.assertRaises(AccessError):
                self._board(self.rep_1, "won_revenue", "month", team_id=team_2.id)
            with self.assertRaises(AccessError):
                self.Board.with_user(self.rep_1).with_context(
                    allowed_company_ids=[self.company_main.id, company_2.id]
                ).get_board("won_revenue", "month")
            # the rep of company 2 sees company 2's figures, not company 1's
            board = self._board(rep_c2, "won_revenue", "month", top=100)
        self.assertEqual(
            [(row["id"], row["value"]) for row in board["rows"]],
            [(rep_c2.id, 99999.0)],
        )

    def test_board_is_for_salespeople(self):
        portal = self.env["res.users"].create(
            {
                "name": "Portal",
                "login": "board_portal",
                "groups_id": [(6, 0, self.env.ref("base.group_portal").ids)],
            }
        )
        with self.assertRaises(AccessError):
            self._board(portal, "won_revenue", "month")
        with self.assertRaises(ValueError):
            self._board(self.rep_1, "won_revenue; DROP TABLE crm_lead", "month")

    # ------------------------------------------------------------
    # performance
    # ------------------------------------------------------------

    def test_query_count_constant(self):
        """The same queries for 4 reps as for 54, whatever the metric and
        grouping, at most 6 (target 10)."""

        def counts():
            result = {}
            board = self.Board.with_user(self.rep_1)
            combinations = [
                (metric, group_by)
                for metric in (
                    "won_revenue",
                    "high_value_won",
                    "tasks_done",
                    "adherence",
                )
                for group_by in ("user", "team", "company")
            ]
            for metric, group_by in combinations:  # warm the ormcaches up
                self.env.invalidate_all()
                board.get_board(metric, "month", group_by=group_by)
            for metric, group_by in combinations:
                # a new request: an empty record cache, warm ormcaches
                self.env.invalidate_all()
                self.env.flush_all()
                before = self.cr.sql_log_count
                with self.assertQueryCount(6, flush=False):
                    board.get_board(metric, "month", group_by=group_by)
                result[metric, group_by] = self.cr.sql_log_count - before
            return result

        with self._at(JUNE):
            for rep in self.rep_1 + self.rep_2:
                self._sop_won(rep, 100)
            few = counts()
            many = self._sop_reps(50, self.sales_team_1, prefix="perf")
            for rep in many:
                self._sop_won(rep, 100)
            self.assertEqual(counts(), few)
        _logger.info("get_board queries (50 reps): %s", few)

    # ------------------------------------------------------------
    # the rainbow man: once per entry into the top three
    # ------------------------------------------------------------

    def test_celebrated_once_per_entry_into_the_top_three(self):
        """The board celebrates a rep entering the top three once: not on
        the next visits, again after leaving the top three and coming back,
        and per ranking, period and user. get_board remembers nothing."""
        Board = self.Board

        def visit(user, metric="won_revenue", period="month", **kwargs):
            """What the board's client does: read, then tell the server when
            what it shows and what was remembered differ."""
            board = Board.with_user(user).get_board(metric, period, **kwargs)
            me = board["me"]
            in_top = bool(me and me["value"] > 0 and me["rank"] <= 3)
            entered = Board.with_user(user).sop_board_celebrate(
                metric, period, **kwargs
            )
            return board["celebrated"], in_top, entered

        self._sop_won(self.rep_1, 300)
        self._sop_won(self.rep_2, 200)
        self._sop_won(self.rep_3, 100)
        with self._at(JUNE):
            # get_board alone remembers nothing
            Board.with_user(self.rep_3).get_board("won_revenue", "month")
            self.assertFalse(
                Board.with_user(self.rep_3).get_board("won_revenue", "month")[
                    "celebrated"
                ]
            )
            # rep 3 enters the top three: celebrated once
            self.assertEqual(visit(self.rep_3), (False, True, True))
            self.assertEqual(visit(self.rep_3), (True, True, False))
            self.assertEqual(visit(self.rep_3), (True, True, False))
            # another ranking of the same rep is another entry
            self.assertEqual(visit(self.rep_3, period="quarter"), (False, True, True))
            # another user has their own memory
            self.assertEqual(visit(self.rep_1), (False, True, True))
            self.assertEqual(visit(self.rep_3), (True, True, False))
        # rep 4 overtakes rep 3: out of the top three, forgotten
        self._sop_won(self.rep_4, 150)
        other = self._sop_reps(1, self.sales_team_1, prefix="board_other")
        self._sop_won(other, 250)
        with self._at(JUNE):
            self.assertEqual(visit(self.rep_3), (True, False, False))
            self.assertEqual(visit(self.rep_3), (False, False, False))
        # back in the top three: celebrated again, once
        self._sop_won(self.rep_3, 1000)
        with self._at(JUNE):
            self.assertEqual(visit(self.rep_3), (False, True, True))
            self.assertEqual(visit(self.rep_3), (True, True, False))
            # rep 1 (still in the top three) was not celebrated again
            self.assertEqual(visit(self.rep_1), (True, True, False))
        # a new month is a new entry
        with self._at("2031-07-02 10:00:00"):
            self._sop_won(self.rep_3, 10, date_closed="2031-07-02 09:00:00")
            self.assertEqual(visit(self.rep_3), (False, True, True))
        # the memory is the user's own settings, not another's
        settings = self.env["res.users.settings"].search(
            [("user_id", "in", (self.rep_1 + self.rep_3).ids)]
        )
        self.assertEqual(settings.user_id, self.rep_1 + self.rep_3)

    def test_celebrate_checks_like_the_board(self):
        """The write path refuses what the board refuses."""
        with self.assertRaises(ValueError):
            self.Board.with_user(self.rep_1).sop_board_celebrate(
                "won_revenue; DROP TABLE crm_lead", "month"
            )
        outsider = self.env["res.users"].create(
            {"name": "Outsider", "login": "board_outsider", "groups_id": []}
        )
        with self.assertRaises(AccessError):
            self.Board.with_user(outsider).sop_board_celebrate("won_revenue", "month")

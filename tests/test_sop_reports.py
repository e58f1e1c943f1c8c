from contextlib import contextmanager
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, tagged

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import TestSopCommon

T0 = "2031-03-01 09:00:00"  # every deal created; visit data and budget of some
T1 = "2031-03-02 09:00:00"  # W1, W2, L2, L3, O2 move New -> Proposition
T2 = "2031-03-03 09:00:00"  # L2's budget; L3 back to New
T3 = "2031-03-04 09:00:00"  # W1, W2, W3 won; L1, L2, L3 lost


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopReportsCommon(TestSopCommon):
    """A known history of the test playbook (pipeline New < Proposition <
    Won; SOP stage Contact in New: customer profile, visit data, welcome
    script; Pitch in Proposition: call, budget, needs agreed (not required)).

    ===  ====  =======================================  =====  =========  ======
    deal rep   moves                                     visit  budget     closed
    ===  ====  =======================================  =====  =========  ======
    W1   A     New -T1-> Proposition -T3-> Won           T0     T0         won
    W2   A     New -T1-> Proposition -T3-> Won           -      -          won
    W3   B     New -T3-> Won                             T0     -          won
    L1   B     New                                       T0     -          lost
    L2   A     New -T1-> Proposition                     -      T2         lost
    L3   B     New -T1-> Proposition -T2-> New           -      -          lost
    O2   A     New -T1-> Proposition                     T0     -          open
    ===  ====  =======================================  =====  =========  ======

    W1's "needs agreed" is set aside. Rep A is user_sales_salesman, rep B
    user_sales_leads.
    """

    @classmethod
    @contextmanager
    def _at(cls, when):
        moment = fields.Datetime.from_string(when)
        with freeze_time(moment), patch.object(cls.env.cr, "now", lambda: moment):
            yield
            # tracking messages are written at precommit: at this moment
            cls.env.flush_all()
            cls.env.cr.precommit.run()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rep_a = cls.user_sales_salesman
        cls.rep_b = cls.user_sales_leads
        visit = {"x_sop_companions": "Spouse", "x_sop_decision_makers": "Both"}
        Lead = cls.env["crm.lead"]
        with cls._at(T0):
            cls.w1, cls.w2, cls.w3, cls.l1, cls.l2, cls.l3, cls.o2 = Lead.create(
                [
                    cls._sop_lead_vals(
                        name="W1", user_id=cls.rep_a.id, expected_revenue=5000, **visit
                    ),
                    cls._sop_lead_vals(name="W2", user_id=cls.rep_a.id),
                    cls._sop_lead_vals(name="W3", user_id=cls.rep_b.id, **visit),
                    cls._sop_lead_vals(name="L1", user_id=cls.rep_b.id, **visit),
                    cls._sop_lead_vals(name="L2", user_id=cls.rep_a.id),
                    cls._sop_lead_vals(name="L3", user_id=cls.rep_b.id),
                    cls._sop_lead_vals(name="O2", user_id=cls.rep_a.id, **visit),
                ]
            )
            cls._task(cls, cls.w1, cls.tt_manual).with_user(
                cls.user_sales_manager
            )._sop_set_aside("No meeting")
        with cls._at(T1):
            (cls.w1 + cls.w2 + cls.l2 + cls.l3 + cls.o2).write(
                {"stage_id": cls.stage_team1_2.id}
            )
        with cls._at(T2):
            cls.l2.expected_revenue = 800
            cls.l3.stage_id = cls.stage_team1_1
        with cls._at(T3):
            (cls.w1 + cls.w2 + cls.w3).write({"stage_id": cls.stage_team1_won.id})
            (cls.l1 + cls.l2 + cls.l3).action_set_lost()
        cls.closed = cls.w1 + cls.w2 + cls.w3 + cls.l1 + cls.l2 + cls.l3
        cls.manager = cls.user_sales_manager
        # playbook B, of team B: 9 won of 10, won in 10 days, the lost one
        # lost on March 2nd
        cls.team_b = cls.env["crm.team"].create({"name": "SOP Team B"})
        cls.playbook_b = cls.env["crm.sop.template"].create(
            {"name": "Playbook B", "team_ids": [(6, 0, cls.team_b.ids)]}
        )
        with cls._at(T0):
            cls.b_deals = Lead.create(
                [
                    {
                        "name": f"B {index}",
                        "type": "opportunity",
                        "team_id": cls.team_b.id,
                        "user_id": cls.rep_a.id,
                        "stage_id": cls.stage_gen_1.id,
                    }
                    for index in range(10)
                ]
            )
        with cls._at("2031-03-02 12:00:00"):
            cls.b_deals[9].action_set_lost()
        with cls._at("2031-03-11 09:00:00"):
            cls.b_deals[:9].write({"stage_id": cls.stage_gen_won.id})

    def _group(self, model, groupby, fields_, domain=(), user=None):
        """The pivot's read: {group key: row} of ``read_group`` as ``user``
        (the sales manager by default)."""
        rows = (
            self.env[model]
            .with_user(user or self.manager)
            .read_group(list(domain), fields_, groupby, lazy=False)
        )
        key = groupby[0] if groupby else None
        if not key:
            return rows[0]
        return {
            (row[key][0] if isinstance(row[key], tuple) else row[key]): row
            for row in rows
        }


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopTaskReport(TestSopReportsCommon):
    MEASURES = [
        "closed_count",
        "done_count",
        "not_done_count",
        "won_done_count",
        "won_not_done_count",
        "done_rate:avg",
        "won_rate_done:avg",
        "won_rate_not_done:avg",
        "lift:avg",
    ]

    def test_fixture(self):
        self.assertEqual(self._task(self.w1, self.tt_budget).state, "done")
        self.assertEqual(self._task(self.l2, self.tt_budget).state, "done")
        self.assertEqual(self._task(self.w2, self.tt_budget).state, "todo")
        self.assertEqual(
            set(self.closed.with_context(active_test=False).mapped("company_id")),
            {self.company_main},
        )

    def test_done_rate_won_rates_lift(self):
        rows = self._group(
            "crm.sop.task.report",
            ["task_template_id"],
            self.MEASURES,
            [("template_id", "=", self.playbook.id)],
        )
        # visit data: all 6 closed deals reached Contact; done on W1, W3, L1
        visit = rows[self.tt_visit.id]
        self.assertEqual(
            (
                visit["closed_count"],
                visit["done_count"],
                visit["won_done_count"],
                visit["won_not_done_count"],
            ),
            (6, 3, 2, 1),
        )
        self.assertAlmostEqual(visit["done_rate"], 50.0)
        self.assertAlmostEqual(visit["won_rate_done"], 200 / 3)  # W1 W3 of W1 W3 L1
        self.assertAlmostEqual(visit["won_rate_not_done"], 100 / 3)  # W2 of W2 L2 L3
        self.assertAlmostEqual(visit["lift"], 100 / 3)
        # budget (Pitch): only the deals that reached Proposition: the won
        # ones, L2 (lost there) and L3 (moved back to New, lost there: it was
        # in Proposition); not L1, lost in New
        budget = rows[self.tt_budget.id]
        self.assertEqual((budget["closed_count"], budget["done_count"]), (5, 2))
        self.assertAlmostEqual(budget["done_rate"], 40.0)
        self.assertAlmostEqual(budget["won_rate_done"], 50.0)  # W1 of W1 L2
        self.assertAlmostEqual(budget["won_rate_not_done"], 200 / 3)  # W2 W3 of + L3
        self.assertAlmostEqual(budget["lift"], 50.0 - 200 / 3)
        Report = self.env["crm.sop.task.report"].with_user(self.manager)
        self.assertFalse(
            Report.search_count(
                [
                    ("lead_id", "=", self.l1.id),
                    ("task_template_id", "=", self.tt_budget.id),
                    ("reached", "=", True),
                ]
            )
        )
        # set aside: not applicable, not counted (W1)
        self.assertEqual(rows[self.tt_manual.id]["closed_count"], 4)
        # the open deal is in no closed figure
        self.assertFalse(
            Report.search_count([("lead_id", "=", self.o2.id), ("reached", "=", True)])
        )

    def test_rates_hold_under_any_grouping(self):
        """A group's rate is its counts' ratio, however the pivot groups."""
        total = self._group(
            "crm.sop.task.report",
            [],
            self.MEASURES,
            [("template_id", "=", self.playbook.id)],
        )
        self.assertAlmostEqual(
            total["done_rate"], 100 * total["done_count"] / total["closed_count"]
        )
        self.assertAlmostEqual(
            total["won_rate_done"], 100 * total["won_done_count"] / total["done_count"]
        )
        self.assertAlmostEqual(
            total["lift"],
            100 * total["won_done_count"] / total["done_count"]
            - 100 * total["won_not_done_count"] / total["not_done_count"],
        )
        # visit data by salesperson: A did it on W1 of W1 W2 L2, B on W3 L1
        # of W3 L1 L3
        by_user = self._group(
            "crm.sop.task.report",
            ["user_id"],
            self.MEASURES,
            [
                ("template_id", "=", self.playbook.id),
                ("task_template_id", "=", self.tt_visit.id),
            ],
        )
        self.assertAlmostEqual(by_user[self.rep_a.id]["done_rate"], 100 / 3)
        self.assertAlmostEqual(by_user[self.rep_b.id]["done_rate"], 200 / 3)
        # filtered by period of closing: nothing closed in April
        april = self._group(
            "crm.sop.task.report",
            [],
            ["closed_count"],
            [
                ("template_id", "=", self.playbook.id),
                ("date_closed", ">=", "2031-04-01"),
            ],
        )
        self.assertFalse(april["closed_count"])

    def test_adherence_per_rep_and_team_on_board_and_report(self):
        """Rep A: W1 2/5 (visit before T1, budget before T3), W2 0/5, L2 0/3
        (Contact left, Pitch never), O2 1/3 (open, left Contact with its
        visit data): 3/16. Rep B: W3 1/5, L1 nothing left, L3 0/3: 1/8."""
        domain = [("template_id", "=", self.playbook.id)]
        measures = ["adherence:avg", "adhered_count", "adherence_count"]
        by_user = self._group("crm.sop.task.report", ["user_id"], measures, domain)
        rep_a, rep_b = by_user[self.rep_a.id], by_user[self.rep_b.id]
        self.assertEqual((rep_a["adhered_count"], rep_a["adherence_count"]), (3, 16))
        self.assertAlmostEqual(rep_a["adherence"], 18.75)
        self.assertEqual((rep_b["adhered_count"], rep_b["adherence_count"]), (1, 8))
        self.assertAlmostEqual(rep_b["adherence"], 12.5)
        team = self._group("crm.sop.task.report", ["team_id"], measures, domain)
        self.assertAlmostEqual(team[self.sales_team_1.id]["adherence"], 100 * 4 / 24)
        # the achievement board counts the same tasks (stage left in March)
        board = self.env["crm.sop.board"]._sop_aggregate(
            "adherence",
            "user",
            fields.Datetime.from_string("2031-03-01 00:00:00"),
            fields.Datetime.from_string("2031-04-01 00:00:00"),
            user_ids=(self.rep_a + self.rep_b).ids,
        )
        self.assertEqual(board[self.rep_a.id][0], (3, 16))
        self.assertEqual(board[self.rep_b.id][0], (1, 8))

    def _adherence(self):
        """{rep: (adhered, counted)} of March as the task analysis (pivot by
        salesperson) and as the achievement board count them."""
        domain = [("template_id", "=", self.playbook.id)]
        by_user = self._group(
            "crm.sop.task.report",
            ["user_id"],
            ["adhered_count", "adherence_count"],
            domain,
        )
        board = self.env["crm.sop.board"]._sop_aggregate(
            "adherence",
            "user",
            fields.Datetime.from_string("2031-03-01 00:00:00"),
            fields.Datetime.from_string("2031-04-01 00:00:00"),
            user_ids=(self.rep_a + self.rep_b).ids,
        )
        return {
            rep: (
                (by_user[rep.id]["adhered_count"], by_user[rep.id]["adherence_count"]),
                board[rep.id][0],
            )
            for rep in self.rep_a + self.rep_b
        }

    def test_forged_tracking_changes_no_adherence(self):
        """Rep B posts stage_id tracking values, back-dated, on rep A's open
        deal O2 (into Won, before its Pitch tasks) and on their own lost L1
        (into Proposition, after its visit data): neither the board nor the
        task analysis moves (rep A 3/16, rep B 1/8, as before)."""
        expected = {self.rep_a: ((3, 16), (3, 16)), self.rep_b: ((1, 8), (1, 8))}
        self.assertEqual(self._adherence(), expected)
        field = self.env["ir.model.fields"]._get("crm.lead", "stage_id")
        forged = self.env["mail.message"]
        for lead, old, new, when in (
            (self.o2, self.stage_team1_2, self.stage_team1_won, T1),
            (self.l1, self.stage_team1_1, self.stage_team1_2, T1),
        ):
            forged |= lead.with_user(self.rep_b).message_post(
                body="Stage changed",
                date=when,
                tracking_value_ids=[
                    (
                        0,
                        0,
                        {
                            "field_id": field.id,
                            "old_value_integer": old.id,
                            "new_value_integer": new.id,
                        },
                    )
                ],
            )
        self.env.flush_all()
        # the forgery is in the chatter, as the tracking of a real move
        self.assertEqual(len(forged.sudo().tracking_value_ids), 2)
        self.assertEqual(self._adherence(), expected)

    def test_move_without_tracking_is_counted(self):
        """A deal of rep A created with its visit data at T0 and moved to
        Proposition at T1, both with tracking_disable: its 3 required
        Contact tasks are counted, the visit data adhered: rep A 4/19 on the
        board and in the report."""
        Lead = self.env["crm.lead"].with_context(tracking_disable=True)
        with self._at(T0):
            silent = Lead.create(
                self._sop_lead_vals(
                    name="Silent",
                    user_id=self.rep_a.id,
                    x_sop_companions="Spouse",
                    x_sop_decision_makers="Both",
                )
            )
        with self._at(T1):
            silent.write({"stage_id": self.stage_team1_2.id})
        self.assertFalse(
            self.env["mail.tracking.value"].search_count(
                [("mail_message_id.res_id", "=", silent.id)]
            )
        )
        self.assertEqual(
            self._adherence(),
            {self.rep_a: ((4, 19), (4, 19)), self.rep_b: ((1, 8), (1, 8))},
        )

    def test_managers_of_their_companies_only(self):
        domain = [("template_id", "=", self.playbook.id)]
        self.assertTrue(
            self.env["crm.sop.task.report"].with_user(self.manager).search_count(domain)
        )
        self._activate_multi_company()
        manager_c2 = mail_new_test_user(
            self.env,
            login="sop_report_manager_c2",
            company_id=self.company_2.id,
            company_ids=[(6, 0, self.company_2.ids)],
            groups="sales_team.group_sale_manager",
        )
        Report = self.env["crm.sop.task.report"].with_user(manager_c2)
        self.assertFalse(Report.search_count(domain))
        self.assertFalse(
            self._group(
                "crm.sop.task.report", [], ["closed_count"], domain, manager_c2
            )["closed_count"]
        )
        with self.assertRaises(AccessError):
            self.env["crm.sop.task.report"].with_user(self.rep_a).read_group(
                domain, ["done_rate:avg"], ["task_template_id"]
            )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopPlaybookReport(TestSopReportsCommon):
    """Playbook A (the test playbook): 3 won of 6, won in 3 days; playbook B:
    9 won of 10, won in 10 days. By hand, z = 1.96: A's Wilson interval is
    (0.5 + z²/12 -+ z sqrt(0.25/6 + z²/144)) / (1 + z²/6) = 18.76 % to
    81.24 %; B's (0.9 + z²/20 -+ z sqrt(0.09/10 + z²/400)) / (1 + z²/10) =
    59.58 % to 98.21 %. They overlap; pooled 12/16, standard error
    sqrt(0.75 x 0.25 x (1/6 + 1/10)) = 0.2236, z = 0.4 / 0.2236 = 1.789,
    two-sided p = 0.0736: not significant at 5 %."""

    def test_fixture(self):
        self.assertEqual(set(self.b_deals.mapped("sop_template_id")), {self.playbook_b})
        self.assertEqual(self.w1.sop_template_id, self.playbook)

    def test_pivot_per_playbook(self):
        rows = self._group(
            "crm.sop.playbook.report",
            ["template_id"],
            [
                "deal_count",
                "won_count",
                "won_rate:avg",
                "ci_low:avg",
                "ci_high:avg",
                "cycle_days:avg",
            ],
            [("template_id", "in", (self.playbook + self.playbook_b).ids)],
        )
        a, b = rows[self.playbook.id], rows[self.playbook_b.id]
        self.assertEqual((a["deal_count"], a["won_count"]), (6, 3))
        self.assertAlmostEqual(a["won_rate"], 50.0)
        self.assertAlmostEqual(a["ci_low"], 18.7616, places=3)
        self.assertAlmostEqual(a["ci_high"], 81.2384, places=3)
        self.assertAlmostEqual(a["cycle_days"], 3.0)
        self.assertEqual((b["deal_count"], b["won_count"]), (10, 9))
        self.assertAlmostEqual(b["won_rate"], 90.0)
        self.assertAlmostEqual(b["ci_low"], 59.5850, places=3)
        self.assertAlmostEqual(b["ci_high"], 98.2124, places=3)
        self.assertAlmostEqual(b["cycle_days"], 10.0)
        # per salesperson: rep B closed W3 (won), L1, L3 (lost) of playbook A
        by_user = self._group(
            "crm.sop.playbook.report",
            ["user_id"],
            ["deal_count", "won_rate:avg"],
            [("template_id", "=", self.playbook.id)],
        )
        self.assertEqual(by_user[self.rep_b.id]["deal_count"], 3)
        self.assertAlmostEqual(by_user[self.rep_b.id]["won_rate"], 100 / 3)

    def test_compare(self):
        Report = self.env["crm.sop.playbook.report"].with_user(self.manager)
        result = Report.compare([self.playbook.id, self.playbook_b.id])
        a, b = result["playbooks"]
        self.assertEqual(
            (a["id"], a["name"], a["deals"], a["won"]),
            (self.playbook.id, "Test Playbook", 6, 3),
        )
        self.assertAlmostEqual(a["won_rate"], 50.0)
        self.assertAlmostEqual(a["ci_low"], 18.7616, places=3)
        self.assertAlmostEqual(a["ci_high"], 81.2384, places=3)
        self.assertAlmostEqual(a["avg_cycle_days"], 3.0)
        self.assertEqual((b["deals"], b["won"]), (10, 9))
        self.assertAlmostEqual(b["ci_low"], 59.5850, places=3)
        self.assertAlmostEqual(b["ci_high"], 98.2124, places=3)
        self.assertAlmostEqual(b["avg_cycle_days"], 10.0)
        self.assertTrue(result["overlap"])
        self.assertAlmostEqual(result["p_value"], 0.07364, places=4)
        self.assertFalse(result["significant"])
        # closed by March 3rd: B's lost deal only, nothing of A
        early = Report.compare(
            [self.playbook.id, self.playbook_b.id], date_to="2031-03-03"
        )
        a, b = early["playbooks"]
        self.assertEqual((a["deals"], b["deals"], b["won"]), (0, 1, 0))
        self.assertFalse(a["ci_low"])
        self.assertFalse(early["p_value"])
        # from March 4th, team 1: A's 6, none of B
        team = Report.compare(
            [self.playbook.id, self.playbook_b.id],
            date_from="2031-03-04",
            team_id=self.sales_team_1.id,
        )
        self.assertEqual([row["deals"] for row in team["playbooks"]], [6, 0])

    def test_compare_significant(self):
        """40 more won deals of B, 30 more lost of A: 3/36 against 49/50."""
        Lead = self.env["crm.lead"]
        won = Lead.create(
            [
                {
                    "name": f"B more {index}",
                    "type": "opportunity",
                    "team_id": self.team_b.id,
                    "stage_id": self.stage_gen_won.id,
                }
                for index in range(40)
            ]
        )
        lost = Lead.create([self._sop_lead_vals(name=f"A more {i}") for i in range(30)])
        lost.action_set_lost()
        self.assertEqual(len(won), 40)
        result = (
            self.env["crm.sop.playbook.report"]
            .with_user(self.manager)
            .compare([self.playbook_b.id, self.playbook.id])
        )
        self.assertEqual(
            [(row["won"], row["deals"]) for row in result["playbooks"]],
            [(49, 50), (3, 36)],
        )
        self.assertFalse(result["overlap"])
        self.assertLess(result["p_value"], 1e-10)
        self.assertTrue(result["significant"])

    def test_compare_queries_do_not_grow_with_deals(self):
        Report = self.env["crm.sop.playbook.report"].with_user(self.manager)
        ids = [self.playbook.id, self.playbook_b.id]
        Report.compare(ids)
        # one deal (B's lost one)
        self.env.invalidate_all()
        with self.assertQueryCount(2):
            one = Report.compare(ids[1:], date_to="2031-03-02")
        self.assertEqual(one["playbooks"][0]["deals"], 1)
        # 16 deals of two playbooks
        self.env.invalidate_all()
        with self.assertQueryCount(2):
            many = Report.compare(ids)
        self.assertEqual(sum(row["deals"] for row in many["playbooks"]), 16)

    def test_access(self):
        with self.assertRaises(AccessError):
            self.env["crm.sop.playbook.report"].with_user(self.rep_a).compare(
                [self.playbook.id]
            )
        with self.assertRaises(AccessError):
            self.env["crm.sop.playbook.report"].with_user(self.rep_a).read_group(
                [], ["deal_count"], ["template_id"]
            )
        self._activate_multi_company()
        manager_c2 = mail_new_test_user(
            self.env,
            login="sop_playbook_manager_c2",
            company_id=self.company_2.id,
            company_ids=[(6, 0, self.company_2.ids)],
            groups="sales_team.group_sale_manager",
        )
        result = (
            self.env["crm.sop.playbook.report"]
            .with_user(manager_c2)
            .compare([self.playbook.id, self.playbook_b.id])
        )
        self.assertEqual([row["deals"] for row in result["playbooks"]], [0, 0])
        self.assertFalse(
            self.env["crm.sop.playbook.report"]
            .with_user(manager_c2)
            .search_count([("template_id", "=", self.playbook.id)])
        )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopCoachingQueue(TestSopCommon):
    """The history of sales_team_1 as the uplift test builds it: "Visit
    data" done on 30 of 40 won deals and 10 of 40 lost ones, every other
    task never done (odds ratio 1: no gain). Odds ratio of the visit data:
    (30.5 x 30.5) / (10.5 x 10.5) = 8.4376.

    ====  ========  ======  ======  ============================  ======
    deal  revenue   chance  visit   chance if visit done          score
    ====  ========  ======  ======  ============================  ======
    D1    10,000    20 %    open    0.25 x 8.4376 -> 67.8 %       4,780
    D2    50,000    80 %    open    4 x 8.4376 -> 97.1 %          8,550
    D3    100,000   50 %    done    no task gains: 50 %           0
    D4    2,000     10 %    open    0.1111 x 8.4376 -> 48.4 %     768
    ====  ========  ======  ======  ============================  ======
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.history_won = cls._sop_close_history(40, True, 30)
        cls.history_lost = cls._sop_close_history(40, False, 10)
        visit = {"x_sop_companions": "Spouse", "x_sop_decision_makers": "Both"}
        cls.d1, cls.d2, cls.d3, cls.d4 = cls.env["crm.lead"].create(
            [
                cls._sop_lead_vals(name="D1", expected_revenue=10000, probability=20),
                cls._sop_lead_vals(
                    name="D2",
                    expected_revenue=50000,
                    probability=80,
                    user_id=cls.user_sales_leads.id,
                ),
                cls._sop_lead_vals(
                    name="D3", expected_revenue=100000, probability=50, **visit
                ),
                cls._sop_lead_vals(name="D4", expected_revenue=2000, probability=10),
            ]
        )
        cls.deals = cls.d1 + cls.d2 + cls.d3 + cls.d4

    def _queue(self, **kwargs):
        return (
            self.env["crm.sop.coaching"]
            .with_user(self.user_sales_manager)
            .get_queue(self.sales_team_1.id, **kwargs)
        )

    def _mine(self, queue):
        return [row for row in queue["rows"] if row["lead_id"] in self.deals.ids]

    def test_queue_ranked_by_expected_gain(self):
        queue = self._queue()
        self.assertTrue(queue["enough_history"])
        self.assertEqual((queue["won"], queue["lost"]), (40, 40))
        rows = self._mine(queue)
        self.assertEqual(
            [row["lead_id"] for row in rows],
            [self.d2.id, self.d1.id, self.d4.id, self.d3.id],
        )
        d2, d1, d4, d3 = rows
        self.assertEqual((d1["probability_if_done"], d1["gain"]), (67.8, 47.8))
        self.assertAlmostEqual(d1["score"], 4780.0)
        self.assertEqual((d2["probability_if_done"], d2["gain"]), (97.1, 17.1))
        self.assertAlmostEqual(d2["score"], 8550.0)
        self.assertEqual((d4["probability_if_done"], d4["gain"]), (48.4, 38.4))
        self.assertAlmostEqual(d4["score"], 768.0)
        self.assertEqual((d3["gain"], d3["score"]), (0.0, 0.0))
        # the task to push, and the rep
        self.assertEqual(d1["task_id"], self._task(self.d1, self.tt_visit).id)
        self.assertEqual(d1["task_name"], "Visit data")
        self.assertEqual(d2["user_id"], self.user_sales_leads.id)
        self.assertEqual(d2["user_name"], self.user_sales_leads.name)
        # the uplift panel says the same for the same task
        uplift = self.d1.with_user(self.user_sales_salesman).get_sop_uplift()
        visit = next(row for row in uplift["tasks"] if row["task_id"] == d1["task_id"])
        self.assertEqual(visit["probability_if_done"], d1["probability_if_done"])
        # closed deals are not in the queue
        ids = {row["lead_id"] for row in queue["rows"]}
        self.assertFalse(ids & set(self.history_won.ids))

    def test_below_the_history_floor(self):
        self.history_lost[:1].toggle_active()  # reopened: 39 lost
        queue = self._queue()
        self.assertFalse(queue["enough_history"])
        self.assertEqual((queue["won"], queue["lost"]), (40, 39))
        rows = self._mine(queue)
        # by expected revenue, no gain; the task to push is the next step
        self.assertEqual(
            [row["lead_id"] for row in rows],
            [self.d3.id, self.d2.id, self.d1.id, self.d4.id],
        )
        self.assertFalse(any(row["gain"] or row["score"] for row in rows))
        self.assertEqual(rows[2]["task_id"], self.d1.sop_next_task_id.id)

    def _settle(self):
        """Write what is pending (notifications run at precommit), warm the
        caches up, forget the records: only the queue's own queries count.
        Warmed twice: the second time from records forgotten, as the count
        reads, so that the access rules of what it then fetches (the
        company) are computed already, whichever tests ran before."""
        self.env.flush_all()
        self.env.cr.precommit.run()
        for _warm in range(2):
            self._queue()
            self.env.invalidate_all()

    def test_queue_queries_do_not_grow_with_deals(self):
        # the team, its history, its open deals and their tasks, the history
        # of their task templates, the currency
        self._settle()
        with self.assertQueryCount(5):
            few = self._queue()
        self.env["crm.lead"].create(
            [
                self._sop_lead_vals(name=f"More {index}", expected_revenue=index)
                for index in range(30)
            ]
        )
        self._settle()
        with self.assertQueryCount(5):
            many = self._queue(limit=500)
        self.assertEqual(many["count"], few["count"] + 30)

    def test_access(self):
        with self.assertRaises(AccessError):
            self.env["crm.sop.coaching"].with_user(self.user_sales_salesman).get_queue(
                self.sales_team_1.id
            )
        self._activate_multi_company()
        with self.assertRaises(AccessError):
            self.env["crm.sop.coaching"].with_user(self.user_sales_manager).get_queue(
                self.team_company2.id
            )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopScriptReport(TestSopReportsCommon):
    """The welcome script sent to W1 (T0, in New; W1 then moved on), twice
    to W3 (T0; won at T3), to L1 (T0; never moved) and to O2 (T2, in
    Proposition; no move after). Sends 5, deals 4, advanced 2 of 4; won
    rate when sent: W1, W3 of W1, W3, L1 = 66.7 %; when not sent: W2 of W2,
    L2, L3 (team 1's other closed deals) = 33.3 %; lift 33.3 points."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Send = cls.env["crm.sop.script.send"]
        rows = [
            (cls.w1, T0, cls.stage_team1_1),
            (cls.w3, T0, cls.stage_team1_1),
            (cls.w3, T0, cls.stage_team1_1),
            (cls.l1, T0, cls.stage_team1_1),
            (cls.o2, T2, cls.stage_team1_2),
        ]
        Send.create(
            [
                {
                    "lead_id": lead.id,
                    "mail_template_id": cls.mail_template.id,
                    "user_id": lead.user_id.id,
                    "channel": "copy",
                    "crm_stage_id": stage.id,
                    "sop_stage_id": cls.sop_stage_contact.id,
                    "date": date,
                    "company_id": lead.company_id.id,
                }
                for lead, date, stage in rows
            ]
        )

    def test_scripts_precede_advances_and_wins(self):
        rows = self._group(
            "crm.sop.script.report",
            ["mail_template_id"],
            [
                "send_count",
                "deal_count",
                "advanced_count",
                "advanced_rate:avg",
                "closed_got_count",
                "closed_not_got_count",
                "won_rate_got:avg",
                "won_rate_not_got:avg",
                "lift:avg",
            ],
        )
        script = rows[self.mail_template.id]
        self.assertEqual(
            (
                script["send_count"],
                script["deal_count"],
                script["advanced_count"],
                script["closed_got_count"],
                script["closed_not_got_count"],
            ),
            (5, 4, 2, 3, 3),
        )
        self.assertAlmostEqual(script["advanced_rate"], 50.0)
        self.assertAlmostEqual(script["won_rate_got"], 200 / 3)
        self.assertAlmostEqual(script["won_rate_not_got"], 100 / 3)
        self.assertAlmostEqual(script["lift"], 100 / 3)
        Report = self.env["crm.sop.script.report"].with_user(self.manager)
        advanced = Report.search(
            [
                ("advanced_count", "=", 1),
                ("mail_template_id", "=", self.mail_template.id),
            ]
        )
        self.assertEqual(advanced.lead_id, self.w1 + self.w3)
        # team B's deals never got it: not compared with
        self.assertFalse(Report.search_count([("team_id", "=", self.team_b.id)]))

    def test_undelivered_scripts_are_not_sends(self):
        """A send the mail server refused is no send: the deal did not get
        the script."""
        sends = self.env["crm.sop.script.send"].search(
            [("mail_template_id", "=", self.mail_template.id)]
        )
        one_deal = sends.filtered(lambda s: s.lead_id == sends[0].lead_id)
        # as the mail server's answer is recorded (_sop_delivery_sync)
        one_deal.sudo().write({"delivery_state": "failed"})
        rows = self._group(
            "crm.sop.script.report", ["mail_template_id"], ["send_count", "deal_count"]
        )
        script = rows[self.mail_template.id]
        self.assertEqual(
            (script["send_count"], script["deal_count"]), (5 - len(one_deal), 3)
        )

    def test_access(self):
        with self.assertRaises(AccessError):
            self.env["crm.sop.script.report"].with_user(self.rep_a).search_count([])


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopReportDepends(TransactionCase):
    """Every SQL view of the addon (``_auto = False``) declares in
    ``_depends`` each table and column its SQL reads, as core's report models
    do: the ORM flushes those fields before reading the view. PostgreSQL
    records what a view reads (pg_depend, per column): the test reads that
    rather than parsing the SQL."""

    def _sql_views(self):
        return [
            model
            for name, model in self.env.registry.items()
            if not model._auto
            and not model._abstract
            and model._module == "crm_sales_sop"
        ]

    def _view_reads(self, table):
        """{table: {column}} read by the view ``table``."""
        self.env.cr.execute(
            """SELECT DISTINCT c.relname, a.attname
                 FROM pg_rewrite r
                 JOIN pg_depend d ON d.objid = r.oid
                                 AND d.classid = 'pg_rewrite'::regclass
                                 AND d.refclassid = 'pg_class'::regclass
                 JOIN pg_class c ON c.oid = d.refobjid
                 JOIN pg_attribute a ON a.attrelid = c.oid
                                    AND a.attnum = d.refobjsubid
                WHERE r.ev_class = %s::regclass
                  AND c.oid <> r.ev_class""",
            [table],
        )
        reads = {}
        for relname, column in self.env.cr.fetchall():
            reads.setdefault(relname, set()).add(column)
        return reads

    def test_sql_views_declare_depends(self):
        views = self._sql_views()
        self.assertTrue(views, "the addon has SQL views")
        tables = {
            model._table: model
            for model in self.env.registry.values()
            if model._auto and not model._abstract
        }
        for view in views:
            reads = self._view_reads(view._table)
            self.assertTrue(reads, f"{view._name} reads tables")
            for table, columns in reads.items():
                model = tables.get(table)
                self.assertTrue(model, f"{view._name} reads {table}, a model's")
                declared = set(view._depends.get(model._name, ()))
                self.assertIn(model._name, view._depends, f"{view._name} reads {table}")
                missing = {
                    column
                    for column in columns
                    if column != "id" and column not in declared
                }
                self.assertFalse(
                    missing,
                    f"{view._name} reads {table}.{sorted(missing)} "
                    f"without declaring it in _depends",
                )

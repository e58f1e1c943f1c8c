from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, HttpCase, tagged

from odoo.addons.mail.tests.common import mail_new_test_user

from . import test_sop_reports
from .common import TestSopCommon
from .test_ui import _rep_and_team


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopSuggestion(TestSopCommon):
    """A rep suggests a change to a SOP task or stage from a deal's SOP panel;
    reps read and write their own, managers those of their companies."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # counted from none (the demo data has some)
        cls.env["crm.sop.suggestion"].search([]).unlink()
        cls.rep_a = cls.user_sales_salesman
        cls.rep_b = cls.user_sales_leads
        cls.lead_a, cls.lead_b = cls.env["crm.lead"].create(
            [
                cls._sop_lead_vals(name="Deal of A", user_id=cls.rep_a.id),
                cls._sop_lead_vals(name="Deal of B", user_id=cls.rep_b.id),
            ]
        )
        cls.user_portal = mail_new_test_user(
            cls.env, login="sop_feedback_portal", groups="base.group_portal"
        )
        cls.user_internal = mail_new_test_user(
            cls.env, login="sop_feedback_internal", groups="base.group_user"
        )

    def _suggest(self, action, user, text, not_helpful=False):
        """Fill in and send the dialog the panel's button opened."""
        Suggestion = (
            self.env["crm.sop.suggestion"]
            .with_user(user)
            .with_context(**action["context"])
        )
        with Form(Suggestion, view=action["views"][0][0]) as form:
            form.text = text
            form.not_helpful = not_helpful
        return form.record

    def test_rep_suggests_from_a_task(self):
        task = self._task(self.lead_a, self.tt_visit).with_user(self.rep_a)
        action = task.action_sop_suggest()
        self.assertEqual(action["res_model"], "crm.sop.suggestion")
        self.assertEqual(action["target"], "new")
        suggestion = self._suggest(
            action, self.rep_a, "Ask who decides before the visit", not_helpful=True
        )
        self.assertRecordValues(
            suggestion.sudo(),
            [
                {
                    "task_template_id": self.tt_visit.id,
                    "stage_id": self.sop_stage_contact.id,
                    "template_id": self.playbook.id,
                    "lead_id": self.lead_a.id,
                    "user_id": self.rep_a.id,
                    "company_id": self.lead_a.company_id.id,
                    "not_helpful": True,
                    "state": "new",
                    "text": "Ask who decides before the visit",
                }
            ],
        )
        # Send thanks the rep and closes the dialog
        thanks = suggestion.action_sop_send()
        self.assertEqual(thanks["tag"], "display_notification")
        self.assertEqual(
            thanks["params"]["next"]["type"], "ir.actions.act_window_close"
        )
        # the rep reads it back
        self.assertEqual(
            self.env["crm.sop.suggestion"].with_user(self.rep_a).search([]), suggestion
        )

    def test_rep_suggests_on_the_stage(self):
        self.lead_a.stage_id = self.stage_team1_2
        action = self.lead_a.with_user(self.rep_a).action_sop_suggest()
        suggestion = self._suggest(action, self.rep_a, "Pitch after the showroom")
        self.assertRecordValues(
            suggestion.sudo(),
            [
                {
                    "task_template_id": False,
                    "stage_id": self.sop_stage_pitch.id,
                    "lead_id": self.lead_a.id,
                    "user_id": self.rep_a.id,
                    "not_helpful": False,
                }
            ],
        )

    def test_bad_input_changes_nothing(self):
        Suggestion = self.env["crm.sop.suggestion"].with_user(self.rep_a)
        with self.assertRaises(ValidationError):
            Suggestion.create({"text": "About nothing"})
        with self.assertRaises(ValidationError):
            Suggestion.create({"stage_id": self.sop_stage_contact.id, "text": "  "})
        with self.assertRaises(ValidationError):
            # a task of another SOP stage
            Suggestion.create(
                {
                    "task_template_id": self.tt_visit.id,
                    "stage_id": self.sop_stage_pitch.id,
                    "text": "Mixed up",
                }
            )
        self.assertFalse(Suggestion.sudo().search_count([]))

    def test_author_and_company_are_the_servers(self):
        Suggestion = self.env["crm.sop.suggestion"].with_user(self.rep_a)
        vals = {"stage_id": self.sop_stage_contact.id, "text": "Shorter"}
        with self.assertRaises(AccessError):
            Suggestion.create({**vals, "user_id": self.rep_b.id})
        self._activate_multi_company()
        with self.assertRaises(AccessError):
            Suggestion.create({**vals, "company_id": self.company_2.id})
        with self.assertRaises(AccessError):
            Suggestion.create({**vals, "state": "done"})
        self.assertFalse(Suggestion.sudo().search_count([]))
        # repeating its own author is harmless
        mine = Suggestion.create({**vals, "user_id": self.rep_a.id})
        self.assertEqual(mine.user_id, self.rep_a)
        for forged in (
            {"user_id": self.rep_b.id},
            {"company_id": self.company_2.id},
            {"state": "considered"},
        ):
            with self.assertRaises(AccessError):
                mine.write(forged)
        # not even a manager writes the author; the manager reviews
        managed = mine.with_user(self.user_sales_manager)
        with self.assertRaises(AccessError):
            managed.write({"user_id": self.user_sales_manager.id})
        # nor rewrites what the rep said
        for rewritten in ({"text": "Longer"}, {"not_helpful": True}):
            with self.assertRaises(AccessError):
                managed.write(rewritten)
        managed.action_sop_consider()
        self.assertRecordValues(
            mine.sudo(),
            [
                {
                    "user_id": self.rep_a.id,
                    "company_id": self.company_main.id,
                    "state": "considered",
                    "text": "Shorter",
                }
            ],
        )
        # the rep still edits their words
        mine.write({"text": "Shorter steps", "not_helpful": True})
        self.assertEqual(mine.sudo().text, "Shorter steps")

    def test_reps_read_only_their_own(self):
        theirs = (
            self.env["crm.sop.suggestion"]
            .with_user(self.rep_b)
            .create(
                {
                    "task_template_id": self.tt_visit.id,
                    "lead_id": self.lead_b.id,
                    "text": "B's idea",
                }
            )
        )
        Suggestion = self.env["crm.sop.suggestion"].with_user(self.rep_a)
        self.assertFalse(Suggestion.search([]))
        with self.assertRaises(AccessError):
            theirs.with_user(self.rep_a).read(["text"])
        with self.assertRaises(AccessError):
            theirs.with_user(self.rep_a).write({"text": "Changed"})
        self.assertEqual(theirs.sudo().text, "B's idea")
        # nor from a deal they cannot read
        with self.assertRaises(AccessError):
            self._task(self.lead_b, self.tt_visit).with_user(
                self.rep_a
            ).action_sop_suggest()
        with self.assertRaises(AccessError):
            Suggestion.create(
                {
                    "task_template_id": self.tt_visit.id,
                    "lead_id": self.lead_b.id,
                    "text": "On B's deal",
                }
            )
        # the manager reads both
        self.assertEqual(
            self.env["crm.sop.suggestion"]
            .with_user(self.user_sales_manager)
            .search([]),
            theirs,
        )

    def test_another_company_reads_nothing(self):
        self._activate_multi_company()
        playbook_c2 = self.env["crm.sop.template"].create(
            {"name": "Playbook C2", "company_id": self.company_2.id}
        )
        stage_c2 = self.env["crm.sop.stage"].create(
            {
                "name": "C2 Contact",
                "template_id": playbook_c2.id,
                "crm_stage_id": self.stage_gen_1.id,
            }
        )
        rep_c2 = mail_new_test_user(
            self.env,
            login="sop_feedback_rep_c2",
            company_id=self.company_2.id,
            company_ids=[(6, 0, self.company_2.ids)],
            groups="sales_team.group_sale_salesman",
        )
        manager_c2 = mail_new_test_user(
            self.env,
            login="sop_feedback_manager_c2",
            company_id=self.company_2.id,
            company_ids=[(6, 0, self.company_2.ids)],
            groups="sales_team.group_sale_manager",
        )
        c2 = (
            self.env["crm.sop.suggestion"]
            .with_user(rep_c2)
            .create({"stage_id": stage_c2.id, "text": "C2's idea"})
        )
        self.assertEqual(c2.sudo().company_id, self.company_2)
        main = (
            self.env["crm.sop.suggestion"]
            .with_user(self.rep_a)
            .create({"stage_id": self.sop_stage_contact.id, "text": "Main's idea"})
        )
        self.assertEqual(
            self.env["crm.sop.suggestion"].with_user(manager_c2).search([]), c2
        )
        self.assertEqual(
            self.env["crm.sop.suggestion"]
            .with_user(self.user_sales_manager)
            .search([]),
            main,
        )
        with self.assertRaises(AccessError):
            c2.with_user(self.user_sales_manager).read(["text"])
        with self.assertRaises(AccessError):
            main.with_user(manager_c2).write({"state": "done"})
        # a rep of the main company cannot suggest on C2's playbook
        with self.assertRaises(AccessError):
            self.env["crm.sop.suggestion"].with_user(self.rep_a).create(
                {"stage_id": stage_c2.id, "text": "Into C2"}
            )

    def test_merge_keeps_the_deal(self):
        theirs = (
            self.env["crm.sop.suggestion"]
            .with_user(self.rep_b)
            .create(
                {
                    "task_template_id": self.tt_visit.id,
                    "lead_id": self.lead_b.id,
                    "text": "B's idea",
                }
            )
        )
        # a manager merges B's deal into A's: the suggestion follows, still B's
        self.lead_b.user_id = False
        merged = (
            (self.lead_a + self.lead_b)
            .with_user(self.user_sales_manager)
            .merge_opportunity(auto_unlink=True)
        )
        self.assertEqual(merged, self.lead_a)
        self.assertFalse(self.lead_b.exists())
        self.assertRecordValues(
            theirs.sudo(), [{"lead_id": self.lead_a.id, "user_id": self.rep_b.id}]
        )

    def test_menus(self):
        """A rep finds their own suggestions; the review is the managers'."""
        mine = self.env.ref("crm_sales_sop.crm_sop_suggestion_menu_mine")
        review = self.env.ref("crm_sales_sop.crm_sop_suggestion_menu")
        feedback = self.env.ref("crm_sales_sop.crm_sop_feedback_report_menu")
        for user, visible in (
            (self.rep_a, {mine}),
            (self.user_sales_manager, {mine, review, feedback}),
            (self.user_internal, set()),
        ):
            menu_ids = self.env["ir.ui.menu"].with_user(user)._visible_menu_ids()

            def shown(menu, menu_ids=menu_ids):
                # with its parents, as the web client builds the menu tree
                while menu:
                    if menu.id not in menu_ids:
                        return False
                    menu = menu.parent_id
                return True

            self.assertEqual(
                {menu for menu in (mine, review, feedback) if shown(menu)},
                visible,
                user.login,
            )

    def test_no_sales_rights_no_access(self):
        mine = (
            self.env["crm.sop.suggestion"]
            .with_user(self.rep_a)
            .create({"stage_id": self.sop_stage_contact.id, "text": "Mine"})
        )
        for user in (self.user_portal, self.user_internal):
            Suggestion = self.env["crm.sop.suggestion"].with_user(user)
            with self.assertRaises(AccessError):
                Suggestion.create({"stage_id": self.sop_stage_contact.id, "text": "x"})
            with self.assertRaises(AccessError):
                Suggestion.search([])
            with self.assertRaises(AccessError):
                mine.with_user(user).read(["text"])
        self.assertEqual(self.env["crm.sop.suggestion"].sudo().search([]), mine)


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopFeedbackReport(test_sop_reports.TestSopReportsCommon):
    """The known history of the task analysis, with what the reps said:

    - "needs agreed" set aside on W1 and O2 ("No meeting") and L1
      ("Customer in a hurry"): 3 of its 8 deals' tasks (crm's lead_1 too);
    - suggestions on "visit data": rep A from W1, rep A from O2 (does not
      help), rep B from L1 (does not help); rep B on the Pitch stage itself
      from L3.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        manual_o2 = cls._task(cls, cls.o2, cls.tt_manual)
        manual_l1 = cls._task(cls, cls.l1, cls.tt_manual)
        manual_o2.with_user(cls.manager)._sop_set_aside("No meeting")
        manual_l1.with_user(cls.manager)._sop_set_aside("Customer in a hurry")
        Suggestion = cls.env["crm.sop.suggestion"]
        vals = {"task_template_id": cls.tt_visit.id}
        cls.suggestions = Suggestion.with_user(cls.rep_a).create(
            [
                {**vals, "lead_id": cls.w1.id, "text": "Ask earlier"},
                {
                    **vals,
                    "lead_id": cls.o2.id,
                    "text": "Nobody comes with family",
                    "not_helpful": True,
                },
            ]
        ) + Suggestion.with_user(cls.rep_b).create(
            [
                {
                    **vals,
                    "lead_id": cls.l1.id,
                    "text": "Skip it",
                    "not_helpful": True,
                },
                {
                    "stage_id": cls.sop_stage_pitch.id,
                    "lead_id": cls.l3.id,
                    "text": "Pitch too early",
                },
            ]
        )

    MEASURES = [
        "task_count",
        "set_aside_count",
        "set_aside_rate:avg",
        "suggestion_count",
        "not_helpful_count",
        "new_suggestion_count",
        "closed_count",
        "lift:avg",
    ]

    def test_figures_per_task(self):
        domain = [("template_id", "=", self.playbook.id)]
        rows = self._group(
            "crm.sop.feedback.report", ["task_template_id"], self.MEASURES, domain
        )
        lifts = self._group(
            "crm.sop.task.report",
            ["task_template_id"],
            ["lift:avg", "closed_count"],
            domain,
        )
        manual = rows[self.tt_manual.id]
        self.assertEqual((manual["task_count"], manual["set_aside_count"]), (8, 3))
        self.assertAlmostEqual(manual["set_aside_rate"], 300 / 8)
        self.assertEqual(manual["suggestion_count"], 0)
        visit = rows[self.tt_visit.id]
        self.assertEqual(
            (
                visit["set_aside_count"],
                visit["suggestion_count"],
                visit["not_helpful_count"],
                visit["new_suggestion_count"],
            ),
            (0, 3, 2, 3),
        )
        # the lift beside them: the task analysis' own, by hand in its test
        self.assertAlmostEqual(visit["lift"], 100 / 3)
        self.assertAlmostEqual(rows[self.tt_budget.id]["lift"], 50.0 - 200 / 3)
        for task_template in (self.tt_visit, self.tt_budget, self.tt_customer):
            self.assertAlmostEqual(
                rows[task_template.id]["lift"], lifts[task_template.id]["lift"]
            )
            self.assertEqual(
                rows[task_template.id]["closed_count"],
                lifts[task_template.id]["closed_count"],
            )
        # the stage's own suggestions: a row of their own
        stage_rows = self._group(
            "crm.sop.feedback.report",
            ["sop_stage_id"],
            self.MEASURES,
            domain + [("scope", "=", "stage")],
        )
        self.assertEqual(list(stage_rows), [self.sop_stage_pitch.id])
        self.assertEqual(stage_rows[self.sop_stage_pitch.id]["suggestion_count"], 1)
        # per SOP stage: its tasks' and its own
        per_stage = self._group(
            "crm.sop.feedback.report", ["sop_stage_id"], self.MEASURES, domain
        )
        self.assertEqual(
            (
                per_stage[self.sop_stage_contact.id]["suggestion_count"],
                per_stage[self.sop_stage_pitch.id]["suggestion_count"],
                per_stage[self.sop_stage_pitch.id]["set_aside_count"],
            ),
            (3, 1, 3),
        )
        # reviewed: no longer to review
        self.suggestions[:2].with_user(self.manager).action_sop_consider()
        rows = self._group(
            "crm.sop.feedback.report", ["task_template_id"], self.MEASURES, domain
        )
        self.assertEqual(rows[self.tt_visit.id]["new_suggestion_count"], 1)

    def test_lift_follows_the_task_analysis_unflushed(self):
        """A task done in this transaction moves both reports alike (the
        view flushes what the task analysis reads)."""
        self._task(self.w2, self.tt_manual).sudo().write(
            {"state": "done", "date_done": "2031-03-02 10:00:00"}
        )
        domain = [("task_template_id", "=", self.tt_manual.id)]
        feedback = self._group(
            "crm.sop.feedback.report", [], ["lift:avg", "closed_count"], domain
        )
        analysis = self._group(
            "crm.sop.task.report", [], ["lift:avg", "closed_count"], domain
        )
        # needs agreed: W2 done (won); not done: W3 won, L2 L3 lost
        self.assertAlmostEqual(feedback["lift"], 100 - 100 / 3)
        self.assertAlmostEqual(analysis["lift"], feedback["lift"])
        self.assertEqual(feedback["closed_count"], analysis["closed_count"])

    def test_reasons_and_drill_down(self):
        Report = self.env["crm.sop.feedback.report"].with_user(self.manager)
        manual = Report.search([("task_template_id", "=", self.tt_manual.id)])
        self.assertEqual(len(manual), 1)
        self.assertEqual(manual.na_reasons, "No meeting (2)\nCustomer in a hurry (1)")
        action = manual.action_sop_view_set_aside()
        tasks = (
            self.env["crm.sop.task"].with_user(self.manager).search(action["domain"])
        )
        self.assertEqual(tasks.lead_id, self.w1 + self.o2 + self.l1)
        visit = Report.search([("task_template_id", "=", self.tt_visit.id)])
        action = visit.action_sop_view_suggestions()
        self.assertEqual(action["res_model"], "crm.sop.suggestion")
        found = (
            self.env["crm.sop.suggestion"]
            .with_user(self.manager)
            .search(action["domain"])
        )
        self.assertEqual(found, self.suggestions[:3])
        stage = Report.search(
            [("scope", "=", "stage"), ("template_id", "=", self.playbook.id)]
        )
        found = (
            self.env["crm.sop.suggestion"]
            .with_user(self.manager)
            .search(stage.action_sop_view_suggestions()["domain"])
        )
        self.assertEqual(found, self.suggestions[3])

    def test_report_read_queries(self):
        Report = self.env["crm.sop.feedback.report"].with_user(self.manager)
        domain = [("template_id", "=", self.playbook.id)]
        # warm up the caches (rules, fields)
        Report.web_read_group(domain, ["task_template_id"], self.MEASURES)
        Report.web_search_read(domain, {"task_template_id": {}, "na_reasons": {}})
        # one query for the groups, whatever the rows
        with self.assertQueryCount(1):
            Report.web_read_group(domain, ["task_template_id"], self.MEASURES)
        # the rows, then the names of the tasks and of the SOP stages
        with self.assertQueryCount(3):
            Report.web_search_read(
                domain,
                {
                    "task_template_id": {"fields": {"display_name": {}}},
                    "sop_stage_id": {"fields": {"display_name": {}}},
                    "na_reasons": {},
                    "suggestion_count": {},
                    "lift": {},
                },
            )

    def test_access(self):
        domain = [("template_id", "=", self.playbook.id)]
        self.assertTrue(
            self.env["crm.sop.feedback.report"]
            .with_user(self.manager)
            .search_count(domain)
        )
        self._activate_multi_company()
        manager_c2 = mail_new_test_user(
            self.env,
            login="sop_feedback_report_manager_c2",
            company_id=self.company_2.id,
            company_ids=[(6, 0, self.company_2.ids)],
            groups="sales_team.group_sale_manager",
        )
        self.assertFalse(
            self.env["crm.sop.feedback.report"]
            .with_user(manager_c2)
            .search_count(domain)
        )
        self.assertFalse(
            self.env["crm.sop.suggestion"].with_user(manager_c2).search_count([])
        )
        with self.assertRaises(AccessError):
            self.env["crm.sop.feedback.report"].with_user(self.rep_a).search([])


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopSuggestUi(HttpCase):
    """The panel's Suggest buttons and their dialog, as a rep in a browser."""

    def _run_tour(self, login, tour="crm_sales_sop_suggest", lang="en_US"):
        rep, team = _rep_and_team(self.env, login, f"{login} team")
        if lang != "en_US":
            # the tour reads the task, the stage and the thanks in zh_CN
            self.env["res.lang"]._activate_lang(lang)
            self.env["ir.module.module"]._load_module_terms(
                ["crm_sales_sop"], [lang], overwrite=True
            )
            rep.lang = lang
        lead = self.env["crm.lead"].create(
            {
                "name": "Suggesting opportunity",
                "type": "opportunity",
                "user_id": rep.id,
                "team_id": team.id,
                "stage_id": self.env.ref("crm.stage_lead1").id,
            }
        )
        self.start_tour(f"/odoo/crm/{lead.id}", tour, login=login)
        suggestions = self.env["crm.sop.suggestion"].search(
            [("lead_id", "=", lead.id)], order="id"
        )
        first_contact = self.env.ref("crm_sales_sop.crm_sop_stage_first_contact")
        self.assertRecordValues(
            suggestions,
            [
                {
                    "task_template_id": self.env.ref(
                        "crm_sales_sop.crm_sop_task_visit_data"
                    ).id,
                    "stage_id": first_contact.id,
                    "text": "Ask who decides before the visit, not after",
                    "not_helpful": True,
                    "user_id": rep.id,
                    "state": "new",
                },
                {
                    "task_template_id": False,
                    "stage_id": first_contact.id,
                    "text": "Offer the showroom visit in the first call",
                    "not_helpful": False,
                    "user_id": rep.id,
                    "state": "new",
                },
            ],
        )

    def test_rep_suggests_from_the_panel(self):
        self._run_tour("sop_suggest_rep")

    def test_rep_suggests_from_the_panel_zh(self):
        self._run_tour("sop_suggest_rep_zh", lang="zh_CN")


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopSuggestUiPhone(TestSopSuggestUi):
    browser_size = "390x844"
    touch_enabled = True

    def test_rep_suggests_from_the_panel(self):
        self._run_tour("sop_suggest_phone_rep", "crm_sales_sop_suggest_phone")

    def test_rep_suggests_from_the_panel_zh(self):
        self._run_tour(
            "sop_suggest_phone_zh", "crm_sales_sop_suggest_phone", lang="zh_CN"
        )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopFeedbackUi(HttpCase):
    """A sales manager reads the Task Feedback report and reviews a
    suggestion in the browser."""

    def test_manager_reviews_feedback(self):
        rep, team = _rep_and_team(self.env, "sop_feedback_ui_rep", "Feedback team")
        manager = mail_new_test_user(
            self.env,
            login="sop_feedback_ui_manager",
            groups="sales_team.group_sale_manager",
        )
        stage = self.env.ref("crm_sales_sop.crm_sop_stage_first_contact")
        task_template = self.env["crm.sop.task.template"].create(
            {"name": "Feedback task", "stage_id": stage.id, "kind": "manual"}
        )
        leads = self.env["crm.lead"].create(
            [
                {
                    "name": f"Feedback deal {index}",
                    "type": "opportunity",
                    "user_id": rep.id,
                    "team_id": team.id,
                    "stage_id": self.env.ref("crm.stage_lead1").id,
                }
                for index in range(2)
            ]
        )
        leads.sop_task_ids.filtered(
            lambda t: t.task_template_id == task_template
        )._sop_set_aside("No meeting")
        suggestion = (
            self.env["crm.sop.suggestion"]
            .with_user(rep)
            .create(
                {
                    "task_template_id": task_template.id,
                    "lead_id": leads[0].id,
                    "text": "Ask the budget later",
                }
            )
        )
        action = self.env.ref("crm_sales_sop.crm_sop_feedback_report_action")
        self.start_tour(
            f"/odoo/action-{action.id}",
            "crm_sales_sop_feedback",
            login=manager.login,
        )
        self.assertEqual(suggestion.state, "considered")

from odoo.exceptions import AccessError
from odoo.tests import tagged, users
from odoo.tools.safe_eval import safe_eval

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopMyDayToday(TestSopCommon):
    """My SOP Day is today's work: the next steps of each of the rep's open
    deals (its current SOP stage's open tasks, its next step, the required
    tasks it left behind), never the stages ahead, never another rep's."""

    def _my_day(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_sales_sop.crm_sop_task_action_my_day"
        )
        domain = safe_eval(action["domain"], {"uid": self.env.uid})
        return self.env["crm.sop.task"].search(domain)

    def _pairs(self, tasks):
        return {(task.lead_id.name, task.task_template_id.name) for task in tasks}

    @users("user_sales_leads")
    def test_next_steps_of_each_deal(self):
        # an optional task is not listed once the deal left it behind
        self.tt_script.sudo().required = False
        Lead = self.env["crm.lead"]
        new = Lead.create(
            self._sop_lead_vals(name="New deal", user_id=self.env.uid, partner_id=False)
        )
        moved = Lead.create(
            self._sop_lead_vals(
                name="Moved deal",
                user_id=self.env.uid,
                stage_id=self.stage_team1_2.id,
            )
        )
        # a deal whose first SOP stage is done: its next step lies ahead,
        # and only that one is listed of the stage ahead
        ahead = Lead.create(
            self._sop_lead_vals(
                name="Ahead deal",
                user_id=self.env.uid,
                partner_id=self.customer.id,
                x_sop_companions="Spouse",
                x_sop_decision_makers="Both",
            )
        )
        self.customer.sudo().write(
            {"x_sop_gender": "female", "x_sop_age_range": "25_34"}
        )
        ahead.action_sop_send_script(self.mail_template.id, channel="copy")
        self.assertEqual(ahead.sop_next_task_id.task_template_id, self.tt_call)
        # closed deals and another rep's deals are never in it
        won = Lead.create(self._sop_lead_vals(name="Won deal", user_id=self.env.uid))
        won.write({"stage_id": self.stage_team1_won.id})
        lost = Lead.create(self._sop_lead_vals(name="Lost deal", user_id=self.env.uid))
        lost.action_set_lost()
        other = Lead.create(
            self._sop_lead_vals(name="Other deal", user_id=self.user_sales_salesman.id)
        )
        self.assertTrue(other.sop_task_ids.filtered(lambda t: t.state == "todo"))

        # (crm's own fixtures give the user other deals)
        deals = new | moved | ahead | won | lost | other
        tasks = self._my_day().filtered(lambda task: task.lead_id in deals)
        self.assertEqual(
            self._pairs(tasks),
            {
                # the current SOP stage of a new deal, none of the Pitch stage
                ("New deal", "Customer profile"),
                ("New deal", "Visit data"),
                ("New deal", "Welcome script"),
                # the Pitch stage, and the required tasks left behind
                ("Moved deal", "Call"),
                ("Moved deal", "Budget"),
                ("Moved deal", "Needs agreed"),
                ("Moved deal", "Customer profile"),
                ("Moved deal", "Visit data"),
                # its next step only
                ("Ahead deal", "Call"),
            },
        )
        self.assertEqual(set(tasks.mapped("state")), {"todo"})
        # the field reads as it searches
        candidates = (new | moved | ahead | won | lost).sop_task_ids
        self.assertEqual(candidates.filtered("sop_my_day"), tasks)
        self.assertEqual(
            self.env["crm.sop.task"].search(
                [("sop_my_day", "=", False), ("lead_id", "in", (new | moved).ids)]
            ),
            (new | moved).sop_task_ids - tasks,
        )

    def test_a_deal_created_in_this_transaction(self):
        """The search reads the deals' summary in SQL: a deal created in the
        same transaction, its summary still waiting for the ORM's write of
        the new row, has its next steps in it."""
        lead = self.env["crm.lead"].create(self._sop_lead_vals(user_id=self.env.uid))
        Task = self.env["crm.sop.task"].sudo()
        self.assertEqual(
            Task.search([("sop_my_day", "=", True), ("lead_id", "=", lead.id)]),
            lead.sop_task_ids.filtered(lambda t: t.stage_id == lead.sop_stage_id),
        )

    def test_another_rep_never_sees_mine(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        Task = self.env["crm.sop.task"]
        for user in (self.user_sales_leads, self.user_sales_manager):
            with self.subTest(user=user.login):
                self.assertFalse(
                    Task.with_user(user).search(
                        [("sop_my_day", "=", True), ("lead_id", "=", lead.id)]
                    )
                )
        self.assertTrue(
            Task.with_user(self.user_sales_salesman).search(
                [("sop_my_day", "=", True), ("lead_id", "=", lead.id)]
            )
        )

    @users("user_sales_salesman")
    def test_a_tap_opens_the_deal_or_acts(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        task = self._task(lead, self.tt_visit)
        self.assertIn(task, self._my_day())
        action = task.action_sop_open_deal()
        self.assertEqual((action["res_model"], action["res_id"]), ("crm.lead", lead.id))
        # the button acts as in the panel: Fill in opens the task's dialog
        self.assertEqual(
            task.action_sop_open()["context"]["sop_fill_view_ref"], self.tt_visit.id
        )
        other = (
            self.env["crm.lead"]
            .sudo()
            .create(self._sop_lead_vals(user_id=self.user_sales_leads.id))
        )
        with self.assertRaises(AccessError):
            self._task(other, self.tt_visit).with_user(
                self.env.user
            ).action_sop_open_deal()

    @users("user_sales_salesman")
    def test_one_query_whatever_the_deals(self):
        """My SOP Day's domain is one subquery: the same queries for 1 deal
        or 6, in different stages."""
        Lead = self.env["crm.lead"]
        counts = []
        for size in (1, 1, 6):  # warm up the registry's caches first
            Lead.create(
                [
                    self._sop_lead_vals(
                        stage_id=(self.stage_team1_1 | self.stage_team1_2)[i % 2].id
                    )
                    for i in range(size)
                ]
            )
            self.env.invalidate_all()
            before = self.cr.sql_log_count
            self.assertTrue(self._my_day())
            counts.append(self.cr.sql_log_count - before)
        self.assertEqual(counts[1], counts[2])

from odoo.tests import Form, tagged, users, warmup

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopMerge(TestSopCommon):
    """Merging deals keeps the SOP work of each: the survivor has a task done
    when it was done on either, and the SOP data fields merge as core's."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # core's lead scoring reads the stages of every team that has closed
        # deals (one query per team, crm.lead._pls_get_naive_bayes_probabilities):
        # the budgets below are counted on a database without that history,
        # whatever the database holds (the demo's year of deals, a customer's)
        cls.env["crm.lead.scoring.frequency"].search([]).unlink()

    @users("user_sales_manager")
    def test_merge_keeps_sop_work(self):
        Lead = self.env["crm.lead"]
        head = Lead.create(
            self._sop_lead_vals(
                name="Head", expected_revenue=500, partner_id=self.customer.id
            )
        )
        tail = Lead.create(
            self._sop_lead_vals(
                name="Tail",
                x_sop_companions="Her sister",
                x_sop_decision_makers="Her",
                x_sop_intended_category="Bed",
                x_sop_intended_style="Modern",
                partner_id=self.customer.id,
            )
        )
        self._task(tail, self.tt_manual).action_sop_mark_done()
        self._task(tail, self.tt_script).sudo().date_script_sent = "2026-11-01 10:00:00"
        self.env["crm.sop.engine"]._sop_evaluate(tail)
        self.assertEqual(self._task(tail, self.tt_script).state, "done")
        tail.activity_schedule(
            activity_type_id=self.activity_type_call.id, user_id=self.env.uid
        ).action_feedback("Called")
        self.assertEqual(self._task(tail, self.tt_call).state, "done")
        merged = (head + tail).merge_opportunity(auto_unlink=True)
        self.assertEqual(merged, head, "the higher revenue survives")
        self.assertFalse(tail.exists())
        self.assertEqual(merged.x_sop_companions, "Her sister")
        self.assertEqual(merged.x_sop_decision_makers, "Her")
        self.assertEqual(merged.x_sop_intended_category, "Bed")
        self.assertEqual(merged.x_sop_intended_style, "Modern")
        for task_template in (
            self.tt_visit,
            self.tt_manual,
            self.tt_script,
            self.tt_call,
            self.tt_budget,
        ):
            with self.subTest(task=task_template.name):
                self.assertEqual(self._task(merged, task_template).state, "done")
        manual = self._task(merged, self.tt_manual)
        self.assertEqual(manual.completion, "manual")
        self.assertEqual(manual.done_user_id, self.env.user)
        self.assertEqual(self._task(merged, self.tt_customer).state, "todo")
        self.assertEqual(merged.sop_progress, 83)

    def test_merge_keeps_what_the_playbooks_collect(self):
        """A field a playbook collects merges as core's own, whoever added it;
        a field no playbook collects is left to core (not merged)."""
        collected = self._custom_char_field("crm.lead", "x_sop_budget_note", "Budget")
        other = self._custom_char_field("crm.lead", "x_other_note", "Other")
        self.tt_visit.field_ids += collected
        Lead = self.env["crm.lead"].with_user(self.user_sales_manager)
        head = Lead.create(
            self._sop_lead_vals(name="Head", expected_revenue=900, probability=60)
        )
        tail = Lead.create(
            self._sop_lead_vals(
                name="Tail", x_sop_budget_note="About 20k", x_other_note="Kept?"
            )
        )
        merged = (head + tail).merge_opportunity(auto_unlink=True)
        self.assertEqual(merged, head)
        self.assertEqual(merged.x_sop_budget_note, "About 20k")
        self.assertFalse(merged.x_other_note)
        self.assertNotIn(other.name, merged._merge_get_fields())
        self.assertNotIn("sop_template_id", merged._merge_get_fields())

    def test_merge_leaves_a_collected_field_the_user_may_not_read(self):
        """A playbook collecting a deal field kept to a group the rep lacks:
        the rep's merge leaves it as the kept deal has it (no access error);
        an administrator's merge takes it as core's own fields."""
        restricted = self._custom_char_field("crm.lead", "x_sop_margin", "Margin")
        # as a module's field declared with groups= (custom fields have none)
        self.patch(
            self.env["crm.lead"]._fields["x_sop_margin"], "groups", "base.group_system"
        )
        self.tt_visit.field_ids += restricted
        Lead = self.env["crm.lead"]
        head = Lead.create(
            self._sop_lead_vals(
                name="Head",
                user_id=self.user_sales_salesman.id,
                expected_revenue=900,
                probability=60,
            )
        )
        tail = Lead.create(
            self._sop_lead_vals(
                name="Tail", user_id=self.user_sales_salesman.id, x_sop_margin="12%"
            )
        )
        self.env.invalidate_all()
        as_rep = (head + tail).with_user(self.user_sales_salesman)
        self.assertNotIn("x_sop_margin", as_rep._merge_get_fields())
        merged = as_rep.merge_opportunity(auto_unlink=True)
        self.assertEqual(merged, head)
        self.assertFalse(head.sudo().x_sop_margin)
        # who may read it merges it
        other = Lead.create(self._sop_lead_vals(name="Other", x_sop_margin="9%"))
        self.assertIn("x_sop_margin", head._merge_get_fields())
        self.assertEqual((head + other).merge_opportunity(auto_unlink=True), head)
        self.assertEqual(head.x_sop_margin, "9%")

    @users("user_sales_manager")
    def test_merge_wizard(self):
        Lead = self.env["crm.lead"]
        first = Lead.create(self._sop_lead_vals(name="First", expected_revenue=900))
        second = Lead.create(self._sop_lead_vals(name="Second"))
        self._task(second, self.tt_manual).action_sop_mark_done()
        second.x_sop_companions = "Husband"
        wizard = Form(
            self.env["crm.merge.opportunity"].with_context(
                active_model="crm.lead", active_ids=(first + second).ids
            )
        ).save()
        merged = wizard.action_merge()
        head = Lead.browse(merged["res_id"])
        self.assertEqual(head, first)
        self.assertEqual(head.x_sop_companions, "Husband")
        self.assertEqual(self._task(head, self.tt_manual).state, "done")

    @users("user_sales_salesman")
    @warmup
    def test_merge_wizard_budget(self):
        """Merging two deals of one playbook through core's wizard."""
        Lead = self.env["crm.lead"]
        # the head, whatever lead scoring would say (core keeps the deal
        # most likely to close)
        first = Lead.create(
            self._sop_lead_vals(name="First", expected_revenue=900, probability=60)
        )
        second = Lead.create(self._sop_lead_vals(name="Second"))
        self._task(second, self.tt_manual).action_sop_mark_done()
        wizard = Form(
            self.env["crm.merge.opportunity"].with_context(
                active_model="crm.lead", active_ids=(first + second).ids
            )
        ).save()
        self.env.flush_all()
        self.env.invalidate_all()
        # before the tails' activities done moved to the head: 65; the merge
        # writes the head's stage_id: one INSERT of the stage move log, 67
        with self.assertQueryCount(user_sales_salesman=67):
            wizard.action_merge()
        self.assertEqual(self._task(first, self.tt_manual).state, "done")


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopMergeOtherPlaybook(TestSopCommon):
    """Merging into a head that follows another playbook: the tail's tasks
    with history (ticked by hand, set aside, scripts sent, done) survive on the
    head, archived as tasks of their former playbook, as a team change
    archives them; they come back if the head ever follows that playbook."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team_b = cls.env["crm.team"].create({"name": "Showroom B"})
        cls.playbook_b = cls.env["crm.sop.template"].create(
            {"name": "Showroom playbook", "team_ids": [(6, 0, cls.team_b.ids)]}
        )
        stage_b = cls.env["crm.sop.stage"].create(
            {
                "name": "Welcome",
                "template_id": cls.playbook_b.id,
                "crm_stage_id": cls.stage_gen_1.id,
            }
        )
        TaskTemplate = cls.env["crm.sop.task.template"]
        vals = {"stage_id": stage_b.id, "required": False}
        cls.tt_b_tick = TaskTemplate.create(
            {"name": "Offer tea", "kind": "manual", **vals}
        )
        cls.tt_b_aside = TaskTemplate.create(
            {"name": "Show the catalogue", "kind": "manual", **vals}
        )
        cls.tt_b_script = TaskTemplate.create(
            {
                "name": "Welcome mail",
                "kind": "script",
                "mail_template_id": cls.mail_template.id,
                **vals,
            }
        )
        cls.tt_b_fields = TaskTemplate.create(
            {
                "name": "Who came",
                "kind": "fields",
                "field_ids": [(6, 0, cls.field_lead_companions.ids)],
                **vals,
            }
        )
        cls.tt_b_open = TaskTemplate.create(
            {"name": "Measure the room", "kind": "manual", **vals}
        )

    @users("user_sales_salesman")
    def test_merge_into_another_playbook_keeps_history(self):
        Lead = self.env["crm.lead"]
        head = Lead.create(
            self._sop_lead_vals(
                name="Head",
                expected_revenue=900,
                stage_id=self.stage_team1_2.id,
            )
        )
        tail = Lead.create(
            self._sop_lead_vals(
                name="Tail",
                team_id=self.team_b.id,
                stage_id=self.stage_gen_1.id,
                partner_id=self.customer.id,
            )
        )
        self.assertEqual(head.sop_template_id, self.playbook)
        self.assertEqual(tail.sop_template_id, self.playbook_b)
        self._task(head, self.tt_manual).action_sop_mark_done()
        self._task(tail, self.tt_b_tick).action_sop_mark_done()
        self._task(tail, self.tt_b_aside)._sop_set_aside("No catalogue in stock")
        self._task(tail, self.tt_b_script).action_sop_send_script(channel="copy")
        tail.x_sop_companions = "Her sister"
        # a call done on the tail completes the head's call task once merged
        tail.activity_schedule(
            activity_type_id=self.activity_type_call.id, user_id=self.env.uid
        ).action_feedback("Called")
        history = tail.sop_task_ids.filtered(
            lambda t: t.task_template_id != self.tt_b_open
        )
        self.assertEqual(len(history), 4)
        fnames = [
            "task_template_id",
            "state",
            "completion",
            "date_done",
            "done_user_id",
            "na_reason",
            "date_script_sent",
        ]
        history_before = history.read(fnames)
        head_before = head.sop_task_ids.read(fnames)
        head_done_before = self.env["crm.sop.task"].search_count(
            [("done_user_id", "=", self.env.uid), ("state", "=", "done")]
        )
        wizard = Form(
            self.env["crm.merge.opportunity"].with_context(
                active_model="crm.lead", active_ids=(head + tail).ids
            )
        ).save()
        merged = self.env["crm.lead"].browse(wizard.action_merge()["res_id"])
        self.assertEqual(merged, head)
        self.assertFalse(tail.exists())
        self.assertEqual(head.sop_template_id, self.playbook)
        # the head's own tasks: its playbook's, active; the call is done now
        head_after = head.sop_task_ids
        self.assertEqual(head_after.task_template_id.template_id, self.playbook)
        self.assertEqual(self._task(head, self.tt_call).state, "done")
        for before, after in zip(head_before, head_after.read(fnames), strict=True):
            if after["task_template_id"][0] == self.tt_call.id:
                continue  # completed by the tail's call
            self.assertEqual(after, before)
        # the tail's history: archived on the head, as it was
        archived = (
            self.env["crm.sop.task"]
            .with_context(active_test=False)
            .search([("lead_id", "=", head.id), ("active", "=", False)])
        )
        self.assertEqual(archived, history)
        self.assertEqual(history.read(fnames), history_before)
        tick = history.filtered(lambda t: t.task_template_id == self.tt_b_tick)
        self.assertEqual(tick.completion, "manual")
        self.assertEqual(tick.done_user_id, self.env.user)
        # the open task went with the tail; the script's send follows its task
        self.assertFalse(
            self.env["crm.sop.task"]
            .with_context(active_test=False)
            .search([("task_template_id", "=", self.tt_b_open.id)])
        )
        send = self.env["crm.sop.script.send"].search([("lead_id", "=", head.id)])
        self.assertEqual(send.task_id.task_template_id, self.tt_b_script)
        # what the rep completed still counts (the board counts archived tasks)
        self.assertEqual(
            self.env["crm.sop.task"]
            .with_context(active_test=False)
            .search_count(
                [("done_user_id", "=", self.env.uid), ("state", "=", "done")]
            ),
            head_done_before + 1,  # the head's call, done by the merge
        )
        # the progress is the head's playbook's
        self.assertEqual(head.sop_progress, 50)  # manual, budget, call of 6
        # the head moves to the tail's playbook: the history comes back
        head.team_id = self.team_b
        self.assertEqual(head.sop_template_id, self.playbook_b)
        for task in history:
            with self.subTest(task=task.name):
                self.assertTrue(task.active)
        self.assertEqual(history.read(fnames), history_before)
        self.assertEqual(self._task(head, self.tt_b_open).state, "todo")

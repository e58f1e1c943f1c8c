from odoo.tests import Form, tagged, users, warmup

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopMerge(TestSopCommon):
    """Merging deals keeps the SOP work of each: the survivor has a task done
    when it was done on either, and the SOP data fields merge as core's."""

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
                sop_companions="Her sister",
                sop_decision_makers="Her",
                sop_intended_category="Bed",
                sop_intended_style="Modern",
                partner_id=self.customer.id,
            )
        )
        self._task(tail, self.tt_manual).action_sop_mark_done()
        self._task(tail, self.tt_script).sudo().date_script_sent = "2026-11-01 10:00:00"
        self.env["crm.sop.task"]._sop_evaluate(tail)
        self.assertEqual(self._task(tail, self.tt_script).state, "done")
        tail.activity_schedule(
            activity_type_id=self.activity_type_call.id, user_id=self.env.uid
        ).action_feedback("Called")
        self.assertEqual(self._task(tail, self.tt_call).state, "done")
        merged = (head + tail).merge_opportunity(auto_unlink=True)
        self.assertEqual(merged, head, "the higher revenue survives")
        self.assertFalse(tail.exists())
        self.assertEqual(merged.sop_companions, "Her sister")
        self.assertEqual(merged.sop_decision_makers, "Her")
        self.assertEqual(merged.sop_intended_category, "Bed")
        self.assertEqual(merged.sop_intended_style, "Modern")
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

    @users("user_sales_manager")
    def test_merge_wizard(self):
        Lead = self.env["crm.lead"]
        first = Lead.create(self._sop_lead_vals(name="First", expected_revenue=900))
        second = Lead.create(self._sop_lead_vals(name="Second"))
        self._task(second, self.tt_manual).action_sop_mark_done()
        second.sop_companions = "Husband"
        wizard = Form(
            self.env["crm.merge.opportunity"].with_context(
                active_model="crm.lead", active_ids=(first + second).ids
            )
        ).save()
        merged = wizard.action_merge()
        head = Lead.browse(merged["res_id"])
        self.assertEqual(head, first)
        self.assertEqual(head.sop_companions, "Husband")
        self.assertEqual(self._task(head, self.tt_manual).state, "done")

    @users("user_sales_salesman")
    @warmup
    def test_merge_wizard_budget(self):
        """Merging two deals of one playbook through core's wizard."""
        Lead = self.env["crm.lead"]
        first = Lead.create(self._sop_lead_vals(name="First", expected_revenue=900))
        second = Lead.create(self._sop_lead_vals(name="Second"))
        self._task(second, self.tt_manual).action_sop_mark_done()
        wizard = Form(
            self.env["crm.merge.opportunity"].with_context(
                active_model="crm.lead", active_ids=(first + second).ids
            )
        ).save()
        self.env.flush_all()
        self.env.invalidate_all()
        # before the tails' activities done moved to the head: 65
        with self.assertQueryCount(user_sales_salesman=66):
            wizard.action_merge()
        self.assertEqual(self._task(first, self.tt_manual).state, "done")

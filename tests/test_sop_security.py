from odoo.exceptions import AccessError
from odoo.tests import tagged, users

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopSecurity(TestSopCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lead_mine = cls.env["crm.lead"].create(cls._sop_lead_vals(name="Mine"))
        cls.lead_other = cls.env["crm.lead"].create(
            cls._sop_lead_vals(name="Other's", user_id=cls.user_sales_leads.id)
        )
        cls.lead_unassigned = cls.env["crm.lead"].create(
            cls._sop_lead_vals(name="Unassigned", user_id=False)
        )

    @users("user_sales_salesman")
    def test_rep_sees_tasks_of_the_leads_they_see(self):
        Task = self.env["crm.sop.task"]
        visible_leads = self.env["crm.lead"].search(
            [
                (
                    "id",
                    "in",
                    (self.lead_mine + self.lead_other + self.lead_unassigned).ids,
                )
            ]
        )
        self.assertEqual(visible_leads, self.lead_mine + self.lead_unassigned)
        tasks = Task.search(
            [
                (
                    "lead_id",
                    "in",
                    (self.lead_mine + self.lead_other + self.lead_unassigned).ids,
                )
            ]
        )
        self.assertEqual(tasks.lead_id, visible_leads)
        with self.assertRaises(AccessError):
            Task.browse(self.lead_other.sop_task_ids.ids).read(["state"])

    @users("user_sales_salesman")
    def test_rep_cannot_forge_task_state(self):
        task = self._task(self.lead_mine.with_user(self.env.user), self.tt_visit)
        with self.assertRaises(AccessError):
            task.write({"state": "done"})
        with self.assertRaises(AccessError):
            task.unlink()
        with self.assertRaises(AccessError):
            self.env["crm.sop.task"].create(
                {"lead_id": self.lead_mine.id, "task_template_id": self.tt_manual.id}
            )

    @users("user_sales_salesman")
    def test_rep_cannot_tick_a_task_of_another_rep(self):
        task = self._task(self.lead_other, self.tt_manual).with_user(self.env.user)
        with self.assertRaises(AccessError):
            task.action_sop_mark_done()
        self.assertEqual(task.sudo().state, "todo")
        with self.assertRaises(AccessError):
            task.action_sop_open()

    @users("user_sales_leads")
    def test_all_leads_user_sees_all_tasks(self):
        tasks = self.env["crm.sop.task"].search(
            [("lead_id", "in", (self.lead_mine + self.lead_other).ids)]
        )
        self.assertEqual(tasks.lead_id, self.lead_mine + self.lead_other)
        # and may tick the manual task of a lead they can write
        task = self._task(self.lead_mine.with_user(self.env.user), self.tt_manual)
        task.action_sop_mark_done()
        self.assertEqual(task.state, "done")
        self.assertEqual(task.done_user_id, self.env.user)

    def test_task_follows_lead_reassignment(self):
        self.lead_other.user_id = self.user_sales_salesman
        self.assertEqual(self.lead_other.sop_task_ids.user_id, self.user_sales_salesman)
        tasks = (
            self.env["crm.sop.task"]
            .with_user(self.user_sales_salesman)
            .search([("lead_id", "=", self.lead_other.id)])
        )
        self.assertEqual(len(tasks), 6)

    def test_multi_company(self):
        company_2 = self.env["res.company"].create({"name": "Branch 2"})
        lead_c2 = self.env["crm.lead"].create(
            self._sop_lead_vals(
                name="Branch lead",
                company_id=company_2.id,
                user_id=False,
                team_id=False,
            )
        )
        self.assertTrue(lead_c2.sop_task_ids)
        self.assertEqual(lead_c2.sop_task_ids.company_id, company_2)
        manager = self.user_sales_manager
        self.assertNotIn(company_2, manager.company_ids)
        tasks = (
            self.env["crm.sop.task"]
            .with_user(manager)
            .search([("lead_id", "=", lead_c2.id)])
        )
        self.assertFalse(tasks)
        # a playbook of another company does not apply here
        playbook_c2 = self.env["crm.sop.template"].create(
            {"name": "Branch playbook", "company_id": company_2.id, "sequence": 0}
        )
        self.assertFalse(
            self.env["crm.sop.template"]
            .with_user(manager)
            .search([("id", "=", playbook_c2.id)])
        )
        lead_c1 = self.env["crm.lead"].create(
            self._sop_lead_vals(team_id=False, user_id=False)
        )
        self.assertNotEqual(lead_c1.sop_template_id, playbook_c2)
        lead_c2b = self.env["crm.lead"].create(
            self._sop_lead_vals(
                name="B2", company_id=company_2.id, team_id=False, user_id=False
            )
        )
        self.assertEqual(lead_c2b.sop_template_id, playbook_c2)

    @users("user_sales_salesman")
    def test_rep_reads_panel_and_card_fields(self):
        lead = self.lead_mine.with_user(self.env.user)
        lead.invalidate_recordset()
        data = lead.web_read(
            {
                "sop_progress": {},
                "sop_stage_id": {"fields": {"display_name": {}}},
                "sop_next_task_id": {"fields": {"display_name": {}}},
                "sop_stage_guidance": {},
                "sop_task_ids": {
                    "fields": {
                        "name": {},
                        "state": {},
                        "kind": {},
                        "stage_id": {"fields": {"display_name": {}}},
                    }
                },
            }
        )[0]
        self.assertEqual(len(data["sop_task_ids"]), 6)
        self.assertEqual(data["sop_next_task_id"]["display_name"], "Customer profile")

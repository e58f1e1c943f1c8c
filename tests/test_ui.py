from odoo.tests import HttpCase, tagged

from odoo.addons.mail.tests.common import mail_new_test_user


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopUi(HttpCase):
    def test_rep_fills_a_task_through_its_dialog(self):
        rep = mail_new_test_user(
            self.env,
            login="sop_tour_rep",
            name="Tour Rep",
            groups="sales_team.group_sale_salesman,base.group_partner_manager",
        )
        team = self.env["crm.team"].create(
            {"name": "Tour team", "member_ids": [(6, 0, rep.ids)]}
        )
        self.env["crm.lead"].create(
            {
                "name": "Tour opportunity",
                "type": "opportunity",
                "user_id": rep.id,
                "team_id": team.id,
                "stage_id": self.env.ref("crm.stage_lead1").id,
            }
        )
        self.start_tour("/odoo/crm", "crm_sales_sop_fill_task", login="sop_tour_rep")
        lead = self.env["crm.lead"].search([("name", "=", "Tour opportunity")])
        self.assertEqual(lead.sop_companions, "Her sister")
        visit = lead.sop_task_ids.filtered(
            lambda t: (
                t.task_template_id
                == self.env.ref("crm_sales_sop.crm_sop_task_visit_data")
            )
        )
        self.assertEqual(visit.state, "done")
        self.assertEqual(visit.done_user_id, rep)

    def test_rep_day_on_a_gated_deal(self):
        rep = mail_new_test_user(
            self.env,
            login="sop_day_rep",
            name="Day Rep",
            groups="sales_team.group_sale_salesman,base.group_partner_manager",
        )
        team = self.env["crm.team"].create(
            {"name": "Day team", "member_ids": [(6, 0, rep.ids)]}
        )
        self.env.ref("crm_sales_sop.crm_sop_stage_first_contact").gate = "block"
        lead = self.env["crm.lead"].create(
            {
                "name": "Gated opportunity",
                "type": "opportunity",
                "user_id": rep.id,
                "team_id": team.id,
                "stage_id": self.env.ref("crm.stage_lead1").id,
            }
        )
        lead.activity_schedule(
            "mail.mail_activity_data_call", summary="Call the customer", user_id=rep.id
        )
        self.start_tour("/odoo/crm", "crm_sales_sop_rep_day", login="sop_day_rep")
        self.assertEqual(lead.stage_id, self.env.ref("crm.stage_lead1"))
        self.assertEqual(lead.sop_companions, "Her sister")
        tasks = {task.task_template_id: task for task in lead.sop_task_ids}
        call = tasks[self.env.ref("crm_sales_sop.crm_sop_task_follow_up_call")]
        self.assertEqual(call.state, "done")
        reference = tasks[self.env.ref("crm_sales_sop.crm_sop_task_reference")]
        self.assertEqual(
            (reference.state, reference.na_reason),
            ("na", "The customer asked for none"),
        )

    def test_manager_edits_a_condition(self):
        task_template = self.env.ref("crm_sales_sop.crm_sop_task_priority")
        action = self.env.ref("crm_sales_sop.crm_sop_task_template_action")
        self.start_tour(
            f"/odoo/action-{action.id}/{task_template.id}",
            "crm_sales_sop_manager_condition",
            login="admin",
        )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopUiPhone(HttpCase):
    browser_size = "390x844"
    touch_enabled = True

    def test_rep_on_a_phone(self):
        rep = mail_new_test_user(
            self.env,
            login="sop_phone_rep",
            name="Phone Rep",
            groups="sales_team.group_sale_salesman,base.group_partner_manager",
        )
        team = self.env["crm.team"].create(
            {"name": "Phone team", "member_ids": [(6, 0, rep.ids)]}
        )
        lead = self.env["crm.lead"].create(
            {
                "name": "Phone opportunity",
                "type": "opportunity",
                "user_id": rep.id,
                "team_id": team.id,
                "stage_id": self.env.ref("crm.stage_lead1").id,
            }
        )
        self.start_tour("/odoo/crm", "crm_sales_sop_phone", login="sop_phone_rep")
        tasks = {task.task_template_id: task for task in lead.sop_task_ids}
        summary = tasks[self.env.ref("crm_sales_sop.crm_sop_task_needs_summary")]
        self.assertEqual(summary.state, "todo")
        reference = tasks[self.env.ref("crm_sales_sop.crm_sop_task_reference")]
        self.assertEqual(reference.state, "na")

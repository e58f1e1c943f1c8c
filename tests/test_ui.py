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

from odoo.exceptions import UserError
from odoo.tests import tagged, users

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopGating(TestSopCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sop_stage_contact.gate = "block"

    @users("user_sales_salesman")
    def test_block_refuses_with_missing_tasks(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        with self.assertRaises(UserError) as error:
            lead.write({"stage_id": self.stage_team1_2.id})
        message = str(error.exception)
        self.assertIn("Proposition", message)
        self.assertIn("Customer profile", message)
        self.assertIn("Visit data", message)
        self.assertIn("Welcome script", message)
        self.assertNotIn("Budget", message, "tasks of later stages do not gate")
        self.assertEqual(lead.stage_id, self.stage_team1_1)
        # once the required tasks are done, the move passes
        self.env["crm.sop.task"].sudo().search(
            [("lead_id", "=", lead.id), ("stage_id", "=", self.sop_stage_contact.id)]
        ).write({"state": "done"})
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.stage_id, self.stage_team1_2)

    @users("user_sales_salesman")
    def test_block_ignores_optional_tasks_and_backward_moves(self):
        self.tt_customer.sudo().required = False
        self.tt_script.sudo().required = False
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        lead.write({"sop_companions": "A", "sop_decision_makers": "B"})
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.stage_id, self.stage_team1_2)
        self.tt_visit.sudo().required = True
        lead.write({"sop_companions": False})
        # moving back is always allowed
        lead.write({"stage_id": self.stage_team1_1.id})
        self.assertEqual(lead.stage_id, self.stage_team1_1)

    @users("user_sales_salesman")
    def test_block_jumping_to_won(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        with self.assertRaises(UserError):
            lead.action_set_won()
        self.assertEqual(lead.stage_id, self.stage_team1_1)

    @users("user_sales_salesman")
    def test_block_batch_write_is_atomic(self):
        ok = self.env["crm.lead"].create(self._sop_lead_vals(name="OK"))
        ok.write({"sop_companions": "A", "sop_decision_makers": "B"})
        self.env["crm.sop.task"].sudo().search(
            [("lead_id", "=", ok.id), ("stage_id", "=", self.sop_stage_contact.id)]
        ).write({"state": "done"})
        blocked = self.env["crm.lead"].create(self._sop_lead_vals(name="Blocked"))
        with self.assertRaises(UserError) as error:
            (ok + blocked).write({"stage_id": self.stage_team1_2.id})
        self.assertIn("Blocked", str(error.exception))
        self.assertNotIn("“OK”", str(error.exception))
        self.assertEqual((ok + blocked).stage_id, self.stage_team1_1)

    @users("user_sales_manager")
    def test_manager_passes_block_logged(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.stage_id, self.stage_team1_2)
        message = lead.message_ids[0]
        self.assertIn("blocking Sales SOP gate", message.body)
        self.assertIn(self.env.user.name, message.body)
        self.assertIn("Customer profile", message.body)

    @users("user_sales_salesman")
    def test_warn_passes_and_logs(self):
        self.sop_stage_contact.sudo().gate = "warn"
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        lead.write({"sop_companions": "A", "sop_decision_makers": "B"})
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.stage_id, self.stage_team1_2)
        message = lead.message_ids[0]
        self.assertIn("open required Sales SOP tasks", message.body)
        self.assertIn("Customer profile", message.body)
        self.assertNotIn("Visit data", message.body)

    @users("user_sales_salesman")
    def test_none_gate_changes_nothing(self):
        self.sop_stage_contact.sudo().gate = "none"
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        count = len(lead.message_ids)
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.stage_id, self.stage_team1_2)
        self.assertEqual(
            len(lead.message_ids.filtered(lambda m: "Sales SOP" in (m.body or ""))),
            0,
        )
        self.assertGreaterEqual(len(lead.message_ids), count)

    def test_block_holds_through_external_api(self):
        """The gate is in write(): an RPC call as the rep is refused too."""
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        from odoo.service.model import execute_kw

        with self.assertRaises(UserError):
            execute_kw(
                self.env.cr.dbname,
                self.user_sales_salesman.id,
                "crm.lead",
                "write",
                [lead.ids, {"stage_id": self.stage_team1_2.id}],
                {},
            )

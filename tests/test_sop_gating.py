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
        # and is told so on screen
        self.env.cr.precommit.run()  # bus notifications are sent at commit
        notices = (
            self.env["bus.bus"]
            .sudo()
            .search([("message", "like", "Sales SOP gate passed")])
        )
        self.assertTrue(notices)

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


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopGatingCreate(TestSopCommon):
    """Creating a deal directly in a later stage is gated like moving it
    there; creating it in the first stage is not."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sop_stage_contact.gate = "block"

    def _count(self):
        return self.env["crm.lead"].sudo().search_count([("name", "like", "Jump")])

    @users("user_sales_salesman")
    def test_rep_cannot_create_past_a_block(self):
        Lead = self.env["crm.lead"]
        count = self._count()
        attempts = {
            "values": lambda: Lead.create(
                self._sop_lead_vals(name="Jump", stage_id=self.stage_team1_2.id)
            ),
            "kanban quick create": lambda: Lead.with_context(
                default_stage_id=self.stage_team1_2.id
            ).create(
                {
                    k: v
                    for k, v in self._sop_lead_vals(name="Jump").items()
                    if k != "stage_id"
                }
            ),
            "import": lambda: self._load_or_raise(Lead),
        }
        for how, attempt in attempts.items():
            with self.subTest(how=how), self.assertRaises(UserError) as error:
                attempt()
            self.assertIn("Customer profile", str(error.exception))
        # a copy into a later stage
        lead = Lead.create(self._sop_lead_vals(name="Original"))
        with self.assertRaises(UserError):
            lead.copy(default={"name": "Jump copy", "stage_id": self.stage_team1_2.id})
        self.assertEqual(self._count(), count)
        # with no stage at all, then a later one: still gated
        lead = Lead.create(self._sop_lead_vals(name="No stage", stage_id=False))
        lead.stage_id = False
        with self.assertRaises(UserError):
            lead.write({"stage_id": self.stage_team1_2.id})

    def _load_or_raise(self, Lead):
        result = Lead.load(
            ["name", "type", "team_id/.id", "stage_id/.id"],
            [
                [
                    "Jump import",
                    "opportunity",
                    str(self.sales_team_1.id),
                    str(self.stage_team1_2.id),
                ]
            ],
        )
        self.assertFalse(result["ids"])
        raise UserError(" ".join(m["message"] for m in result["messages"]))

    @users("user_sales_salesman")
    def test_create_in_first_stage_passes(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals(name="First"))
        self.assertEqual(lead.stage_id, self.stage_team1_1)
        self.assertFalse(
            lead.message_ids.filtered(lambda m: "Sales SOP" in (m.body or ""))
        )
        # and with the required tasks done (customer known), a later stage too
        self.customer.write({"sop_gender": "female", "sop_age_range": "25_34"})
        self.tt_visit.sudo().required = False
        self.tt_script.sudo().required = False
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(
                name="Known",
                partner_id=self.customer.id,
                stage_id=self.stage_team1_2.id,
            )
        )
        self.assertEqual(lead.stage_id, self.stage_team1_2)

    @users("user_sales_manager")
    def test_manager_creates_past_a_block_logged(self):
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(name="Jump", stage_id=self.stage_team1_2.id)
        )
        self.assertEqual(lead.stage_id, self.stage_team1_2)
        body = lead.message_ids[0].body
        self.assertIn("Created in", body)
        self.assertIn("blocking Sales SOP gate", body)
        self.assertIn(self.env.user.name, body)

    @users("user_sales_salesman")
    def test_warn_logs_on_create(self):
        self.sop_stage_contact.sudo().gate = "warn"
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(name="Jump", stage_id=self.stage_team1_2.id)
        )
        self.assertEqual(lead.stage_id, self.stage_team1_2)
        self.assertIn("Created in", lead.message_ids[0].body)

    @users("user_sales_salesman")
    def test_missing_task_counts_as_not_done(self):
        """A lead lacking a required task (a task template added while it was
        being created) does not slip through the gate: the task is given to
        it and counts as open."""
        self.customer.write({"sop_gender": "male", "sop_age_range": "35_44"})
        self.tt_script.sudo().required = False
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        self._task(lead, self.tt_visit).sudo().unlink()
        lead.invalidate_recordset(["sop_task_ids"])
        self.assertFalse(self._task(lead, self.tt_visit))
        with self.assertRaises(UserError) as error:
            lead.write({"stage_id": self.stage_team1_2.id})
        self.assertIn("Visit data", str(error.exception))

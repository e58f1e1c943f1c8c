from odoo.exceptions import AccessError, UserError
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
        lead.write({"x_sop_companions": "A", "x_sop_decision_makers": "B"})
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.stage_id, self.stage_team1_2)
        self.tt_visit.sudo().required = True
        lead.write({"x_sop_companions": False})
        # moving back is always allowed
        lead.write({"stage_id": self.stage_team1_1.id})
        self.assertEqual(lead.stage_id, self.stage_team1_1)

    def test_gate_says_what_it_holds_back(self):
        """Saving a gate says how many open deals it holds back; the column
        tooltip tells reps what leaving the stage needs."""
        Lead = self.env["crm.lead"]
        held = Lead.create(self._sop_lead_vals(name="Held"))
        Lead.create(self._sop_lead_vals(name="Past it", stage_id=self.stage_team1_2.id))
        done = Lead.create(self._sop_lead_vals(name="Done"))
        # set aside: what re-evaluating the playbook leaves as it is
        self.env["crm.sop.task"].search(
            [("lead_id", "=", done.id), ("stage_id", "=", self.sop_stage_contact.id)]
        ).write({"state": "na"})
        stage = self.sop_stage_contact.with_user(self.user_sales_manager)
        stage.write({"gate": "none"})
        self.assertEqual(stage.gate_hold_count, 0)
        stage.write({"gate": "warn"})
        stage.invalidate_recordset(["gate_hold_count"])
        # the same count read through the ORM: deals in New with a required
        # task of the stage open (the fixture's own deals included)
        holding = (
            self.env["crm.sop.task"]
            .search(
                [
                    ("stage_id", "=", self.sop_stage_contact.id),
                    ("state", "=", "todo"),
                    ("required", "=", True),
                    ("lead_id.stage_id", "=", self.stage_team1_1.id),
                ]
            )
            .lead_id
        )
        self.assertIn(held, holding)
        self.assertNotIn(done, holding)
        self.assertEqual(stage.gate_hold_count, len(holding))
        self.env.cr.precommit.run()
        notice = (
            self.env["bus.bus"]
            .sudo()
            .search([("message", "like", "Sales SOP gate saved")])
            .mapped("message")
        )
        self.assertTrue(notice)
        self.assertIn(f"holds back {stage.gate_hold_count} open", notice[0])
        tooltip = (
            self.stage_team1_1.with_user(self.user_sales_salesman)
            .with_context(default_team_id=self.sales_team_1.id)
            .sop_guidance
        )
        self.assertIn("Gate: leaving this stage", tooltip)
        self.assertIn("Customer profile", tooltip)

    @users("user_sales_salesman")
    def test_won_is_never_refused(self):
        """A signed deal is marked won whatever its gates: the open required
        tasks are logged in the chatter and the rep is told."""
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        lead.action_set_won()
        self.assertTrue(lead.stage_id.is_won)
        body = lead.message_ids[0].body
        self.assertIn("Won in", body)
        self.assertIn("Customer profile", body)
        self.assertIn("Welcome script", body)
        self.assertFalse(self.env["crm.sop.gate.pass"].sudo().search_count([]))
        self.assertIn("required tasks left open", self._sop_notices())

    def _sop_notices(self):
        """The on-screen notifications sent to the current user, as text."""
        self.env.cr.precommit.run()  # bus notifications are sent at commit
        return " ".join(
            self.env["bus.bus"]
            .sudo()
            .search([("message", "like", "simple_notification")])
            .mapped("message")
        )

    @users("user_sales_salesman")
    def test_block_batch_write_is_atomic(self):
        ok = self.env["crm.lead"].create(self._sop_lead_vals(name="OK"))
        ok.write({"x_sop_companions": "A", "x_sop_decision_makers": "B"})
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
        lead.write({"x_sop_companions": "A", "x_sop_decision_makers": "B"})
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.stage_id, self.stage_team1_2)
        message = lead.message_ids[0]
        self.assertIn("open required Sales SOP tasks", message.body)
        self.assertIn("Customer profile", message.body)
        self.assertNotIn("Visit data", message.body)
        # the form says it as long as they stay open, the panel too
        self.assertIn("Customer profile", lead.sop_gate_warning)
        self.assertNotIn("Visit data", lead.sop_gate_warning)
        profile = self._task(lead, self.tt_customer)
        self.assertIn("Left behind", profile.hint)
        # the rep is told on screen, with the tasks
        notices = self._sop_notices()
        self.assertIn("required tasks left open", notices)
        self.assertIn("Customer profile", notices)
        self.assertNotIn("Visit data", notices)

    @users("user_sales_salesman")
    def test_card_says_a_gate_holds_the_deal(self):
        """A deal in New with required tasks of its blocking gate open is
        held (the card's lock); done, moved past or gate lifted, it is not."""
        Lead = self.env["crm.lead"]
        lead = Lead.create(self._sop_lead_vals())
        self.assertTrue(lead.sop_gate_held)
        past = Lead.sudo().create(self._sop_lead_vals(stage_id=self.stage_team1_2.id))
        self.assertFalse(past.sop_gate_held, "a later stage is not held by New's gate")
        self.env["crm.sop.task"].sudo().search(
            [("lead_id", "=", lead.id), ("stage_id", "=", self.sop_stage_contact.id)]
        ).write({"state": "done"})
        self.env["crm.sop.engine"]._sop_update_summary(lead)
        self.assertFalse(lead.sop_gate_held)
        other = Lead.create(self._sop_lead_vals(name="Other"))
        self.assertTrue(other.sop_gate_held)
        self.sop_stage_contact.with_user(self.user_sales_manager).gate = "warn"
        other.invalidate_recordset(["sop_gate_held"])
        self.assertFalse(other.sop_gate_held, "only a block gate holds")
        self.sop_stage_contact.with_user(self.user_sales_manager).gate = "block"
        other.invalidate_recordset(["sop_gate_held"])
        self.assertTrue(other.sop_gate_held)

    @users("user_sales_salesman")
    def test_panel_marks_what_a_gate_needs(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        self.assertIn("Needed to leave “New”", self._task(lead, self.tt_visit).hint)
        self.assertFalse(lead.sop_gate_warning)
        self.tt_visit.sudo().required = False
        self._task(lead, self.tt_visit).invalidate_recordset(["hint"])
        self.assertNotIn("Needed to leave", self._task(lead, self.tt_visit).hint or "")

    @users("user_sales_salesman")
    def test_gate_added_later_holds_no_deal_past_it(self):
        """A block gate configured on New while a deal is already in a later
        stage guards leaving New only: that deal moves on (and back, and
        forward again, as long as it does not leave New)."""
        negotiation = (
            self.env["crm.stage"]
            .sudo()
            .create(
                {"name": "Negotiation", "sequence": 6, "team_id": self.sales_team_1.id}
            )
        )
        self.sop_stage_contact.sudo().gate = "none"
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(stage_id=self.stage_team1_2.id)
        )
        self.sop_stage_contact.sudo().gate = "block"
        lead.write({"stage_id": negotiation.id})
        self.assertEqual(lead.stage_id, negotiation)
        lead.write({"stage_id": self.stage_team1_2.id})
        lead.write({"stage_id": negotiation.id})
        self.assertEqual(lead.stage_id, negotiation)
        # back in New, leaving it again is gated
        lead.write({"stage_id": self.stage_team1_1.id})
        with self.assertRaises(UserError):
            lead.write({"stage_id": negotiation.id})
        self.assertEqual(lead.stage_id, self.stage_team1_1)

    def test_manager_pass_holds_for_that_deal_and_gate(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        manager_lead = lead.with_user(self.user_sales_manager)
        manager_lead.write({"stage_id": self.stage_team1_2.id})
        passes = self.env["crm.sop.gate.pass"].search([("lead_id", "=", lead.id)])
        self.assertEqual(passes.sop_stage_id, self.sop_stage_contact)
        self.assertEqual(passes.user_id, self.user_sales_manager)
        # the rep takes it back to New and forward again: the pass holds
        rep_lead = lead.with_user(self.user_sales_salesman)
        rep_lead.write({"stage_id": self.stage_team1_1.id})
        rep_lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.stage_id, self.stage_team1_2)
        # another deal is not passed
        other = self.env["crm.lead"].create(self._sop_lead_vals(name="Other"))
        with self.assertRaises(UserError):
            other.with_user(self.user_sales_salesman).write(
                {"stage_id": self.stage_team1_2.id}
            )

    @users("user_sales_salesman", "user_sales_manager")
    def test_nobody_writes_gate_passes(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        Pass = self.env["crm.sop.gate.pass"]
        for pass_model in (Pass, Pass.sudo()):
            with self.assertRaises(AccessError):
                pass_model.create(
                    {"lead_id": lead.id, "sop_stage_id": self.sop_stage_contact.id}
                )
        self.assertFalse(Pass.sudo().search_count([("lead_id", "=", lead.id)]))
        with self.assertRaises(UserError):
            lead.with_user(self.user_sales_salesman).write(
                {"stage_id": self.stage_team1_2.id}
            )

    @users("user_sales_salesman")
    def test_team_change_carries_no_deal_past_a_block(self):
        """Changing the team into a gated playbook is arriving past its
        gate: in one write with the stage (either order), or after the
        move, or by a merge into the gated team. The deal stays as it was."""
        other_team = self.env["crm.team"].sudo().create({"name": "Walk-ins"})
        Lead = self.env["crm.lead"]

        def other_lead(name):
            return Lead.create(self._sop_lead_vals(name=name, team_id=other_team.id))

        for name, vals in (
            (
                "stage then team",
                {"stage_id": self.stage_team1_2.id, "team_id": self.sales_team_1.id},
            ),
            (
                "team then stage",
                {"team_id": self.sales_team_1.id, "stage_id": self.stage_team1_2.id},
            ),
        ):
            lead = other_lead(name)
            self.assertNotEqual(lead.sop_template_id, self.playbook)
            with self.subTest(how=name), self.assertRaises(UserError):
                lead.write(vals)
            self.assertEqual(lead.team_id, other_team)
            self.assertEqual(lead.stage_id, self.stage_team1_1)
        # moved first where no gate holds it, then brought into the team
        lead = other_lead("move then team")
        lead.write({"stage_id": self.stage_team1_2.id})
        with self.assertRaises(UserError) as error:
            lead.write({"team_id": self.sales_team_1.id})
        self.assertIn("Customer profile", str(error.exception))
        self.assertEqual(lead.team_id, other_team)
        self.assertNotEqual(lead.sop_template_id, self.playbook)
        # merged into a deal of the gated team while in a later stage
        head = other_lead("merge head")
        head.write({"stage_id": self.stage_team1_2.id})
        tail = Lead.create(self._sop_lead_vals(name="merge tail"))
        with self.assertRaises(UserError):
            (head | tail)._merge_opportunity(
                user_id=self.env.uid, team_id=self.sales_team_1.id
            )
        self.assertTrue(tail.exists())
        self.assertEqual(head.team_id, other_team)

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
            if how != "import":
                # a quick create says where to create it instead
                self.assertIn("create it in “New”", str(error.exception))
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
        self.customer.write({"x_sop_gender": "female", "x_sop_age_range": "25_34"})
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
        self.customer.write({"x_sop_gender": "male", "x_sop_age_range": "35_44"})
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

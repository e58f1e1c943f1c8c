from datetime import timedelta
from unittest.mock import patch

from lxml import etree

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import Form, tagged, users, warmup

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import TestSopCommon, sop_migration


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopEngine(TestSopCommon):
    @users("user_sales_salesman")
    def test_instantiation_on_create(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        self.assertEqual(lead.sop_template_id, self.playbook)
        self.assertEqual(
            lead.sop_task_ids.task_template_id,
            self.tt_customer
            + self.tt_visit
            + self.tt_script
            + self.tt_call
            + self.tt_budget
            + self.tt_manual,
        )
        self.assertEqual(set(lead.sop_task_ids.mapped("state")), {"todo"})
        self.assertEqual(lead.sop_progress, 0)
        self.assertEqual(lead.sop_stage_id, self.sop_stage_contact)
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_customer)
        self.assertEqual(lead.sop_task_ids.user_id, self.env.user)
        self.assertIn("Get to know", lead.sop_stage_guidance)

    def test_fallback_playbook_and_team_change(self):
        default = self.env.ref("crm_sales_sop.crm_sop_template_default")
        other_team = self.env["crm.team"].create({"name": "Other team"})
        lead = self.env["crm.lead"].create(self._sop_lead_vals(team_id=other_team.id))
        self.assertEqual(lead.sop_template_id, default)
        self.assertEqual(lead.sop_task_ids.task_template_id.template_id, default)
        # a done task of the old playbook is archived, open ones are deleted
        done_task = lead.sop_task_ids.filtered(lambda t: t.kind == "manual")[:1]
        done_task.action_sop_mark_done()
        lead.team_id = self.sales_team_1
        self.assertEqual(lead.sop_template_id, self.playbook)
        self.assertEqual(lead.sop_task_ids.task_template_id.template_id, self.playbook)
        archived = (
            self.env["crm.sop.task"]
            .with_context(active_test=False)
            .search([("lead_id", "=", lead.id), ("active", "=", False)])
        )
        self.assertEqual(archived, done_task)
        self.assertEqual(archived.state, "done")
        # back to the other team: the history comes back with its state
        lead.team_id = other_team
        self.assertIn(done_task, lead.sop_task_ids)
        self.assertEqual(done_task.state, "done")

    def test_a_playbook_back_gives_its_deals_their_history(self):
        """Deals waiting for their playbook's tasks get the ones archived
        with it back as they were, decided as they are: ticked by hand stays
        done, a task whose data was cleared meanwhile is open again."""
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(
                x_sop_companions="Husband", x_sop_decision_makers="Both"
            )
        )
        manual, visit = (
            self._task(lead, self.tt_manual),
            self._task(lead, self.tt_visit),
        )
        manual.action_sop_mark_done()
        self.assertEqual(visit.state, "done")
        playbooks = self.env["crm.sop.template"].search([])
        playbooks.action_archive()
        self.assertFalse(lead.sop_template_id)
        self.assertFalse((manual | visit).filtered("active"))
        lead.x_sop_decision_makers = False
        playbooks.action_unarchive()
        self.assertEqual(lead.sop_template_id, self.playbook)
        self.assertTrue(manual.active and visit.active)
        self.assertEqual(manual.state, "done")
        self.assertEqual(manual.completion, "manual")
        self.assertEqual(visit.state, "todo")
        self.assertEqual(len(lead.sop_task_ids), 6)
        self.assertEqual(lead.sop_progress, 17)  # 1 of 6
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_customer)

    def test_no_playbook(self):
        self.env["crm.sop.template"].search([]).action_archive()
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        self.assertFalse(lead.sop_template_id)
        self.assertFalse(lead.sop_task_ids)
        self.assertEqual(lead.sop_progress, 0)

    @users("user_sales_salesman")
    def test_fields_task_opportunity_scope(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        task = self._task(lead, self.tt_visit)
        lead.x_sop_companions = "Husband"
        self.assertEqual(task.state, "todo", "one of two fields is not enough")
        lead.x_sop_decision_makers = "Both"
        self.assertEqual(task.state, "done")
        self.assertEqual(task.completion, "auto")
        self.assertEqual(task.done_user_id, self.env.user)
        self.assertTrue(task.date_done)
        self.assertEqual(lead.sop_progress, 17)  # 1 of 6
        # clearing the data reopens the task; the first completion's credit
        # stays (it counts nowhere while the task is open)
        done_on = task.date_done
        lead.x_sop_companions = False
        self.assertEqual(task.state, "todo")
        self.assertEqual(lead.sop_progress, 0)
        self.assertEqual((task.date_done, task.done_user_id), (done_on, self.env.user))

    @users("user_sales_salesman")
    def test_fields_task_customer_scope_shared(self):
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        task = self._task(lead, self.tt_customer)
        self.assertEqual(task.state, "todo")
        self.customer.write({"x_sop_gender": "female", "x_sop_age_range": "35_44"})
        self.assertEqual(task.state, "done")
        # a second opportunity of the same customer starts with it done
        lead2 = self.env["crm.lead"].create(
            self._sop_lead_vals(name="Second", partner_id=self.customer.id)
        )
        self.assertEqual(self._task(lead2, self.tt_customer).state, "done")
        # clearing the customer's data reopens it on both
        self.customer.x_sop_age_range = False
        self.assertEqual(task.state, "todo")
        self.assertEqual(self._task(lead2, self.tt_customer).state, "todo")
        # changing the customer of the opportunity re-evaluates
        known = self.env["res.partner"].create(
            {"name": "Known", "x_sop_gender": "male", "x_sop_age_range": "25_34"}
        )
        lead.partner_id = known
        self.assertEqual(task.state, "done")

    def test_fields_tasks_of_a_batch_read_each_deal_and_customer(self):
        """Evaluated in one batch, the fields read for all the deals and
        customers at once: each task is done exactly when its own deal, or
        its own customer, has every field set (partners shared, missing,
        half filled; deals half filled), as read through each record."""
        Partner = self.env["res.partner"]
        full = Partner.create(
            {"name": "Full", "x_sop_gender": "female", "x_sop_age_range": "35_44"}
        )
        half = Partner.create({"name": "Half", "x_sop_gender": "male"})
        visit = {"x_sop_companions": "Spouse", "x_sop_decision_makers": "Both"}
        vals = [
            {"partner_id": full.id, **visit},
            {"partner_id": half.id, "x_sop_companions": "Spouse"},
            {"partner_id": False, **visit},
            {"partner_id": full.id},
            {"partner_id": half.id, **visit},
        ]
        leads = self.env["crm.lead"].create(
            [self._sop_lead_vals(name=f"Batch {i}", **v) for i, v in enumerate(vals)]
        )
        expected = {
            (self.tt_customer, lead): bool(
                lead.partner_id.x_sop_gender and lead.partner_id.x_sop_age_range
            )
            for lead in leads
        } | {
            (self.tt_visit, lead): bool(
                lead.x_sop_companions and lead.x_sop_decision_makers
            )
            for lead in leads
        }
        self.assertEqual(
            [done for (_tt, _lead), done in expected.items()],
            [True, False, False, True, False, True, False, True, False, True],
        )
        for (tt, lead), done in expected.items():
            self.assertEqual(
                self._task(lead, tt).state, "done" if done else "todo", lead.name
            )
        # evaluated again in one batch after the customers change
        half.x_sop_age_range = "25_34"
        full.x_sop_gender = False
        for lead in leads:
            self.assertEqual(
                self._task(lead, self.tt_customer).state,
                "done" if lead.partner_id == half else "todo",
                lead.name,
            )

    def test_deal_write_through_its_customer_evaluates_once(self):
        """A deal's phone is its customer's (core's inverse writes the
        customer inside the deal's write): with a task watching the
        customer's phone, the deal and the customer's other deals are
        evaluated once, after the deal's write, with the deal's own fields:
        every task as the data is, one evaluation, not two."""
        self.tt_customer.field_ids = self.env["ir.model.fields"]._get(
            "res.partner", "phone"
        )
        other_customer = self.env["res.partner"].create({"name": "Li Lei"})
        deal, sibling, stranger = self.env["crm.lead"].create(
            [
                self._sop_lead_vals(name="Deal", partner_id=self.customer.id),
                self._sop_lead_vals(name="Sibling", partner_id=self.customer.id),
                self._sop_lead_vals(name="Stranger", partner_id=other_customer.id),
            ]
        )
        Engine = type(self.env["crm.sop.engine"])
        original = Engine._sop_evaluate
        evaluated = []

        def counted(engine, leads, *args, **kwargs):
            evaluated.append(set(leads.ids))
            return original(engine, leads, *args, **kwargs)

        with patch.object(Engine, "_sop_evaluate", counted):
            deal.with_user(self.user_sales_salesman).write(
                {
                    "phone": "+86 10 1234 5678",
                    "x_sop_companions": "Spouse",
                    "x_sop_decision_makers": "Both",
                }
            )
        self.assertEqual(self.customer.phone, "+86 10 1234 5678")
        self.assertEqual(evaluated, [{deal.id, sibling.id}])
        for lead, done in ((deal, True), (sibling, True), (stranger, False)):
            self.assertEqual(
                self._task(lead, self.tt_customer).state,
                "done" if done else "todo",
                lead.name,
            )
        self.assertEqual(self._task(deal, self.tt_visit).state, "done")
        self.assertEqual(deal.sop_next_task_id, self._task(deal, self.tt_script))
        # the customer written alone still evaluates its deals at once
        evaluated.clear()
        with patch.object(Engine, "_sop_evaluate", counted):
            self.customer.phone = False
        self.assertEqual(evaluated, [{deal.id, sibling.id}])
        self.assertEqual(self._task(sibling, self.tt_customer).state, "todo")
        self.assertEqual(deal.sop_next_task_id, self._task(deal, self.tt_customer))

    @users("user_sales_salesman")
    def test_condition_task(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        task = self._task(lead, self.tt_budget)
        self.assertEqual(task.state, "todo")
        lead.expected_revenue = 5000
        self.assertEqual(task.state, "done")
        lead.expected_revenue = 0
        self.assertEqual(task.state, "todo")

    @users("user_sales_salesman")
    def test_activity_task(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        task = self._task(lead, self.tt_call)
        todo = self.env["mail.activity"].create(
            {
                "res_model_id": self.env["ir.model"]._get_id("crm.lead"),
                "res_id": lead.id,
                "activity_type_id": self.env.ref("mail.mail_activity_data_todo").id,
                "user_id": self.env.uid,
            }
        )
        todo.action_feedback("other type")
        self.assertEqual(task.state, "todo", "an activity of another type is not it")
        call = lead.activity_schedule("mail.mail_activity_data_call")
        self.assertEqual(task.state, "todo", "scheduled is not done")
        call.action_feedback("Called, she will come Saturday")
        self.assertEqual(task.state, "done")
        self.assertEqual(task.completion, "auto")
        # what completed it is the product's own record of the activities done
        done = self.env["crm.sop.activity.done"].search([("lead_id", "=", lead.id)])
        self.assertEqual(
            sorted(done.mapped("activity_type_id.id")),
            sorted(
                [
                    self.activity_type_call.id,
                    self.env.ref("mail.mail_activity_data_todo").id,
                ]
            ),
        )
        self.assertEqual(done.user_id, self.env.user)

    @users("user_sales_salesman")
    @warmup
    def test_activity_done_budget(self):
        """Marking an activity done on a deal costs one INSERT more than
        core (the record of the activity done), whatever its type; a watched
        type also evaluates the deal."""
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        call = lead.activity_schedule("mail.mail_activity_data_call")
        todo = lead.activity_schedule("mail.mail_activity_data_todo")
        self.env.flush_all()
        self.env.invalidate_all()
        # before the record of activities done: 17 and 26
        with self.assertQueryCount(user_sales_salesman=18):
            todo.action_feedback("Done")
        self.env.invalidate_all()
        # 27, and the done task's task analysis row written in place
        with self.assertQueryCount(user_sales_salesman=28):
            call.action_feedback("Called")
        self.assertEqual(self._task(lead, self.tt_call).state, "done")

    def test_activity_done_before_the_task_exists(self):
        """An activity done before its task was added to the playbook
        completes the task once added, as it did when the chatter was read."""
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        lead.activity_schedule(
            "mail.mail_activity_data_meeting", user_id=self.user_sales_salesman.id
        ).with_user(self.user_sales_salesman).action_feedback("Met")
        task_template = self.env["crm.sop.task.template"].create(
            {
                "name": "Meet",
                "stage_id": self.sop_stage_pitch.id,
                "kind": "activity",
                "activity_type_id": self.env.ref("mail.mail_activity_data_meeting").id,
            }
        )
        self.assertEqual(self._task(lead, task_template).state, "done")

    def test_migration_keeps_done_activity_tasks(self):
        """18.0.1.2.0: the activity tasks done before the upgrade stay done
        (backfilled from the tasks, archived ones included); a task left open
        stays open whatever the chatter says."""
        Lead = self.env["crm.lead"]
        called = Lead.create(self._sop_lead_vals(name="Called"))
        called.activity_schedule(
            activity_type_id=self.activity_type_call.id,
            user_id=self.user_sales_salesman.id,
        ).with_user(self.user_sales_salesman).action_feedback("Called")
        task = self._task(called, self.tt_call)
        self.assertEqual(task.state, "done")
        # history of a former playbook: done, then archived by a team change
        moved = Lead.create(self._sop_lead_vals(name="Moved"))
        moved.activity_schedule(
            activity_type_id=self.activity_type_call.id, user_id=self.env.uid
        ).action_feedback("Called")
        moved_task = self._task(moved, self.tt_call)
        moved.team_id = self.env["crm.team"].create({"name": "Elsewhere"})
        self.assertFalse(moved_task.active)
        self.assertEqual(moved_task.state, "done")
        # a message carrying the type, as anybody could post before
        forged = Lead.create(self._sop_lead_vals(name="Forged"))
        forged.message_post(
            body="Called", mail_activity_type_id=self.activity_type_call.id
        )
        leads = called + moved + forged
        # the database before the upgrade: no record of activities done
        self.env.cr.execute(
            "DELETE FROM crm_sop_activity_done WHERE lead_id = ANY(%s)", [leads.ids]
        )
        Ledger = self.env["crm.sop.activity.done"]
        Ledger.invalidate_model()
        migration = sop_migration("18.0.1.2.0", "post-activity_done.py")
        for _run in range(2):  # run twice: nothing doubles
            migration.migrate(self.env.cr, "18.0.1.1.0")
        rows = Ledger.search([("lead_id", "in", leads.ids)])
        self.assertEqual(rows.lead_id, called + moved)
        row = rows.filtered(lambda r: r.lead_id == called)
        self.assertEqual(row.activity_type_id, self.activity_type_call)
        self.assertEqual(row.user_id, self.user_sales_salesman)
        self.assertEqual(row.date, task.date_done)
        self.env["crm.sop.engine"]._sop_evaluate(leads)
        self.assertEqual(task.state, "done")
        self.assertEqual(self._task(forged, self.tt_call).state, "todo")
        # the archived task is done again when the deal comes back
        moved.team_id = self.sales_team_1
        self.assertTrue(moved_task.active)
        self.assertEqual(moved_task.state, "done")

    @users("user_sales_salesman")
    def test_script_task_from_composer(self):
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        task = self._task(lead, self.tt_script)
        action = task.action_sop_edit_script()
        self.assertEqual(action["res_model"], "mail.compose.message")
        composer = Form(
            self.env["mail.compose.message"].with_context(**action["context"])
        )
        self.assertIn("Wang Fang", composer.body)
        # delivered through mail's test gateway (the test mode has no SMTP: a
        # script refused by the mail server leaves its task open)
        with self.mock_mail_gateway():
            composer.save().action_send_mail()
        self.assertEqual(task.state, "done")
        self.assertTrue(task.date_script_sent)
        message = lead.message_ids[0]
        self.assertIn("Wang Fang", message.body)

    @users("user_sales_salesman")
    def test_script_task_normal_composer_and_log(self):
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        task = self._task(lead, self.tt_script)
        # a log note with the template does not count: the customer got nothing
        ctx = {
            "default_model": "crm.lead",
            "default_res_ids": lead.ids,
            "default_template_id": self.mail_template.id,
            "default_subtype_id": self.env.ref("mail.mt_note").id,
        }
        Form(
            self.env["mail.compose.message"].with_context(**ctx)
        ).save().action_send_mail()
        self.assertEqual(task.state, "todo")
        ctx.pop("default_subtype_id")
        with self.mock_mail_gateway():  # delivered (see above)
            Form(
                self.env["mail.compose.message"].with_context(**ctx)
            ).save().action_send_mail()
        self.assertEqual(task.state, "done")

    @users("user_sales_salesman")
    def test_manual_task(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        task = self._task(lead, self.tt_manual)
        task.action_sop_mark_done()
        self.assertEqual(task.state, "done")
        self.assertEqual(task.completion, "manual")
        self.assertEqual(task.done_user_id, self.env.user)
        # the engine leaves hand-ticked tasks alone
        lead.x_sop_companions = "Someone"
        self.assertEqual(task.state, "done")
        task.action_sop_reopen()
        self.assertEqual(task.state, "todo")
        # other kinds cannot be ticked by hand
        with self.assertRaises(UserError):
            self._task(lead, self.tt_visit).action_sop_mark_done()
        self.assertEqual(self._task(lead, self.tt_visit).state, "todo")

    def _sop_tick_snapshot(self, tasks):
        tasks.invalidate_recordset()
        return tasks.read(
            ["state", "completion", "date_done", "done_user_id", "na_reason", "active"]
        )

    def test_kind_switch_keeps_hand_ticks(self):
        """A task ticked by hand keeps its ticks: switching its kind is
        refused, saying what to do instead; archiving it keeps them."""
        Lead = self.env["crm.lead"]
        rep = self.user_sales_salesman
        ticked_lead = Lead.with_user(rep).create(self._sop_lead_vals(name="Ticked"))
        ticked = self._task(ticked_lead, self.tt_manual)
        ticked.action_sop_mark_done()
        # a tick archived with a former playbook counts too
        moved_lead = Lead.create(self._sop_lead_vals(name="Moved"))
        archived = self._task(moved_lead, self.tt_manual)
        archived.action_sop_mark_done()
        moved_lead.team_id = self.env["crm.team"].create({"name": "Elsewhere"})
        self.assertFalse(archived.active)
        tasks = (ticked + archived).sudo()
        before = self._sop_tick_snapshot(tasks)
        task_template = self.tt_manual.with_user(self.user_sales_manager)
        switches = [
            {"kind": "fields", "field_ids": [(6, 0, self.field_lead_companions.ids)]},
            {"kind": "condition", "domain": "[('expected_revenue', '>', 0)]"},
            {"kind": "activity", "activity_type_id": self.activity_type_call.id},
            {"kind": "script", "mail_template_id": self.mail_template.id},
        ]
        for vals in switches:
            with self.subTest(kind=vals["kind"]):
                with self.assertRaisesRegex(UserError, "Archive this task instead"):
                    task_template.write(vals)
                self.assertEqual(self.tt_manual.kind, "manual")
                self.assertEqual(self._sop_tick_snapshot(tasks), before)
        # only the archived tick left: still refused
        ticked.with_user(rep).action_sop_reopen()
        with self.assertRaisesRegex(UserError, "ticked by hand on 1 opportunities"):
            task_template.write(switches[0])
        self.assertEqual(self.tt_manual.kind, "manual")
        # what the message says to do: the history is archived with the task
        task_template.action_archive()
        self.assertEqual(self._sop_tick_snapshot(archived), before[1:])
        self.assertFalse(self._task(ticked_lead, self.tt_manual))

    def test_archiving_the_next_step_moves_it_on(self):
        """A manager archives the task that is a deal's next step: the deal's
        next step is its next open task, not none (the archived task's open
        rows are deleted, and with them the key that named it)."""
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        self.env.flush_all()
        first = lead.sop_next_task_id
        archived = first.task_template_id
        self.assertTrue(first)
        archived.with_user(self.user_sales_manager).action_archive()
        self.env.invalidate_all()
        self.assertFalse(first.exists())
        self.assertTrue(lead.sop_next_task_id)
        self.assertEqual(lead.sop_next_task_id.state, "todo")
        self.assertNotEqual(lead.sop_next_task_id.task_template_id, archived)

    def test_kind_switch_without_ticks(self):
        """Without hand ticks a task may change kind, back and forth; tasks
        set aside stay set aside with their reason."""
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        aside_lead = self.env["crm.lead"].create(self._sop_lead_vals(name="Aside"))
        aside = self._task(aside_lead, self.tt_manual)
        aside.with_user(self.user_sales_salesman)._sop_set_aside("Bought elsewhere")
        task_template = self.tt_manual.with_user(self.user_sales_manager)
        task_template.write(
            {"kind": "fields", "field_ids": [(6, 0, self.field_lead_companions.ids)]}
        )
        lead.x_sop_companions = "Her sister"
        self.assertEqual(self._task(lead, self.tt_manual).state, "done")
        self.assertEqual(self._task(lead, self.tt_manual).completion, "auto")
        self.assertEqual(aside.state, "na")
        task_template.write({"kind": "manual"})
        self.assertEqual(self._task(lead, self.tt_manual).state, "done")
        self.assertEqual(aside.state, "na")
        self.assertEqual(aside.na_reason, "Bought elsewhere")
        # done by the system, not by hand: switching again is allowed
        task_template.write(
            {"kind": "condition", "domain": "[('expected_revenue', '<', 0)]"}
        )
        self.assertEqual(self._task(lead, self.tt_manual).state, "todo")
        self.assertEqual(aside.state, "na")

    @users("user_sales_salesman")
    def test_summary_next_step_and_stage(self):
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        self.customer.write({"x_sop_gender": "male", "x_sop_age_range": "25_34"})
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_visit)
        lead.write({"x_sop_companions": "A", "x_sop_decision_makers": "B"})
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_script)
        self.assertEqual(lead.sop_stage_id, self.sop_stage_contact)
        self.env["crm.sop.script.send"]._sop_record(lead, self.mail_template, "copy")
        # the SOP stage follows the pipeline: still the contact stage, its
        # work done, the next step is the first task ahead
        self.assertEqual(lead.sop_stage_id, self.sop_stage_contact)
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_call)
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.sop_stage_id, self.sop_stage_pitch)
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_call)
        self.assertEqual(lead.sop_progress, 50)
        # done tasks sink below open ones within their stage
        pitch_tasks = lead.sop_task_ids.filtered(
            lambda t: t.stage_id == self.sop_stage_pitch
        )
        self._task(lead, self.tt_manual).action_sop_mark_done()
        lead.invalidate_recordset(["sop_task_ids"])
        pitch_tasks = lead.sop_task_ids.filtered(
            lambda t: t.stage_id == self.sop_stage_pitch
        )
        self.assertEqual(pitch_tasks.mapped("state"), ["todo", "todo", "done"])
        self.assertEqual(
            lead.sop_task_ids.mapped("stage_id"),
            self.sop_stage_contact + self.sop_stage_pitch,
        )

    @users("user_sales_salesman")
    def test_summary_follows_pipeline(self):
        """A deal further down the pipeline than its SOP shows the SOP stage
        of its pipeline stage; its next step is a task of that stage
        (required first), then a required task left behind, never an
        optional one left behind."""
        self.tt_manual.sudo().sequence = 5  # optional, before the call
        self.tt_visit.sudo().required = False
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(
                partner_id=self.customer.id,
                stage_id=self.stage_team1_2.id,
                expected_revenue=100,
            )
        )
        self.assertEqual(lead.sop_stage_id, self.sop_stage_pitch)
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_call)
        self.assertTrue(self._task(lead, self.tt_customer).left_behind)
        lead.activity_schedule("mail.mail_activity_data_call").action_feedback("Ok")
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_manual)
        self._task(lead, self.tt_manual).action_sop_mark_done()
        # the stage's work done: a required task left behind
        self.assertEqual(lead.sop_stage_id, self.sop_stage_pitch)
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_customer)
        self.assertTrue(lead.sop_next_task_id.left_behind)
        self.customer.write({"x_sop_gender": "male", "x_sop_age_range": "25_34"})
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_script)
        self.env["crm.sop.script.send"]._sop_record(lead, self.mail_template, "copy")
        # only the optional visit data is left behind: no next step
        self.assertEqual(self._task(lead, self.tt_visit).state, "todo")
        self.assertFalse(lead.sop_next_task_id)
        self.assertEqual(lead.sop_stage_id, self.sop_stage_pitch)

    def test_batch_create_evaluates_all(self):
        self.customer.write({"x_sop_gender": "male", "x_sop_age_range": "25_34"})
        leads = self.env["crm.lead"].create(
            [
                self._sop_lead_vals(name=f"Batch {i}", partner_id=self.customer.id)
                for i in range(5)
            ]
            + [self._sop_lead_vals(name="Rich", expected_revenue=100)]
        )
        self.assertEqual(len(leads.sop_task_ids), 36)
        done = leads.sop_task_ids.filtered(lambda t: t.state == "done")
        self.assertEqual(done.task_template_id, self.tt_customer + self.tt_budget)
        self.assertEqual(len(done), 6)

    def test_batch_summary_is_each_deals_own(self):
        """Deals of one playbook created together share what the summary
        works out of the playbook and the pipeline stage, never what their
        own tasks say: each gets the progress, SOP stage and next step it
        gets when created alone."""
        profiled = self.env["res.partner"].create(
            {"name": "Li Na", "x_sop_gender": "female", "x_sop_age_range": "25_34"}
        )
        visit = {"x_sop_companions": "Spouse", "x_sop_decision_makers": "Both"}
        pitch = {"stage_id": self.stage_team1_2.id}
        vals_list = [
            self._sop_lead_vals(name="Blank", partner_id=self.customer.id),
            self._sop_lead_vals(name="Profiled", partner_id=profiled.id),
            self._sop_lead_vals(name="Visited", partner_id=profiled.id, **visit),
            self._sop_lead_vals(
                name="Visit only", partner_id=self.customer.id, **visit
            ),
            self._sop_lead_vals(name="Pitch", partner_id=self.customer.id, **pitch),
            self._sop_lead_vals(
                name="Pitch, budget", expected_revenue=100, **pitch, **visit
            ),
        ]

        def summary(lead):
            return (
                lead.name,
                lead.sop_progress,
                lead.sop_stage_id,
                lead.sop_next_task_id.task_template_id,
            )

        batch = self.env["crm.lead"].create(vals_list)
        alone = self.env["crm.lead"].concat(
            *(self.env["crm.lead"].create(vals) for vals in vals_list)
        )
        self.assertEqual(
            [summary(lead) for lead in batch], [summary(lead) for lead in alone]
        )
        # and they differ: the batch did not give one deal's to the others
        self.assertEqual(
            [lead.sop_next_task_id.task_template_id for lead in batch],
            [
                self.tt_customer,
                self.tt_visit,
                self.tt_script,
                self.tt_customer,
                self.tt_call,
                self.tt_call,
            ],
        )
        self.assertEqual(batch[:3].mapped("sop_progress"), [0, 17, 33])
        self.assertEqual(batch[4:].mapped("sop_stage_id"), self.sop_stage_pitch)

    def test_playbook_edit_reaches_open_opportunities(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        won = self.env["crm.lead"].create(
            self._sop_lead_vals(name="Won", stage_id=self.stage_team1_won.id)
        )
        self.assertEqual(won.probability, 100)
        # a new task appears on the open opportunity, not on the won one
        new_tt = self.env["crm.sop.task.template"].create(
            {
                "name": "Companions",
                "stage_id": self.sop_stage_contact.id,
                "kind": "fields",
                "field_ids": [(6, 0, self.field_lead_companions.ids)],
            }
        )
        lead.invalidate_recordset()
        self.assertIn(new_tt, lead.sop_task_ids.task_template_id)
        self.assertNotIn(new_tt, won.sop_task_ids.task_template_id)
        # ... already evaluated
        lead.x_sop_companions = "Wife"
        self.assertEqual(self._task(lead, new_tt).state, "done")
        self.assertEqual(self._task(lead, self.tt_visit).state, "todo")
        # removing it keeps the history of the done task
        done_task = self._task(lead, new_tt)
        new_tt.unlink()
        self.assertTrue(new_tt.exists())
        self.assertFalse(new_tt.active)
        self.assertTrue(done_task.exists())
        self.assertEqual(done_task.state, "done")
        self.assertFalse(done_task.active)
        lead.invalidate_recordset()
        self.assertNotIn(done_task, lead.sop_task_ids)
        # a task template without history is really deleted, with its open tasks
        budget_task = self._task(lead, self.tt_budget)
        self.tt_budget.unlink()
        self.assertFalse(self.tt_budget.exists())
        self.assertFalse(budget_task.exists())
        # progress follows the playbook: 0 of 5 tasks
        self.assertEqual(lead.sop_progress, 0)

    def test_playbook_config_change_reevaluates(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals(expected_revenue=10))
        task = self._task(lead, self.tt_budget)
        self.assertEqual(task.state, "done")
        self.tt_budget.domain = "[('expected_revenue', '>', 1000)]"
        self.assertEqual(task.state, "todo")
        # archiving the stage hides its tasks, restoring brings them back
        self.sop_stage_pitch.action_archive()
        lead.invalidate_recordset()
        self.assertNotIn(task, lead.sop_task_ids)
        self.sop_stage_pitch.action_unarchive()
        lead.invalidate_recordset()
        self.assertIn(self.tt_budget, lead.sop_task_ids.task_template_id)

    def test_lost_and_restored(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        lead.action_set_lost()
        self.assertEqual(lead.sop_template_id, self.playbook)
        lead.toggle_active()
        self.assertTrue(lead.active)
        self.assertEqual(len(lead.sop_task_ids), 6)

    def test_kanban_tooltip_guidance(self):
        self.assertIn("Get to know", self.stage_team1_1.sop_guidance)
        self.assertFalse(self.stage_team1_won.sop_guidance)
        kanban = self.env.ref("crm.crm_case_kanban_view_leads")
        arch = self.env["crm.lead"].get_view(kanban.id, "kanban")["arch"]
        self.assertIn("sop_guidance", arch, "the column tooltip shows the guidance")

    @users("user_sales_salesman")
    def test_fill_in_dialog(self):
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        task = self._task(lead, self.tt_visit)
        action = task.action_sop_open()
        self.assertEqual((action["res_model"], action["res_id"]), ("crm.lead", lead.id))
        Lead = self.env["crm.lead"].with_context(**action["context"])
        arch = Lead.get_view(view_type="form")["arch"]
        self.assertIn('name="x_sop_companions"', arch)
        self.assertIn('name="x_sop_decision_makers"', arch)
        self.assertNotIn('name="expected_revenue"', arch)
        with Form(lead.with_context(**action["context"])) as form:
            form.x_sop_companions = "Her mother"
            form.x_sop_decision_makers = "Her"
        self.assertEqual(task.state, "done")
        # customer task: the dialog edits the customer, with the guidance
        customer_task = self._task(lead, self.tt_customer)
        action = customer_task.action_sop_open()
        self.assertEqual(
            (action["res_model"], action["res_id"]), ("res.partner", self.customer.id)
        )
        Partner = self.env["res.partner"].with_context(**action["context"])
        arch = Partner.get_view(view_type="form")["arch"]
        self.assertIn('name="x_sop_gender"', arch)
        self.assertIn("Ask politely.", arch.replace("*", ""))
        self.assertNotIn("<b>", arch)
        # the normal form is untouched without the key
        self.assertIn(
            'name="expected_revenue"',
            self.env["crm.lead"].get_view(view_type="form")["arch"],
        )

    def test_opportunity_profile_shows_collected_data(self):
        """The deal's form shows what the playbooks collect on the deal: the
        default playbook's fields are its data, a field added to a task
        appears, and without any the group goes."""
        Lead = self.env["crm.lead"].with_user(self.user_sales_salesman)
        arch = etree.fromstring(Lead.get_view(view_type="form")["arch"])
        profile = arch.xpath("//group[@name='sop_profile']")
        self.assertEqual(len(profile), 1)
        names = profile[0].xpath("./field/@name")
        self.assertIn("x_sop_companions", names)
        self.assertIn("x_sop_intended_style", names)
        self.assertNotIn("source_id", names, "shown elsewhere in the form")
        field = self._custom_char_field("crm.lead", "x_sop_budget_note", "Budget")
        self.assertNotIn("x_sop_budget_note", Lead.get_view(view_type="form")["arch"])
        self.tt_visit.field_ids += field
        arch = etree.fromstring(Lead.get_view(view_type="form")["arch"])
        self.assertIn(
            "x_sop_budget_note", arch.xpath("//group[@name='sop_profile']/field/@name")
        )
        self.env["crm.sop.template"].search([]).action_archive()
        arch = Lead.get_view(view_type="form")["arch"]
        self.assertNotIn("sop_profile", arch)
        self.assertNotIn("x_sop_companions", arch)

    def test_collected_fields_read_together_as_the_user_may(self):
        """What the playbooks collect is read together for the panel's hints,
        only the fields the user may read: a field of another playbook kept
        to a group stays unread (no access error for the rep)."""
        restricted = self.env["ir.model.fields"]._get("res.partner", "signup_type")
        self.assertTrue(self.env["res.partner"]._fields["signup_type"].groups)
        basic = self.env.ref("crm_sales_sop.crm_sop_task_basic_data")
        basic.field_ids += restricted
        self.assertIn(
            "signup_type",
            self.env["crm.sop.task.template"]._sop_collected_fields("res.partner"),
        )
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        self.env.invalidate_all()
        data = lead.with_user(self.user_sales_salesman).web_read(
            {"sop_task_ids": {"fields": {"hint": {}}}}
        )[0]
        self.assertTrue(data["sop_task_ids"])

    def test_customer_centre_shows_collected_data(self):
        field = self._custom_char_field(
            "res.partner", "x_sop_budget_band", "Budget band"
        )
        Partner = self.env["res.partner"].with_user(self.user_sales_salesman)
        arch = Partner.get_view(view_type="form")["arch"]
        self.assertIn('name="x_sop_gender"', arch)
        self.assertNotIn("x_sop_budget_band", arch)
        self.tt_customer.field_ids += field
        arch = Partner.get_view(view_type="form")["arch"]
        self.assertIn('name="x_sop_budget_band"', arch)
        # the opportunities with their SOP progress
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        lead.x_sop_companions = "Husband"
        lead.x_sop_decision_makers = "Both"
        # another rep's deal of the same customer: not the rep's to read
        # (crm's personal rule); the manager sees both, newest first
        other = self.env["crm.lead"].create(
            self._sop_lead_vals(
                partner_id=self.customer.id, user_id=self.user_sales_leads.id
            )
        )
        data = self.customer.with_user(self.user_sales_salesman).web_read(
            {"sop_opportunity_ids": {"fields": {"sop_progress": {}, "name": {}}}}
        )[0]
        self.assertEqual(
            data["sop_opportunity_ids"],
            [{"id": lead.id, "sop_progress": 17, "name": lead.name}],
        )
        self.env.invalidate_all()
        customer = self.customer.with_user(self.user_sales_manager)
        self.assertEqual(customer.sop_opportunity_ids.ids, [other.id, lead.id])
        # computed, no inverse kept in the cache by each deal created: a deal
        # created meanwhile is there at the next read of the customer
        third = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        customer.invalidate_recordset(["sop_opportunity_ids"])
        self.assertIn(third, customer.sop_opportunity_ids)
        # a list to read: a rep's write of it through the customer (a
        # one2many's unlink command would empty the deal's customer) changes
        # no deal
        self.customer.with_user(self.user_sales_salesman).write(
            {"sop_opportunity_ids": [Command.unlink(lead.id)]}
        )
        self.env.invalidate_all()
        self.assertEqual(lead.partner_id, self.customer)
        self.assertIn(lead, customer.sop_opportunity_ids)

    @users("user_sales_salesman")
    def test_script_sent_to_nobody_does_not_count(self):
        """A walk-in with a phone and no email: posting the script in the
        chatter reaches nobody, so its task stays open."""
        walk_in = self.env["res.partner"].create({"name": "Zhao Min"})
        lead = self.env["crm.lead"].create(self._sop_lead_vals(partner_id=walk_in.id))
        task = self._task(lead, self.tt_script)
        composer = Form(
            self.env["mail.compose.message"].with_context(
                **task.action_sop_edit_script()["context"]
            )
        )
        composer.save().action_send_mail()
        self.assertIn("Zhao Min", lead.message_ids[0].body)
        self.assertEqual(task.state, "todo")
        self.assertFalse(task.date_script_sent)

    def test_credit_stays_with_who_completed_first(self):
        """A rep who cannot read a colleague's deal clears and re-fills a
        field of their shared customer: the colleague's task goes undone,
        then done again, with its credit (who, when) unchanged, and the
        board's "tasks completed" of both reps is what it was."""
        intruder = mail_new_test_user(
            self.env,
            login="sop_intruder",
            groups="sales_team.group_sale_salesman,base.group_partner_manager",
        )
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        customer = self.customer.with_user(self.user_sales_salesman)
        customer.write({"x_sop_gender": "female", "x_sop_age_range": "25_34"})
        task = self._task(lead, self.tt_customer)
        self.assertEqual(task.state, "done")
        credit = (task.date_done, task.done_user_id)
        self.assertEqual(credit[1], self.user_sales_salesman)
        self.assertFalse(lead.with_user(intruder).has_access("read"))

        def board(user):
            Board = self.env["crm.sop.board"].with_user(user)
            return Board.get_board("tasks_done", "month")["me"]

        before = (board(self.user_sales_salesman), board(intruder))
        with self.mock_datetime_and_now(credit[0] + timedelta(days=1)):
            self.customer.with_user(intruder).write({"x_sop_gender": False})
            self.assertEqual(task.state, "todo")
            self.customer.with_user(intruder).write({"x_sop_gender": "female"})
        self.assertEqual(task.state, "done")
        self.assertEqual((task.date_done, task.done_user_id), credit)
        self.assertEqual((board(self.user_sales_salesman), board(intruder)), before)

    def test_kind_resolver_fails_loudly(self):
        """Every kind is found by name; a kind without a required method is
        an error, not a task that silently never completes."""
        Kind = self.env["crm.sop.task.kind"]
        kinds = self.env["crm.sop.task.template"]._fields["kind"].get_values(self.env)
        for kind in kinds:
            for verb in ("config", "done", "action", "button"):
                self.assertTrue(callable(Kind._sop_kind(kind, verb)), (kind, verb))
        self.assertIsNone(Kind._sop_kind("manual", "hint"))
        with self.assertRaises(NotImplementedError):
            Kind._sop_kind("telepathy", "done")

    def test_task_stage_is_its_templates(self):
        """A task's SOP stage is read through its task template (no column of
        its own): a template moved to another SOP stage takes its tasks
        along at once, and the task list still orders, groups and filters
        by SOP stage."""
        self.env.cr.execute(
            """SELECT 1 FROM information_schema.columns
                WHERE table_name = 'crm_sop_task' AND column_name = 'stage_id'"""
        )
        self.assertFalse(self.env.cr.fetchall())
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        Task = self.env["crm.sop.task"]
        tasks = Task.search([("lead_id", "=", lead.id)])
        # ordered by SOP stage (sequence), then open before done
        self.assertEqual(
            tasks.mapped("stage_id"), self.sop_stage_contact + self.sop_stage_pitch
        )
        self.assertEqual(
            tasks.filtered(lambda t: t.stage_id == self.sop_stage_contact),
            Task.search(
                [
                    ("lead_id", "=", lead.id),
                    ("stage_id", "=", self.sop_stage_contact.id),
                ]
            ),
        )
        self.tt_call.stage_id = self.sop_stage_contact
        call = self._task(lead, self.tt_call)
        self.assertEqual(call.stage_id, self.sop_stage_contact)
        groups = Task._read_group(
            [("lead_id", "=", lead.id)], ["stage_id"], ["__count"]
        )
        self.assertEqual(
            dict(groups),
            {
                self.sop_stage_contact: len(tasks) - 2,
                self.sop_stage_pitch: 2,
            },
        )

    def test_migration_drops_the_task_stage_column(self):
        """A database from before 18.0.1.8.0 loses the tasks' stored SOP stage
        and the foreign key each insert checked; their stage is still read
        through the template."""
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        self.env.cr.execute(
            """ALTER TABLE crm_sop_task ADD COLUMN stage_id integer
               CONSTRAINT crm_sop_task_stage_id_fkey
               REFERENCES crm_sop_stage (id) ON DELETE SET NULL"""
        )
        self.env.cr.execute(
            """UPDATE crm_sop_task t SET stage_id = tt.stage_id
                 FROM crm_sop_task_template tt WHERE tt.id = t.task_template_id"""
        )
        migration = sop_migration("18.0.1.8.0", "post-migration.py")
        for _run in range(2):  # runs again on a database without it
            migration.migrate(self.env.cr, "18.0.1.7.0")
        self.env.cr.execute(
            """SELECT conname FROM pg_constraint
                WHERE conrelid = 'crm_sop_task'::regclass AND contype = 'f'"""
        )
        self.assertNotIn(
            "crm_sop_task_stage_id_fkey", {row[0] for row in self.env.cr.fetchall()}
        )
        self.env.cr.execute(
            """SELECT 1 FROM information_schema.columns
                WHERE table_name = 'crm_sop_task' AND column_name = 'stage_id'"""
        )
        self.assertFalse(self.env.cr.fetchall())
        self.env["crm.sop.task"].invalidate_model()
        self.assertEqual(self._task(lead, self.tt_call).stage_id, self.sop_stage_pitch)

from unittest.mock import patch

import psycopg2

from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, mute_logger

from .common import TestSopCommon, sop_evaluations


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopInstall(TransactionCase):
    """The post_init_hook path: leads that exist before the addon get their
    playbook and tasks in SQL, then one evaluation pass by chunks."""

    def test_existing_leads_get_their_tasks(self):
        Lead = self.env["crm.lead"]
        partner = self.env["res.partner"].create(
            {
                "name": "Known",
                "x_sop_gender": "female",
                "x_sop_age_range": "25_34",
                "phone": "1",
            }
        )
        leads = Lead.create(
            [
                {
                    "name": f"Existing {i}",
                    "type": "opportunity",
                    "partner_id": partner.id,
                }
                for i in range(30)
            ]
        )
        won = Lead.create({"name": "Won before", "type": "opportunity"})
        won.action_set_won()
        # simulate "before the install": no SOP data at all
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "DELETE FROM crm_sop_task WHERE lead_id = ANY(%s)",
                (leads + won).ids,
            )
        )
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead SET sop_template_id = NULL, sop_progress = NULL,
                   sop_stage_id = NULL, sop_next_task_id = NULL WHERE id = ANY(%s)""",
                (leads + won).ids,
            )
        )
        self.env.invalidate_all()
        from .. import _crm_sop_post_init

        _crm_sop_post_init(self.env)
        default = self.env.ref("crm_sales_sop.crm_sop_template_default")
        self.assertEqual(leads.sop_template_id, default)
        self.assertFalse(won.sop_template_id, "won deals are history")
        expected = len(default.task_template_ids)
        self.assertEqual(len(leads.sop_task_ids), 30 * expected)
        basic = self.env.ref("crm_sales_sop.crm_sop_task_basic_data")
        self.assertEqual(
            set(
                leads.sop_task_ids.filtered(
                    lambda t: t.task_template_id == basic
                ).mapped("state")
            ),
            {"done"},
        )
        self.assertTrue(all(lead.sop_progress > 0 for lead in leads))
        # running it again changes nothing (idempotent)
        count = self.env["crm.sop.task"].search_count([("lead_id", "in", leads.ids)])
        _crm_sop_post_init(self.env)
        self.assertEqual(
            self.env["crm.sop.task"].search_count([("lead_id", "in", leads.ids)]), count
        )

    def test_large_setup_goes_to_the_job_batch_by_batch(self):
        """Beyond SOP_SETUP_INLINE waiting deals, the install sets up the
        newest and triggers the setup job; Odoo's cron runs it batch by
        batch (progress reported) until none waits; a deal whose team has
        no playbook does not wait."""
        from .. import _crm_sop_post_init
        from ..models import crm_sop_engine

        default = self.env.ref("crm_sales_sop.crm_sop_template_default")
        other_company = self.env["res.company"].create({"name": "No Playbook Co"})
        leads = self.env["crm.lead"].create(
            [{"name": f"Waiting {i}", "type": "opportunity"} for i in range(7)]
        )
        alone = self.env["crm.lead"].create(
            {
                "name": "Nobody's playbook",
                "type": "opportunity",
                "team_id": False,
                "company_id": other_company.id,
            }
        )
        default.company_id = self.env.company
        # an older deal that moved on: the job makes its review facts
        moved = leads.sorted("id")[0]
        stages = self.env["crm.stage"].search([("is_won", "=", False)])
        moved.stage_id = stages[-1]
        self.env.flush_all()
        self.env.cr.execute(
            SQL("DELETE FROM crm_sop_task WHERE lead_id = ANY(%s)", (leads + alone).ids)
        )
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead SET sop_template_id = NULL, sop_progress = NULL,
                   sop_stage_id = NULL, sop_next_task_id = NULL WHERE id = ANY(%s)""",
                (leads + alone).ids,
            )
        )
        self.env.invalidate_all()
        cron = self.env.ref("crm_sales_sop.ir_cron_sop_setup")
        Trigger = self.env["ir.cron.trigger"].sudo()
        triggers = Trigger.search([("cron_id", "=", cron.id)])
        expected = len(default.task_template_ids)
        with (
            patch.object(crm_sop_engine, "SOP_SETUP_INLINE", 3),
            patch.object(crm_sop_engine, "EVALUATE_CHUNK", 2),
        ):
            _crm_sop_post_init(self.env)
            newest = leads.sorted("id")[-3:]
            self.assertEqual(newest.sop_template_id, default)
            self.assertEqual(len(newest.sop_task_ids), 3 * expected)
            self.assertFalse((leads - newest).sop_template_id)
            self.assertFalse((leads - newest).sop_task_ids)
            self.assertGreater(
                Trigger.search_count([("cron_id", "=", cron.id)]), len(triggers)
            )
            # Odoo's cron calls the job while its progress says some wait
            Progress = self.env["ir.cron.progress"].sudo()
            reported = []
            for _run in range(3):
                cron.method_direct_trigger()
                progress = Progress.search(
                    [("cron_id", "=", cron.id)], order="id desc", limit=1
                )
                reported.append((progress.done, progress.remaining))
        self.assertEqual(reported, [(2, 2), (2, 0), (0, 0)])
        self.assertEqual(leads.sop_template_id, default)
        self.assertEqual(len(leads.sop_task_ids), 7 * expected)
        self.assertTrue(all(lead.sop_next_task_id for lead in leads))
        self.assertFalse(alone.sop_template_id)
        self.assertFalse(alone.sop_task_ids)
        self.env["crm.sop.task.fact"].flush_model()
        facts = self.env["crm.sop.task.fact"].search([("lead_id", "in", leads.ids)])
        self.assertTrue(facts)
        self.assertEqual(set(facts.mapped("lead_id")), {moved.id})
        self.assertTrue(all(facts.mapped("date_left")))

    def _task_table_definition(self):
        """The keys and indexes the bulk load drops and makes again: the
        task table's and the SOP stage history's, crm_lead's keys."""
        self.env.cr.execute(
            """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                WHERE conrelid IN ('crm_sop_task'::regclass,
                                   'crm_sop_stage_log'::regclass,
                                   'crm_lead'::regclass)
             ORDER BY conname"""
        )
        keys = self.env.cr.fetchall()
        self.env.cr.execute(
            """SELECT indexname, indexdef FROM pg_indexes
                WHERE tablename IN ('crm_sop_task', 'crm_sop_stage_log')
             ORDER BY indexname"""
        )
        return keys, self.env.cr.fetchall()

    def test_install_over_many_leads_loads_tasks_in_bulk(self):
        """Over many open leads, the install fills crm_sop_task without its
        foreign keys and secondary indexes, then makes them again, the same,
        and they hold (a task of a deleted lead is refused after)."""
        from .. import _crm_sop_post_init
        from ..models import crm_sop_engine

        leads = self.env["crm.lead"].create(
            [{"name": f"Bulk {i}", "type": "opportunity"} for i in range(5)]
        )
        self.env.flush_all()
        self.env.cr.execute(
            SQL("DELETE FROM crm_sop_task WHERE lead_id = ANY(%s)", leads.ids)
        )
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead SET sop_template_id = NULL, sop_progress = NULL,
                   sop_stage_id = NULL, sop_next_task_id = NULL WHERE id = ANY(%s)""",
                leads.ids,
            )
        )
        self.env.invalidate_all()
        before = self._task_table_definition()
        self.assertTrue(any("FOREIGN KEY (lead_id)" in d for _n, d in before[0]))
        self.assertIn("crm_lead_sop_next_task_id_fkey", dict(before[0]))
        self.assertIn("crm_sop_stage_log_lead_id_fkey", dict(before[0]))
        dropped = []
        bulk_load = crm_sop_engine.CrmSopEngine._sop_bulk_load

        def spy(engine, enabled=True):
            dropped.append(enabled)
            return bulk_load(engine, enabled)

        with (
            patch.object(crm_sop_engine, "SOP_BULK_MIN_LEADS", 1),
            patch.object(crm_sop_engine.CrmSopEngine, "_sop_bulk_load", spy),
        ):
            _crm_sop_post_init(self.env)
        self.assertEqual(dropped, [True])
        self.assertEqual(self._task_table_definition(), before)
        default = self.env.ref("crm_sales_sop.crm_sop_template_default")
        self.assertEqual(leads.sop_template_id, default)
        self.assertEqual(len(leads.sop_task_ids), 5 * len(default.task_template_ids))
        with (
            self.assertRaises(psycopg2.errors.ForeignKeyViolation),
            mute_logger("odoo.sql_db"),
        ):
            with self.env.cr.savepoint():
                self.env.cr.execute(
                    """INSERT INTO crm_sop_task (lead_id, task_template_id, state)
                       VALUES (-1, %s, 'todo')""",
                    [default.task_template_ids[0].id],
                )
        with (
            self.assertRaises(psycopg2.errors.ForeignKeyViolation),
            mute_logger("odoo.sql_db"),
        ):
            with self.env.cr.savepoint():
                self.env.cr.execute(
                    "UPDATE crm_lead SET sop_next_task_id = -1 WHERE id = %s",
                    [leads[0].id],
                )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopSetupByManager(TestSopCommon):
    """A sales manager gives a playbook back to a team with more open deals
    than one transaction sets up: the newest in the manager's transaction,
    the others by the setup job (triggered with the engine's rights)."""

    def test_manager_reactivating_a_playbook_leaves_the_rest_to_the_job(self):
        from ..models import crm_sop_engine

        # no fallback playbook: without the team's, its deals have none
        self.env.ref("crm_sales_sop.crm_sop_template_default").action_archive()
        leads = self.env["crm.lead"].create(
            [self._sop_lead_vals(name=f"Team deal {i}") for i in range(5)]
        )
        self.assertEqual(leads.sop_template_id, self.playbook)
        playbook = self.playbook.with_user(self.user_sales_manager)
        cron = self.env.ref("crm_sales_sop.ir_cron_sop_setup")
        Trigger = self.env["ir.cron.trigger"].sudo()
        triggers = Trigger.search_count([("cron_id", "=", cron.id)])
        playbook.action_archive()
        self.assertFalse(leads.sop_template_id)
        with patch.object(crm_sop_engine, "SOP_SETUP_INLINE", 2):
            playbook.action_unarchive()
        newest = leads.sorted("id")[-2:]
        self.assertEqual(newest.sop_template_id, self.playbook)
        self.assertFalse((leads - newest).sop_template_id)
        self.assertGreater(Trigger.search_count([("cron_id", "=", cron.id)]), triggers)
        cron.method_direct_trigger()
        self.assertEqual(leads.sop_template_id, self.playbook)
        self.assertTrue(all(lead.sop_task_ids for lead in leads))

    def test_task_added_over_many_deals_leaves_the_rest_to_the_job(self):
        """A task added to a live playbook reaches more deals than one
        request evaluates: every deal gets it at once; the newest are
        evaluated in the manager's transaction, the others queued for the
        setup job, which evaluates them (done where their data already is)
        and empties the queue."""
        from ..models import crm_sop_engine

        leads = self.env["crm.lead"].create(
            [
                self._sop_lead_vals(name=f"Team deal {i}", x_sop_companions="Spouse")
                for i in range(5)
            ]
        )
        cron = self.env.ref("crm_sales_sop.ir_cron_sop_setup")
        Trigger = self.env["ir.cron.trigger"].sudo()
        triggers = Trigger.search_count([("cron_id", "=", cron.id)])
        Queue = self.env["crm.sop.evaluation.queue"].sudo()
        with patch.object(crm_sop_engine, "SOP_EVALUATE_INLINE", 2):
            added = (
                self.env["crm.sop.task.template"]
                .with_user(self.user_sales_manager)
                .create(
                    {
                        "name": "Who came along, again",
                        "stage_id": self.sop_stage_contact.id,
                        "kind": "fields",
                        "field_ids": [(6, 0, self.field_lead_companions.ids)],
                    }
                )
            )
        tasks = self.env["crm.sop.task"].search(
            [("task_template_id", "=", added.id), ("lead_id", "in", leads.ids)]
        )
        self.assertEqual(tasks.lead_id, leads)
        newest = leads.sorted("id")[-2:]
        self.assertEqual(
            {task.lead_id: task.state for task in tasks},
            {lead: "done" if lead in newest else "todo" for lead in leads},
        )
        self.assertEqual(
            set(Queue.search([]).lead_id.ids) & set(leads.ids),
            set((leads - newest).ids),
        )
        self.assertGreater(Trigger.search_count([("cron_id", "=", cron.id)]), triggers)
        progress_before = {lead: lead.sop_progress for lead in leads}

        cron.method_direct_trigger()
        self.assertEqual(set(tasks.mapped("state")), {"done"})
        self.assertFalse(Queue.search([("lead_id", "in", leads.ids)]))
        # the queued deals' summaries now count the task done, as the
        # newest's did at once
        self.assertEqual(len(set(leads.mapped("sop_progress"))), 1)
        self.assertEqual(
            {lead.sop_progress for lead in newest},
            {progress_before[lead] for lead in newest},
        )

    def test_playbook_saved_with_its_stages_reordered_evaluates_once(self):
        """The playbook's form saved with its SOP stages reordered (and a
        gate set) writes each stage line: their deals are evaluated once,
        after the whole save, instead of once per stage; so are a SOP
        stage's, its form saved with its tasks reordered."""
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        with sop_evaluations(self.env) as calls:
            self.playbook.with_user(self.user_sales_manager).write(
                {
                    "stage_ids": [
                        (1, self.sop_stage_pitch.id, {"sequence": 5}),
                        (1, self.sop_stage_contact.id, {"sequence": 30}),
                        (1, self.sop_stage_contact.id, {"gate": "warn"}),
                    ]
                }
            )
        self.assertEqual(len(calls), 1)
        self.assertIn(lead.id, calls[0])
        self.assertEqual(self.playbook.stage_ids[0], self.sop_stage_pitch)
        # a SOP stage's form saved with its tasks reordered and its gate set
        tasks = self.sop_stage_contact.task_template_ids
        self.assertGreater(len(tasks), 1)
        with sop_evaluations(self.env) as calls:
            self.sop_stage_contact.with_user(self.user_sales_manager).write(
                {
                    "gate": "block",
                    "task_template_ids": [
                        (1, task.id, {"sequence": 100 - index})
                        for index, task in enumerate(tasks)
                    ],
                }
            )
        self.assertEqual(len(calls), 1)
        self.assertIn(lead.id, calls[0])
        # the same summary as the engine makes for the deal now
        summary = lead.read(["sop_next_task_id", "sop_progress"])
        self.env["crm.sop.engine"]._sop_evaluate(lead)
        self.assertEqual(lead.read(["sop_next_task_id", "sop_progress"]), summary)

    def test_playbook_deleted_over_a_large_team_stays_archived_until_the_job(self):
        """The team's playbook deleted over more deals than one request
        re-maps: it is archived instead, the manager is told so, and the
        setup job re-maps the others; deleted again then, it goes."""
        from ..models import crm_sop_engine

        leads = self.env["crm.lead"].create(
            [self._sop_lead_vals(name=f"Team deal {i}") for i in range(5)]
        )
        playbook = self.playbook.with_user(self.user_sales_manager)
        with patch.object(crm_sop_engine, "SOP_SETUP_INLINE", 2):
            playbook.unlink()
        self.assertTrue(playbook.exists())
        self.assertFalse(playbook.active)
        self.assertEqual(
            (leads - leads.sorted("id")[-2:]).sop_template_id, self.playbook
        )
        self.env.cr.precommit.run()
        notices = (
            self.env["bus.bus"]
            .sudo()
            .search([("message", "like", "Playbook archived, not deleted")])
            .mapped("message")
        )
        following = self.env["crm.lead"].search_count(
            [("sop_template_id", "=", self.playbook.id)]
        )
        self.assertGreaterEqual(following, 3)
        self.assertEqual(len(notices), 1)
        self.assertIn(f"{following} open opportunities still follow", notices[0])

        self.env.ref("crm_sales_sop.ir_cron_sop_setup").method_direct_trigger()
        self.assertNotIn(self.playbook, leads.sop_template_id)
        playbook.unlink()
        self.assertFalse(playbook.exists())

    def test_task_archived_over_a_large_team_leaves_the_rest_to_the_job(self):
        """A task archived over more deals than one request prunes: the
        newest lose it in the manager's transaction, the setup job takes it
        from the others (their next step moves on then)."""
        from ..models import crm_sop_engine

        leads = self.env["crm.lead"].create(
            [self._sop_lead_vals(name=f"Team deal {i}") for i in range(5)]
        )
        self.assertEqual(leads.sop_next_task_id.task_template_id, self.tt_customer)
        with patch.object(crm_sop_engine, "SOP_SETUP_INLINE", 2):
            self.tt_customer.with_user(self.user_sales_manager).action_archive()
        newest = leads.sorted("id")[-2:]
        for lead in leads:
            has_it = self.tt_customer in lead.sop_task_ids.task_template_id
            self.assertEqual(has_it, lead not in newest, lead.name)
        self.assertEqual(newest.sop_next_task_id.task_template_id, self.tt_visit)

        self.env.ref("crm_sales_sop.ir_cron_sop_setup").method_direct_trigger()
        self.assertNotIn(self.tt_customer, leads.sop_task_ids.task_template_id)
        self.assertEqual(leads.sop_next_task_id.task_template_id, self.tt_visit)
        self.assertEqual(
            self.env["crm.sop.evaluation.queue"].search_count(
                [("lead_id", "in", leads.ids)]
            ),
            0,
        )

    def test_stage_deleted_over_a_large_team_goes_once_the_job_pruned(self):
        """A SOP stage deleted over more deals than one request prunes stays
        archived with its tasks while deals still hold them; deleted again
        once the setup job took them, it goes, its tasks with it."""
        from ..models import crm_sop_engine

        leads = self.env["crm.lead"].create(
            [self._sop_lead_vals(name=f"Team deal {i}") for i in range(5)]
        )
        stage = self.sop_stage_contact.with_user(self.user_sales_manager)
        task_templates = stage.task_template_ids
        with patch.object(crm_sop_engine, "SOP_SETUP_INLINE", 2):
            stage.unlink()
        self.assertTrue(stage.exists())
        self.assertFalse(stage.active)
        self.assertIn(self.tt_customer, leads.sop_task_ids.task_template_id)

        self.env.ref("crm_sales_sop.ir_cron_sop_setup").method_direct_trigger()
        self.assertFalse(leads.sop_task_ids.task_template_id & task_templates)
        self.assertEqual(leads.sop_next_task_id.task_template_id, self.tt_call)
        stage.unlink()
        self.assertFalse(stage.exists())
        self.assertFalse(task_templates.exists())

    def test_playbook_taken_from_a_large_team_leaves_the_rest_to_the_job(self):
        """The team's playbook archived over more deals than one request
        re-maps: the newest go to the fallback playbook in the manager's
        transaction, with its tasks; the setup job re-maps the others."""
        from ..models import crm_sop_engine

        default = self.env.ref("crm_sales_sop.crm_sop_template_default")
        leads = self.env["crm.lead"].create(
            [self._sop_lead_vals(name=f"Team deal {i}") for i in range(5)]
        )
        self.assertEqual(leads.sop_template_id, self.playbook)
        cron = self.env.ref("crm_sales_sop.ir_cron_sop_setup")
        Trigger = self.env["ir.cron.trigger"].sudo()
        triggers = Trigger.search_count([("cron_id", "=", cron.id)])
        with patch.object(crm_sop_engine, "SOP_SETUP_INLINE", 2):
            self.playbook.with_user(self.user_sales_manager).action_archive()
        newest = leads.sorted("id")[-2:]
        self.assertEqual(newest.sop_template_id, default)
        self.assertEqual((leads - newest).sop_template_id, self.playbook)
        self.assertGreater(Trigger.search_count([("cron_id", "=", cron.id)]), triggers)

        cron.method_direct_trigger()
        self.assertEqual(leads.sop_template_id, default)
        expected = default.task_template_ids.filtered("stage_id.active")
        for lead in leads:
            self.assertEqual(lead.sop_task_ids.task_template_id, expected, lead.name)

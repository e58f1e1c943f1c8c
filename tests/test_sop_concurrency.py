from datetime import timedelta

from odoo import SUPERUSER_ID, api
from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL

from ..models.crm_sop_history_count import SOP_HISTORY_STALE
from ..models.crm_sop_task_fact import SOP_FACT_STALE
from .common import SopTransactionsMixin


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopConcurrency(SopTransactionsMixin, TransactionCase):
    """Two transactions at once, each seeing the database as it was when it
    began (REPEATABLE READ).

    - One creates an opportunity while the other adds a task to its
      playbook: the opportunity is created without the new task; the engine
      heals it on the opportunity's next evaluation, and a gate counts the
      missing task as not done until then.
    - The setup job sets up waiting deals while a rep saves one of them: the
      job neither fails nor waits; every deal gets its tasks, in a later
      batch for the rep's."""

    def setUp(self):
        super().setUp()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # the pipeline stages made and deleted mark every deal's review
            # facts stale: the flag is put back as it was
            self.facts_stale = env["ir.config_parameter"].get_param(SOP_FACT_STALE)
            self.history_stale = env["ir.config_parameter"].get_param(SOP_HISTORY_STALE)
            team = env["crm.team"].create({"name": "SOP concurrency team"})
            stage_1 = env["crm.stage"].create(
                {"name": "SOP concurrency 1", "sequence": 1, "team_id": team.id}
            )
            stage_2 = env["crm.stage"].create(
                {"name": "SOP concurrency 2", "sequence": 2, "team_id": team.id}
            )
            playbook = env["crm.sop.template"].create(
                {
                    "name": "SOP concurrency playbook",
                    "sequence": 0,
                    "team_ids": [(6, 0, team.ids)],
                    "stage_ids": [
                        (
                            0,
                            0,
                            {
                                "name": "Contact",
                                "crm_stage_id": stage_1.id,
                                "gate": "block",
                                "task_template_ids": [
                                    (0, 0, {"name": "Say hello", "kind": "manual"})
                                ],
                            },
                        )
                    ],
                }
            )
            rep = env["res.users"].create(
                {
                    "name": "SOP concurrency rep",
                    "login": "sop_concurrency_rep",
                    "groups_id": [
                        (6, 0, env.ref("sales_team.group_sale_salesman").ids)
                    ],
                }
            )
            self.ids = {
                "rep": rep.id,
                "team": team.id,
                "stages": (stage_1.id, stage_2.id),
                "playbook": playbook.id,
                "sop_stage": playbook.stage_ids.id,
            }
            self.addCleanup(self._clean_up)
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        self.envs = self._sop_transactions(2)

    def _clean_up(self):
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["crm.lead"].with_context(active_test=False).search(
                [("team_id", "=", self.ids["team"])]
            ).unlink()
            playbook = env["crm.sop.template"].browse(self.ids["playbook"])
            # not the engine's history rules: remove every trace of the test
            env.cr.execute(
                "DELETE FROM crm_sop_task_template WHERE template_id = %s",
                [playbook.id],
            )
            env.cr.execute(
                "DELETE FROM crm_sop_stage WHERE template_id = %s", [playbook.id]
            )
            env.cr.execute("DELETE FROM crm_sop_template WHERE id = %s", [playbook.id])
            env["crm.stage"].browse(self.ids["stages"]).unlink()
            env["crm.team"].browse(self.ids["team"]).unlink()
            rep = env["res.users"].browse(self.ids["rep"])
            partner = rep.partner_id
            rep.unlink()
            partner.unlink()
            env["crm.sop.task.template"]._sop_clear_caches()
            env["ir.config_parameter"].set_param(SOP_FACT_STALE, self.facts_stale)
            env["ir.config_parameter"].set_param(SOP_HISTORY_STALE, self.history_stale)
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit

    def _team_deals(self, env, name, count):
        """``count`` open deals of the test's team and rep, in its first
        pipeline stage, created in ``env``."""
        return env["crm.lead"].create(
            [
                {
                    "name": f"{name} {index}",
                    "type": "opportunity",
                    "team_id": self.ids["team"],
                    "user_id": self.ids["rep"],
                    "stage_id": self.ids["stages"][0],
                }
                for index in range(count)
            ]
        )

    def _rep_holds(self, env_rep, lead_id, env_other):
        """The rep's transaction saves the deal ``lead_id`` and holds it,
        uncommitted; ``env_other``'s transaction would fail (after 5 s)
        rather than hang the test if it waited for the rep."""
        env_rep["crm.lead"].browse(lead_id).write({"description": "Called"})
        env_rep.flush_all()
        env_other.cr.execute("SET LOCAL lock_timeout = '5s'")

    def _waiting_deals(self, count):
        """``count`` open deals of the test's team, committed as an install
        over a large pipeline leaves them to the setup job: no playbook, no
        task."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            leads = self._team_deals(env, "Waiting deal", count)
            env.flush_all()
            cr.execute("DELETE FROM crm_sop_task WHERE lead_id = ANY(%s)", [leads.ids])
            cr.execute(
                """UPDATE crm_lead SET sop_template_id = NULL, sop_stage_id = NULL,
                          sop_next_task_id = NULL, sop_progress = NULL
                    WHERE id = ANY(%s)""",
                [leads.ids],
            )
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_setup")
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        return leads.ids

    def _forget_job_runs_after(self, env, xmlid):
        """The triggers of the job ``xmlid`` made from now on are deleted
        after the test (a new job run planned is what some tests check)."""
        cron = env.ref(xmlid)
        env.cr.execute(
            "SELECT COALESCE(MAX(id), 0) FROM ir_cron_trigger WHERE cron_id = %s",
            [cron.id],
        )
        self.addCleanup(self._forget_job_runs, cron.id, env.cr.fetchone()[0])
        return cron

    def _forget_job_runs(self, cron_id, last_trigger):
        with self.env.registry.cursor() as cr:
            cr.execute(
                "DELETE FROM ir_cron_trigger WHERE cron_id = %s AND id > %s",
                [cron_id, last_trigger],
            )
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit

    def _run_setup_job(self, env):
        """One call of the setup job as Odoo's cron runner makes it, in
        ``env``'s transaction: (done, remaining) as it reported them."""
        cron = env.ref("crm_sales_sop.ir_cron_sop_setup")
        _cron, progress = cron._add_progress()
        env["crm.sop.engine"].with_context(
            ir_cron_progress_id=progress.id
        )._cron_sop_setup()
        env.flush_all()
        return progress.done, progress.remaining

    def _set_up_deals(self, env, lead_ids):
        """{deal id: its tasks' template ids} of those set up, in ``env``'s
        transaction as it now sees the database."""
        env.invalidate_all()
        env.cr.execute(
            """SELECT l.id, array_agg(t.task_template_id ORDER BY t.id)
                 FROM crm_lead l JOIN crm_sop_task t ON t.lead_id = l.id
                WHERE l.id = ANY(%s) AND l.sop_template_id = %s
             GROUP BY l.id""",
            [lead_ids, self.ids["playbook"]],
        )
        return dict(env.cr.fetchall())

    def test_setup_job_meets_a_deal_saved_meanwhile(self):
        """A rep saves a waiting deal after the job's transaction began: the
        batch is undone rather than failing the job (which would leave the
        deals without tasks until its next daily run), the job is due again
        shortly, and its next transaction sets every deal up."""
        lead_ids = self._waiting_deals(3)
        env_job, env_rep = self.envs
        env_job.cr.execute("SELECT 1")  # the job's transaction starts first
        env_rep["crm.lead"].browse(lead_ids[0]).write({"description": "Called"})
        env_rep.cr.commit()  # pylint: disable=invalid-commit

        self.assertEqual(self._run_setup_job(env_job), (0, 3))
        self.assertEqual(self._set_up_deals(env_job, lead_ids), {})
        cron = env_job.ref("crm_sales_sop.ir_cron_sop_setup")
        trigger = env_job["ir.cron.trigger"].search(
            [("cron_id", "=", cron.id)], order="id desc", limit=1
        )
        self.assertGreater(trigger.call_at, env_job.cr.now())
        env_job.cr.commit()  # pylint: disable=invalid-commit

        self.assertEqual(self._run_setup_job(env_job), (3, 0))
        env_job.cr.commit()  # pylint: disable=invalid-commit
        tasks = env_job["crm.sop.task.template"].search(
            [("template_id", "=", self.ids["playbook"])]
        )
        self.assertEqual(
            self._set_up_deals(env_job, lead_ids),
            dict.fromkeys(lead_ids, tasks.ids),
        )
        self.assertEqual(
            env_job["crm.lead"].browse(lead_ids[0]).description, "<p>Called</p>"
        )

    def test_setup_job_skips_a_deal_a_rep_holds(self):
        """A rep's transaction holds a waiting deal (saving it) while the job
        runs: the job neither waits for it nor fails; it sets up the others,
        and the rep's deal in its next batch, once the rep's save is done."""
        lead_ids = self._waiting_deals(3)
        env_job, env_rep = self.envs
        self._rep_holds(env_rep, lead_ids[0], env_job)

        self.assertEqual(self._run_setup_job(env_job), (2, 1))
        env_job.cr.commit()  # pylint: disable=invalid-commit
        env_rep.cr.commit()  # pylint: disable=invalid-commit
        self.assertEqual(set(self._set_up_deals(env_job, lead_ids)), set(lead_ids[1:]))

        self.assertEqual(self._run_setup_job(env_job), (1, 0))
        env_job.cr.commit()  # pylint: disable=invalid-commit
        self.assertEqual(set(self._set_up_deals(env_job, lead_ids)), set(lead_ids))

    def test_playbook_change_leaves_a_deal_a_rep_holds_to_the_job(self):
        """A manager's playbook change sets up the team's waiting deals in
        the manager's transaction while a rep saves one of them: the
        manager's save neither waits for the rep nor fails; the rep's deal
        goes to the setup job, which sets it up once the rep's save is
        done."""
        lead_ids = self._waiting_deals(3)
        env_manager, env_rep = self.envs
        self._rep_holds(env_rep, lead_ids[0], env_manager)
        cron = env_manager.ref("crm_sales_sop.ir_cron_sop_setup")
        triggers = env_manager["ir.cron.trigger"].search_count(
            [("cron_id", "=", cron.id)]
        )

        # what a playbook given to a team, or made active again, runs
        env_manager["crm.sop.engine"]._sop_sync_all()
        env_manager.flush_all()
        self.assertEqual(
            set(self._set_up_deals(env_manager, lead_ids)), set(lead_ids[1:])
        )
        self.assertGreater(
            env_manager["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]),
            triggers,
        )
        env_manager.cr.commit()  # pylint: disable=invalid-commit
        env_rep.cr.commit()  # pylint: disable=invalid-commit

        self.assertEqual(self._run_setup_job(env_manager), (1, 0))
        env_manager.cr.commit()  # pylint: disable=invalid-commit
        self.assertEqual(set(self._set_up_deals(env_manager, lead_ids)), set(lead_ids))

    def test_task_added_while_a_rep_holds_a_deal(self):
        """A manager adds a task to the playbook while a rep saves one of
        its deals: the manager's save neither waits for the rep nor fails;
        every deal gets the task, the rep's is evaluated by the setup job
        once the rep's save is done."""
        lead_ids = self._committed_deals(3, done=True)
        env_manager, env_rep = self.envs
        self._rep_holds(env_rep, lead_ids[0], env_manager)

        self.assertEqual(self._task_added(env_manager, lead_ids), set(lead_ids[:1]))
        env_manager.cr.commit()  # pylint: disable=invalid-commit
        env_rep.cr.commit()  # pylint: disable=invalid-commit

        self._job_did(env_manager, 1)
        self.assertFalse(env_manager["crm.sop.evaluation.queue"].search([]))
        # one task done of two: every deal's progress and next step alike
        deals = env_manager["crm.lead"].browse(lead_ids)
        self.assertEqual(set(deals.mapped("sop_progress")), {50})
        self.assertEqual(
            [deal.sop_next_task_id.task_template_id.name for deal in deals],
            ["Send the catalogue"] * 3,
        )

    def test_playbook_taken_while_a_rep_holds_a_deal(self):
        """A manager archives the team's playbook while a rep saves one of
        its deals: the manager's save neither waits for the rep nor fails;
        the other deals go to the fallback playbook at once, the rep's by
        the setup job once the rep's save is done."""
        self._playbook_gone_while_held(
            self._committed_deals(3), lambda playbook: playbook.action_archive()
        )

    def _playbook_gone_while_held(self, lead_ids, take):
        """The manager's ``take(playbook)`` (the team's) while the rep saves
        the first of the deals ``lead_ids``: the manager's save re-maps the
        others to the fallback playbook at once, the setup job the rep's
        afterwards. Returns the playbook, in the manager's environment."""
        env_manager, env_rep = self.envs
        self._rep_holds(env_rep, lead_ids[0], env_manager)
        playbook = env_manager["crm.sop.template"].browse(self.ids["playbook"])
        fallback = self._fallback(env_manager)

        take(playbook)
        env_manager.flush_all()
        deals = env_manager["crm.lead"].browse(lead_ids)
        self.assertEqual(
            [deal.sop_template_id.id for deal in deals],
            [playbook.id, fallback, fallback],
        )
        env_manager.cr.commit()  # pylint: disable=invalid-commit
        env_rep.cr.commit()  # pylint: disable=invalid-commit

        self._job_did(env_manager, 1)
        self.assertEqual(set(deals.mapped("sop_template_id").ids), {fallback})
        return playbook

    def _rep_saved_since(self, env_rep, lead_id, env_other, won=False):
        """``env_other``'s transaction begins, then the rep saves the deal
        ``lead_id`` (or wins it) and commits: ``env_other`` cannot write
        what the rep's save wrote (REPEATABLE READ)."""
        env_other.cr.execute("SELECT 1")
        lead = env_rep["crm.lead"].browse(lead_id)
        if won:
            lead.action_set_won()
        else:
            lead.write({"description": "Called"})
        env_rep.cr.commit()  # pylint: disable=invalid-commit
        env_other.cr.execute("SET LOCAL lock_timeout = '5s'")

    def _committed_deals(self, count, done=False):
        """Ids of ``count`` open deals of the test's team, committed (their
        one task ``done``: a task added then changes every summary); the
        setup job's runs planned from now on are forgotten after the test."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            leads = self._team_deals(env, "Deal of the playbook", count)
            if done:
                leads.sop_task_ids.action_sop_mark_done()
                self.assertEqual(set(leads.mapped("sop_progress")), {100})
            lead_ids = leads.ids
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_setup")
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        return lead_ids

    def _fallback(self, env):
        """The playbook a deal of the test's team gets once the team's own
        is gone: the first without team."""
        return env["crm.sop.template"]._sop_template_for(env["crm.team"], env.company)

    def _catalogue_task(self, env, **values):
        """A manual task added to the test playbook's SOP stage in ``env``."""
        return env["crm.sop.task.template"].create(
            {
                "name": "Send the catalogue",
                "stage_id": self.ids["sop_stage"],
                "kind": "manual",
                **values,
            }
        )

    def _task_added(self, env, lead_ids):
        """The manager adds a task to the playbook in ``env``: the deals
        ``lead_ids`` get it in the save; returns the ids it queued for the
        setup job to evaluate."""
        added = self._catalogue_task(env)
        env.flush_all()
        tasks = env["crm.sop.task"].search([("task_template_id", "=", added.id)])
        self.assertEqual(set(tasks.lead_id.ids), set(lead_ids))
        return set(env["crm.sop.evaluation.queue"].search([]).lead_id.ids)

    def _other_team_deals(self, env):
        """A second team (deleted after the test) and two open deals of the
        rep in it, the first won: its history row exists, the rep wins the
        second while a manager saves."""
        other = env["crm.team"].create({"name": "SOP concurrency team 2"})
        self.addCleanup(self._delete_team, other.id)
        deals = env["crm.lead"].create(
            [
                {
                    "name": f"Deal of the other team {index}",
                    "type": "opportunity",
                    "team_id": other.id,
                    "user_id": self.ids["rep"],
                }
                for index in range(2)
            ]
        )
        deals[0].action_set_won()
        return other, deals

    def _job_did(self, env, done):
        """The setup job run in ``env`` did ``done`` deals, none left;
        committed, and ``env`` reads the database anew."""
        self.assertEqual(self._run_setup_job(env), (done, 0))
        env.cr.commit()  # pylint: disable=invalid-commit
        env.invalidate_all()

    def test_task_added_after_a_rep_saved_a_deal(self):
        """A manager adds a task to the playbook while a rep's save of one
        of its deals commits: the manager's save does not fail (the rep's
        deal cannot be written in it); every deal gets the task, and the
        setup job evaluates them all."""
        lead_ids = self._committed_deals(3, done=True)
        env_manager, env_rep = self.envs
        self._rep_saved_since(env_rep, lead_ids[0], env_manager)

        self.assertEqual(self._task_added(env_manager, lead_ids), set(lead_ids))
        env_manager.cr.commit()  # pylint: disable=invalid-commit

        self._job_did(env_manager, 3)
        deals = env_manager["crm.lead"].browse(lead_ids)
        self.assertEqual(set(deals.mapped("sop_progress")), {50})

    def test_playbook_taken_after_a_rep_saved_a_deal(self):
        """A manager archives the team's playbook while a rep's save of one
        of its deals commits: the manager's save does not fail; the setup
        job re-maps every deal to the fallback playbook."""
        lead_ids = self._committed_deals(3)
        env_manager, env_rep = self.envs
        self._rep_saved_since(env_rep, lead_ids[0], env_manager)
        playbook = env_manager["crm.sop.template"].browse(self.ids["playbook"])
        fallback = self._fallback(env_manager)

        playbook.action_archive()
        env_manager.flush_all()
        deals = env_manager["crm.lead"].browse(lead_ids)
        self.assertEqual(set(deals.mapped("sop_template_id").ids), {playbook.id})
        env_manager.cr.commit()  # pylint: disable=invalid-commit

        self._job_did(env_manager, 3)
        self.assertEqual(set(deals.mapped("sop_template_id").ids), {fallback})

    def test_task_archived_while_a_rep_holds_a_deal(self):
        """A manager archives a task, the next step of every deal of the
        playbook, while a rep saves one of them: the manager's save neither
        waits for the rep nor fails (deleting the task empties the deal's
        next step, a write of the deal); the other deals lose the task at
        once, the rep's by the setup job once the rep's save is done."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # the deals' next step is the playbook's first task, not this one
            kept = self._catalogue_task(env, sequence=99)
            archived = kept.stage_id.task_template_ids - kept
            leads = self._team_deals(env, "Deal of the playbook", 3)
            self.assertEqual(
                set(leads.sop_next_task_id.task_template_id.ids), set(archived.ids)
            )
            lead_ids = leads.ids
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_setup")
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_facts_rebuild")
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        env_manager, env_rep = self.envs
        self._rep_holds(env_rep, lead_ids[0], env_manager)

        env_manager["crm.sop.task.template"].browse(archived.id).active = False
        env_manager.flush_all()
        deals = env_manager["crm.lead"].browse(lead_ids)
        self.assertEqual(
            [deal.sop_next_task_id.task_template_id.id for deal in deals],
            [archived.id, kept.id, kept.id],
        )
        env_manager.cr.commit()  # pylint: disable=invalid-commit
        env_rep.cr.commit()  # pylint: disable=invalid-commit

        self._job_did(env_manager, 1)
        self.assertEqual(
            [deal.sop_task_ids.task_template_id.ids for deal in deals],
            [kept.ids] * 3,
        )
        self.assertEqual(set(deals.sop_next_task_id.task_template_id.ids), {kept.id})

    def test_task_deleted_while_a_rep_holds_a_deal(self):
        """A manager deletes a task without history, the next step of every
        deal of the playbook, while a rep saves one of them: the manager's
        save neither waits for the rep nor fails; the task template stays
        archived while the rep's deal holds its task, which the setup job
        prunes once the rep's save is done. Without a deal held, it is
        deleted."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # the deals' next step is the playbook's first task, not this one
            kept = self._catalogue_task(env, sequence=99)
            removed = kept.stage_id.task_template_ids - kept
            lead_ids = self._team_deals(env, "Deal of the playbook", 3).ids
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_setup")
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_facts_rebuild")
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        env_manager, env_rep = self.envs
        self._rep_holds(env_rep, lead_ids[0], env_manager)

        task_template = env_manager["crm.sop.task.template"].browse(removed.id)
        task_template.unlink()
        env_manager.flush_all()
        self.assertTrue(task_template.exists())
        self.assertFalse(task_template.active)
        env_manager.cr.commit()  # pylint: disable=invalid-commit
        env_rep.cr.commit()  # pylint: disable=invalid-commit

        self._job_did(env_manager, 1)
        deals = env_manager["crm.lead"].browse(lead_ids)
        self.assertEqual(
            [deal.sop_task_ids.task_template_id.ids for deal in deals],
            [kept.ids] * 3,
        )
        # nothing holds it any more: deleting it again deletes it
        task_template.unlink()
        self.assertFalse(task_template.exists())
        env_manager.cr.commit()  # pylint: disable=invalid-commit

    def test_playbook_deleted_while_a_rep_holds_a_deal(self):
        """A manager deletes the team's playbook while a rep saves one of its
        deals: the manager's save neither waits for the rep nor fails (the
        deletion emptied every deal's playbook in the save); the other deals
        go to the fallback playbook at once, and the playbook stays archived
        while the rep's deal maps to it, until the setup job re-maps it."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # a playbook without task yet: nothing of the deals' keeps it
            env["crm.sop.stage"].browse(
                self.ids["sop_stage"]
            ).task_template_ids.unlink()
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_facts_rebuild")
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        playbook = self._playbook_gone_while_held(
            self._committed_deals(3), lambda playbook: playbook.unlink()
        )
        # archived while the rep's deal mapped to it
        self.assertTrue(playbook.exists())
        self.assertFalse(playbook.active)
        # no open deal maps to it any more: deleting it again deletes it
        playbook.unlink()
        self.assertFalse(playbook.exists())
        playbook.env.cr.commit()  # pylint: disable=invalid-commit

    def test_task_archived_while_a_rep_holds_a_won_deal(self):
        """A manager archives a task left open on a won deal while a rep
        saves that deal: the manager's save does not wait for the rep; the
        setup job prunes the task afterwards and takes it out of the
        history counts."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            lead = self._team_deals(env, "Won with its task open", 1)
            lead.action_set_won()
            task_template = lead.sop_task_ids.task_template_id
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_setup")
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_facts_rebuild")
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        env_manager, env_rep = self.envs
        teams = [self.ids["team"]]
        self.assertCountEqual(
            self._history(env_manager, teams),
            [
                (self.ids["team"], None, 1, 0),
                (self.ids["team"], task_template.id, 0, 1),
            ],
        )
        self._rep_holds(env_rep, lead.id, env_manager)

        env_manager["crm.sop.task.template"].browse(task_template.id).active = False
        env_manager.flush_all()
        self.assertEqual(len(self._history(env_manager, teams)), 2)
        env_manager.cr.commit()  # pylint: disable=invalid-commit
        env_rep.cr.commit()  # pylint: disable=invalid-commit

        self._job_did(env_manager, 1)
        self.assertFalse(env_manager["crm.lead"].browse(lead.id).sop_task_ids)
        self.assertEqual(
            self._history(env_manager, teams), [(self.ids["team"], None, 1, 0)]
        )

    def test_task_archived_while_a_rep_closes_elsewhere(self):
        """A manager archives a task of the playbook while a rep of another
        team wins a deal: the manager's save counts out only the archived
        task's history, and neither waits for the rep nor fails (recounting
        every team's history deleted the rep's row, changed meanwhile: a
        serialization failure); the counts stay those of every closed
        deal."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # a won deal of the playbook, its task left open
            self._team_deals(env, "Won with its task open", 1).action_set_won()
            other, deals = self._other_team_deals(env)
            sop_stage = env["crm.sop.stage"].browse(self.ids["sop_stage"])
            task_template = sop_stage.task_template_ids
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_facts_rebuild")
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        env_manager, env_rep = self.envs
        self._rep_saved_since(env_rep, deals[1].id, env_manager, won=True)

        env_manager["crm.sop.task.template"].browse(task_template.id).active = False
        env_manager.flush_all()
        env_manager.cr.commit()  # pylint: disable=invalid-commit

        stored = self._history(env_manager, [self.ids["team"], other.id])
        # the two teams' won deals, the archived task no longer counted
        self.assertIn((other.id, None, 2, 0), stored)
        self.assertIn((self.ids["team"], None, 1, 0), stored)
        self.assertNotIn(task_template.id, [row[1] for row in stored])

    def test_won_stage_redefined_while_a_rep_closes_elsewhere(self):
        """A manager makes a won stage no longer won while a rep of another
        team wins a deal: the manager's save does not fail (counting every
        team's history anew in it deleted the rep's row, changed
        meanwhile); the review facts' job counts it anew afterwards."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            won_stage = env["crm.stage"].create(
                {
                    "name": "SOP concurrency won",
                    "is_won": True,
                    "sequence": 3,
                    "team_id": self.ids["team"],
                }
            )
            self.ids["stages"] += (won_stage.id,)
            self._team_deals(env, "Won in the stage", 1).write(
                {"stage_id": won_stage.id}
            )
            other, deals = self._other_team_deals(env)
            self._forget_job_runs_after(env, "crm_sales_sop.ir_cron_sop_facts_rebuild")
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        env_manager, env_rep = self.envs
        teams = [self.ids["team"], other.id]
        self.assertIn((self.ids["team"], None, 1, 0), self._history(env_manager, teams))
        env_manager.cr.rollback()  # the manager's save starts now
        self._rep_saved_since(env_rep, deals[1].id, env_manager, won=True)

        env_manager["crm.stage"].browse(won_stage.id).is_won = False
        env_manager.flush_all()
        env_manager.cr.commit()  # pylint: disable=invalid-commit

        env_manager["crm.sop.task.fact"]._cron_sop_rebuild()
        env_manager.cr.commit()  # pylint: disable=invalid-commit
        stored = self._history(env_manager, teams)
        self.assertIn((other.id, None, 2, 0), stored)
        self.assertNotIn(self.ids["team"], [row[0] for row in stored])

    def _history(self, env, team_ids):
        """The won deals' history counts of the teams, per (team, task
        template): (won with, won without), as ``env`` reads them; checked
        equal to a count of every closed deal now."""
        env.cr.execute(
            """SELECT team_id, task_template_id, sum(won_with), sum(won_without)
                 FROM crm_sop_history_count WHERE team_id = ANY(%s)
             GROUP BY 1, 2 HAVING sum(won_with) != 0 OR sum(won_without) != 0""",
            [team_ids],
        )
        stored = sorted(env.cr.fetchall(), key=str)
        env.cr.execute(
            SQL(
                """SELECT team, template, sum(ww), sum(wo)
                     FROM (%s) AS r (team, company, template, salesperson,
                                     ww, lw, wo, lo, na)
                    WHERE team = ANY(%s)
                 GROUP BY 1, 2 HAVING sum(ww) != 0 OR sum(wo) != 0""",
                env["crm.sop.history.count"]._sop_rows_sql(),
                team_ids,
            )
        )
        self.assertEqual(stored, sorted(env.cr.fetchall(), key=str))
        return stored

    def _delete_team(self, team_id):
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["crm.lead"].with_context(active_test=False).search(
                [("team_id", "=", team_id)]
            ).unlink()
            env["crm.team"].browse(team_id).unlink()
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit

    def test_stall_pass_meets_a_deal_saved_meanwhile(self):
        """The reminder job's stall pass is about to flag a deal that a rep
        saved after the job began: no error is logged, the pass is undone
        in its savepoint, and the next pass flags the deal."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # the pass flags every stalled deal of the database: each one's
            # flag is put back as it was
            cr.execute("SELECT id FROM crm_lead WHERE sop_stalled")
            self.addCleanup(self._restore_stalled, [row[0] for row in cr.fetchall()])
            env["crm.sop.stage"].browse(self.ids["sop_stage"]).stall_days = 1
            lead = self._team_deals(env, "Stalled deal", 1)
            env.flush_all()
            cr.execute(
                "UPDATE crm_lead SET sop_stage_date = %s WHERE id = %s",
                [cr.now() - timedelta(days=30), lead.id],
            )
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        env_job, env_rep = self.envs
        env_job.cr.execute("SELECT 1")  # the job's transaction starts first
        env_rep["crm.lead"].browse(lead.id).write({"description": "Called"})
        env_rep.cr.commit()  # pylint: disable=invalid-commit

        with self.assertNoLogs("odoo", level="ERROR"):
            env_job["crm.sop.reminder"]._sop_stall_pass()
        deal = env_job["crm.lead"].browse(lead.id)
        self.assertFalse(deal.sop_stalled)
        env_job.cr.commit()  # pylint: disable=invalid-commit

        env_job["crm.sop.reminder"]._sop_stall_pass()
        env_job.invalidate_all()
        self.assertTrue(deal.sop_stalled)
        env_job.cr.commit()  # pylint: disable=invalid-commit

    def _restore_stalled(self, stalled_ids):
        with self.env.registry.cursor() as cr:
            cr.execute(
                "UPDATE crm_lead SET sop_stalled = id = ANY(%s) "
                "WHERE sop_stalled IS DISTINCT FROM (id = ANY(%s))",
                [stalled_ids, stalled_ids],
            )
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit

    def test_facts_rebuild_meets_a_deal_changed_meanwhile(self):
        """The job that makes every deal's review facts anew (after a
        pipeline change) starts while a rep reassigns a won deal, whose
        facts the rep's transaction makes anew: the job is undone rather
        than failing (which would leave every deal's facts stale until its
        next daily run), is due again shortly, and then makes them all."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            lead = env["crm.lead"].create(
                {
                    "name": "Won before the change",
                    "type": "opportunity",
                    "team_id": self.ids["team"],
                    "user_id": self.ids["rep"],
                    "stage_id": self.ids["stages"][0],
                }
            )
            lead.action_set_won()
            env["crm.sop.task.fact"]._sop_mark_all()
            cron = self._forget_job_runs_after(
                env, "crm_sales_sop.ir_cron_sop_facts_rebuild"
            )
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        env_job, env_rep = self.envs
        env_job.cr.execute("SELECT 1")  # the job's transaction starts first
        env_rep["crm.lead"].browse(lead.id).write(
            # the team given: the cleanup finds the deal by its team
            {"user_id": SUPERUSER_ID, "team_id": self.ids["team"]}
        )
        env_rep.cr.commit()  # pylint: disable=invalid-commit

        Facts = env_job["crm.sop.task.fact"]
        Facts._cron_sop_rebuild()
        params = env_job["ir.config_parameter"]
        self.assertTrue(params.get_param(SOP_FACT_STALE))
        trigger = env_job["ir.cron.trigger"].search(
            [("cron_id", "=", cron.id)], order="id desc", limit=1
        )
        self.assertGreater(trigger.call_at, env_job.cr.now())
        env_job.cr.commit()  # pylint: disable=invalid-commit

        Facts._cron_sop_rebuild()
        env_job.cr.commit()  # pylint: disable=invalid-commit
        self.assertFalse(params.get_param(SOP_FACT_STALE))
        facts = Facts.search([("lead_id", "=", lead.id)])
        self.assertTrue(facts)
        self.assertEqual(set(facts.mapped("user_id")), {SUPERUSER_ID})

    def test_task_added_while_a_lead_is_created(self):
        env_lead, env_config = self.envs
        stage_1, stage_2 = self.ids["stages"]
        env_lead.cr.execute("SELECT 1")  # the lead's transaction starts first
        lead = env_lead["crm.lead"].create(
            {
                "name": "Created meanwhile",
                "type": "opportunity",
                "team_id": self.ids["team"],
                "user_id": self.ids["rep"],
                "stage_id": stage_1,
            }
        )
        companions = env_config["ir.model.fields"]._get("crm.lead", "x_sop_companions")
        new_task = env_config["crm.sop.task.template"].create(
            {
                "name": "Who came along",
                "stage_id": self.ids["sop_stage"],
                "kind": "fields",
                "field_ids": [(6, 0, companions.ids)],
            }
        )
        env_config.cr.commit()
        env_lead.cr.commit()

        env = env_lead
        env.invalidate_all()
        env.registry.clear_cache("default")
        lead = env["crm.lead"].browse(lead.id)
        self.assertNotIn(
            new_task.id,
            lead.sop_task_ids.task_template_id.ids,
            "the race happened: the new task could not reach the new lead",
        )
        # the gate counts the missing task as not done (and gives it)
        env["crm.sop.task"].search([("lead_id", "=", lead.id)]).sudo().write(
            {"state": "done"}
        )
        with self.assertRaises(UserError) as error:
            lead.with_user(self.ids["rep"]).write({"stage_id": stage_2})
        self.assertIn("Who came along", str(error.exception))
        # the next evaluation heals it
        lead.write({"x_sop_companions": "Her sister"})
        task = lead.sop_task_ids.filtered(
            lambda t: t.task_template_id.id == new_task.id
        )
        self.assertEqual(task.state, "done")
        env.cr.commit()


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopUndoRace(SopTransactionsMixin, TransactionCase):
    """The mail queue takes a queued script email (it writes the mail before
    handing it to the mail server) while its rep taps Undo: the Undo is too
    late and changes nothing; once the queue let go, Undo takes it back."""

    def setUp(self):
        super().setUp()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            rep = env["res.users"].create(
                {
                    "name": "SOP undo rep",
                    "login": "sop_undo_rep",
                    "email": "sop.undo.rep@example.com",
                    "groups_id": [
                        (6, 0, env.ref("sales_team.group_sale_salesman").ids)
                    ],
                }
            )
            customer = env["res.partner"].create(
                {"name": "SOP undo customer", "email": "undo.customer@example.com"}
            )
            lead = env["crm.lead"].create(
                {
                    "name": "SOP undo deal",
                    "type": "opportunity",
                    "user_id": rep.id,
                    "partner_id": customer.id,
                    "stage_id": env.ref("crm.stage_lead1").id,
                }
            )
            welcome = env.ref("crm_sales_sop.crm_sop_task_welcome")
            task = lead.sop_task_ids.filtered(lambda t: t.task_template_id == welcome)
            notice = task.with_user(rep).action_sop_send_script()
            self.ids = {
                "rep": rep.id,
                "customer": customer.id,
                "lead": lead.id,
                "task": task.id,
                "send": notice["params"]["send_id"],
            }
            self.addCleanup(self._clean_up)
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        self.envs = self._sop_transactions(2)

    def _clean_up(self):
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            lead = env["crm.lead"].browse(self.ids["lead"])
            env["mail.mail"].search(
                [("model", "=", "crm.lead"), ("res_id", "=", lead.id)]
            ).unlink()
            lead.unlink()
            env["res.partner"].browse(self.ids["customer"]).unlink()
            rep = env["res.users"].browse(self.ids["rep"])
            partner = rep.partner_id
            rep.unlink()
            partner.unlink()
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit

    def test_undo_while_the_queue_sends(self):
        env_queue, env_rep = self.envs
        env_rep = env_rep(user=self.ids["rep"])
        mail = env_queue["mail.mail"].search(
            [
                ("model", "=", "crm.lead"),
                ("res_id", "=", self.ids["lead"]),
                ("recipient_ids", "in", self.ids["customer"]),
            ]
        )
        self.assertEqual(mail.state, "outgoing")
        # the queue's first write on the mail, before the SMTP session
        mail.write({"state": "exception"})
        env_queue.flush_all()
        send = env_rep["crm.sop.script.send"].browse(self.ids["send"])
        with self.assertRaisesRegex(UserError, "Too late to undo"):
            send.action_sop_undo()
        task = env_rep["crm.sop.task"].browse(self.ids["task"])
        self.assertEqual(task.state, "done")
        self.assertTrue(send.exists())
        # the queue let it go (its attempt rolled back): Undo takes it back
        env_queue.cr.rollback()
        send.action_sop_undo()
        env_rep.invalidate_all()
        self.assertFalse(send.exists())
        self.assertEqual(task.state, "todo")
        self.assertFalse(mail.with_env(env_rep).sudo().exists())

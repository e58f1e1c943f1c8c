from odoo import SUPERUSER_ID, api
from odoo.tests import TransactionCase, tagged

from .common import SopTransactionsMixin


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopScoringIncrement(SopTransactionsMixin, TransactionCase):
    """Two reps close deals of one team at once, each transaction seeing the
    database as it was when it began (REPEATABLE READ): both closes go
    through, and predictive lead scoring's frequencies end as if they had
    closed one after the other, the second's added by the job."""

    def setUp(self):
        super().setUp()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            team = env["crm.team"].create({"name": "SOP scoring team"})
            # each deal its own salesperson: the module's history counts
            # have a row per rep and do not meet (crm.sop.history.count)
            users = [False, env.ref("base.user_admin").id, env.ref("base.user_root").id]
            leads = env["crm.lead"].create(
                [
                    {
                        "name": f"SOP scoring deal {index}",
                        "type": "opportunity",
                        "team_id": team.id,
                        "user_id": user_id,
                    }
                    for index, user_id in enumerate(users)
                ]
            )
            # the team's frequencies exist: a close updates them
            leads[0].action_set_won()
            cron = env.ref("crm_sales_sop.ir_cron_sop_scoring_increment")
            cr.execute(
                "SELECT COALESCE(MAX(id), 0) FROM ir_cron_trigger WHERE cron_id = %s",
                [cron.id],
            )
            self.last_trigger = cr.fetchone()[0]
            self.team_id, self.lead_ids = team.id, leads.ids
            self.addCleanup(self._clean_up)
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        self.assertEqual(self._frequencies(), {(1.1, 0.1)})
        self.envs = self._sop_transactions(2)

    def _clean_up(self):
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["crm.lead"].with_context(active_test=False).browse(
                self.lead_ids
            ).unlink()
            # its frequencies and increments go with it (ON DELETE CASCADE)
            env["crm.team"].browse(self.team_id).unlink()
            cron = env.ref("crm_sales_sop.ir_cron_sop_scoring_increment")
            cr.execute(
                "DELETE FROM ir_cron_trigger WHERE cron_id = %s AND id > %s",
                [cron.id, self.last_trigger],
            )
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit

    def _frequencies(self):
        """{(won, lost)} of the team's frequencies, committed: one pair when
        every deal closed counted alike on every row."""
        with self.env.registry.cursor() as cr:
            cr.execute(
                """SELECT DISTINCT won_count, lost_count
                     FROM crm_lead_scoring_frequency WHERE team_id = %s""",
                [self.team_id],
            )
            return set(cr.fetchall())

    def _kept(self, env):
        """The increments kept for the job, as ``env`` sees them."""
        return env["crm.sop.scoring.increment"].search([("team_id", "=", self.team_id)])

    def _job(self):
        """The job, in a transaction of its own, committed: its next run
        planned, if any, and the increments it left."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["crm.sop.scoring.increment"]._cron_sop_add()
            env.flush_all()
            cr.execute(
                """SELECT call_at FROM ir_cron_trigger
                    WHERE cron_id = %s AND id > %s
                      AND call_at > now() AT TIME ZONE 'UTC'""",
                [
                    env.ref("crm_sales_sop.ir_cron_sop_scoring_increment").id,
                    self.last_trigger,
                ],
            )
            planned = cr.fetchall()
            kept = len(self._kept(env))
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        return planned, kept

    def _closed_since(self, env_rep, env_other, lead_id):
        """``env_other``'s transaction begins, then a rep wins ``lead_id``
        and commits."""
        env_other.cr.execute("SELECT 1")
        env_rep["crm.lead"].browse(lead_id).action_set_won()
        env_rep.cr.commit()  # pylint: disable=invalid-commit

    def test_won_while_another_rep_wins(self):
        env_a, env_b = self.envs
        self._closed_since(env_a, env_b, self.lead_ids[1])
        self.assertEqual(self._frequencies(), {(2.1, 0.1)})
        # core alone: SerializationFailure here, and Odoo retries the
        # request; here it is met on the lock, expected: no bad query logged
        lead = env_b["crm.lead"].browse(self.lead_ids[2])
        with self.assertNoLogs("odoo.sql_db", level="ERROR"):
            lead.action_set_won()
            env_b.flush_all()
        self.assertEqual(lead.stage_id.is_won, True)
        kept = self._kept(env_b)
        self.assertTrue(kept)
        self.assertEqual(set(kept.mapped("step")), {1})
        self.assertEqual(set(kept.mapped("won_count")), {1.0})
        self.assertIn("stage_id", kept.mapped("variable"))
        env_b.cr.commit()  # pylint: disable=invalid-commit
        self.assertEqual(self._frequencies(), {(2.1, 0.1)})
        cron = env_b.ref("crm_sales_sop.ir_cron_sop_scoring_increment")
        env_b.cr.execute(
            "SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s AND id > %s",
            [cron.id, self.last_trigger],
        )
        self.assertEqual(env_b.cr.fetchone()[0], 1)
        # the job adds the second close's: as if they had closed in turn
        self.assertEqual(self._job(), ([], 0))
        self.assertEqual(self._frequencies(), {(3.1, 0.1)})

    def test_reopened_while_another_rep_wins(self):
        env_a, env_b = self.envs
        self._closed_since(env_a, env_b, self.lead_ids[1])
        # the deal won first taken back to the first stage: its counts go
        stage = env_b["crm.stage"].search([("is_won", "=", False)], limit=1)
        env_b["crm.lead"].browse(self.lead_ids[0]).write({"stage_id": stage.id})
        env_b.flush_all()
        self.assertEqual(set(self._kept(env_b).mapped("step")), {-1})
        env_b.cr.commit()  # pylint: disable=invalid-commit
        self.assertEqual(self._job(), ([], 0))
        self.assertEqual(self._frequencies(), {(1.1, 0.1)})

    def test_job_meets_a_close(self):
        env_a, env_b = self.envs
        self._closed_since(env_a, env_b, self.lead_ids[1])
        env_b["crm.lead"].browse(self.lead_ids[2]).action_set_won()
        env_b.cr.commit()  # pylint: disable=invalid-commit
        # the job's transaction begins, a rep reopens the first deal and
        # commits: the job cannot update those rows, and comes back
        env_b.cr.execute("SELECT 1")
        stage = env_a["crm.stage"].search([("is_won", "=", False)], limit=1)
        env_a["crm.lead"].browse(self.lead_ids[0]).write({"stage_id": stage.id})
        env_a.cr.commit()  # pylint: disable=invalid-commit
        self.assertEqual(self._frequencies(), {(1.1, 0.1)})
        with self.assertNoLogs("odoo.sql_db", level="ERROR"):
            env_b["crm.sop.scoring.increment"]._cron_sop_add()
            env_b.flush_all()
        self.assertEqual(len(self._kept(env_b)), len(self._kept(env_a)))
        env_b.cr.commit()  # pylint: disable=invalid-commit
        planned, kept = self._job()
        self.assertEqual(kept, 0)
        self.assertEqual(len(planned), 1)
        self.assertEqual(self._frequencies(), {(2.1, 0.1)})

    def test_won_while_another_close_is_in_progress(self):
        """A close whose team's rows another close holds (not committed yet)
        leaves its increments to the job at once: it does not wait for the
        other to end (then to fail to update the rows all the same), holding
        a worker meanwhile."""
        env_a, env_b = self.envs
        env_b.cr.execute("SELECT 1")
        env_a["crm.lead"].browse(self.lead_ids[1]).action_set_won()
        env_a.flush_all()
        # waiting for env_a's lock would be cancelled (QueryCanceled, not a
        # conflict: the close would fail) instead of blocking this test
        env_b.cr.execute("SET LOCAL statement_timeout = '5s'")
        lead = env_b["crm.lead"].browse(self.lead_ids[2])
        with self.assertNoLogs("odoo.sql_db", level="ERROR"):
            lead.action_set_won()
            env_b.flush_all()
        self.assertEqual(set(self._kept(env_b).mapped("step")), {1})
        env_b.cr.commit()  # pylint: disable=invalid-commit
        env_a.cr.commit()  # pylint: disable=invalid-commit
        self.assertEqual(self._frequencies(), {(2.1, 0.1)})
        self.assertEqual(self._job(), ([], 0))
        self.assertEqual(self._frequencies(), {(3.1, 0.1)})

from concurrent.futures import ThreadPoolExecutor

from odoo import Command
from odoo.tests import HttpCase, tagged

from .load_day import OPERATIONS, SOP_ONLY, RepDay, integrity_problems

REPS = 3
DEALS = 4
LOOPS = 2


@tagged("post_install", "-at_install")
class TestSopLoadSmallRun(HttpCase):
    """The load test's loop and its integrity check on a small run: three
    reps at once, through JSON-RPC, against the test server (which takes
    one request at a time: the real concurrency is the bench's,
    bench/scenario_load.py)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        group = cls.env.ref("sales_team.group_sale_salesman")
        cls.reps = (
            cls.env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                [
                    {
                        "name": f"Load Rep {index}",
                        "login": f"load_rep_{index}",
                        "password": f"load_rep_{index}_pw",
                        "email": f"load.rep.{index}@example.com",
                        "groups_id": [Command.set(group.ids)],
                    }
                    for index in range(REPS)
                ]
            )
        )
        cls.team = cls.env["crm.team"].create(
            {"name": "Load Team", "member_ids": [Command.set(cls.reps.ids)]}
        )
        cls.stages = cls.env["crm.stage"].search(
            [("is_won", "=", False), ("team_id", "in", [False, cls.team.id])]
        )
        customer = cls.env["res.partner"].create({"name": "Load Customer"})
        cls.deals = {
            rep: cls.env["crm.lead"].create(
                [
                    {
                        "name": f"Load deal {rep.login} {index}",
                        "type": "opportunity",
                        "team_id": cls.team.id,
                        "user_id": rep.id,
                        "partner_id": customer.id,
                    }
                    for index in range(DEALS)
                ]
            )
            for rep in cls.reps
        }

    def _day(self, rep, sop=True):
        return RepDay(
            self.base_url(),
            self.env.cr.dbname,
            rep.login,
            f"{rep.login}_pw",
            sop,
            self.deals[rep].ids,
            self.stages.ids,
            self.team.id,
        )

    def test_small_run_keeps_every_deal_whole(self):
        self.assertTrue(all(deals.sop_template_id for deals in self.deals.values()))
        days = [self._day(rep) for rep in self.reps]
        self.assertTrue(all(day.manual for day in days), "each deal has a manual task")

        def work(day):
            return [sample for i in range(LOOPS) for sample in day.step(i)]

        with ThreadPoolExecutor(REPS) as pool:
            samples = [s for result in pool.map(work, days) for s in result]
        self.assertEqual(len(samples), REPS * LOOPS * len(OPERATIONS))
        self.assertEqual(
            [s for s in samples if s[2] not in ("ok", "refused")], [], "no errors"
        )
        self.env.invalidate_all()
        self.assertEqual(
            integrity_problems(self.env.cr, self.env["crm.sop.engine"]), {}
        )
        # the reps' deals moved, were filled in, and every rep made one more
        # each loop and closed one (won, then lost), counted in the history
        leads = (
            self.env["crm.lead"]
            .with_context(active_test=False)
            .search([("team_id", "=", self.team.id)])
        )
        self.assertEqual(len(leads), REPS * (DEALS + LOOPS))
        self.assertTrue(leads.filtered("x_sop_companions"))
        won = leads.filtered(lambda lead: lead.stage_id.is_won and lead.active)
        lost = leads.filtered(lambda lead: not lead.active)
        self.assertEqual((len(won), len(lost)), (REPS * LOOPS // 2,) * 2)
        self.assertEqual(
            lost.lost_reason_id,
            self.env["crm.lost.reason"].search([], limit=1, order="id"),
        )
        self.env.cr.execute(
            """SELECT won_with, lost_with FROM crm_sop_history_count
                WHERE team_id = %s AND task_template_id IS NULL""",
            [self.team.id],
        )
        self.assertEqual(
            [sum(column) for column in zip(*self.env.cr.fetchall(), strict=True)],
            [len(won), len(lost)],
        )

    def test_core_loop_runs_without_the_sop_calls(self):
        day = self._day(self.reps[0], sop=False)
        samples = day.step(0)
        self.assertEqual(
            [s[0] for s in samples], [op for op in OPERATIONS if op not in SOP_ONLY]
        )
        self.assertEqual([s for s in samples if s[2] != "ok"], [])

    def test_integrity_check_finds_what_is_wrong(self):
        """The check can fail: a lost task, a progress that drifted, a next
        step that is done, each found by its own query and by the engine; a
        history count that drifted from the closed deals, by its recount."""
        deals = self.deals[self.reps[0]]
        lost, drifted, done, won = deals[0], deals[1], deals[2], deals[3]
        won.action_set_won()
        self.env.flush_all()
        self.env.cr.execute(
            """UPDATE crm_sop_history_count SET lost_with = lost_with + 1
                WHERE team_id = %s AND task_template_id IS NULL""",
            [self.team.id],
        )
        task = lost.sop_task_ids[0]
        template_id = task.task_template_id.id
        self.env.cr.execute("DELETE FROM crm_sop_task WHERE id = %s", [task.id])
        self.env.cr.execute(
            "UPDATE crm_lead SET sop_progress = sop_progress + 40 WHERE id = %s",
            [drifted.id],
        )
        self.env.cr.execute(
            "UPDATE crm_sop_task SET state = 'done' WHERE id = %s",
            [done.sop_next_task_id.id],
        )
        self.env.invalidate_all()
        problems = integrity_problems(self.env.cr, self.env["crm.sop.engine"])
        self.assertIn((lost.id, template_id), problems["missing task"])
        self.assertIn(drifted.id, [row[0] for row in problems["progress"]])
        self.assertIn(
            done.id,
            [row[0] for row in problems["next step not an open task of the deal"]],
        )
        self.assertEqual(
            [row[0] for row in problems["history counts differ from a recount"]],
            [self.team.id],
        )
        self.assertLessEqual(
            {drifted.id, done.id},
            {row[0] for row in problems["summary differs from the engine's"]},
        )

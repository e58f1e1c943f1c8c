from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import SQL

from ..models.crm_sop_deal import SOP_WON_SQL, sop_won_in_stages_sql
from ..models.crm_sop_history_count import SOP_HISTORY_STALE
from .common import TestSopCommon, sop_migration


@tagged("post_install", "-at_install")
class TestSopHistoryCount(TestSopCommon):
    """The history counts the uplift, the coaching queue and the Task
    Feedback read are kept equal to a count of every closed deal's tasks,
    whatever happens to the deals and their tasks."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.won = cls._sop_close_history(3, won=True, visited=2)
        cls.lost = cls._sop_close_history(2, won=False, visited=1)
        cls.open_lead = cls.env["crm.lead"].create(cls._sop_lead_vals())
        cls.History = cls.env["crm.sop.history.count"]

    def stored(self):
        """The counts, their salespersons' rows summed (as read)."""
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT team_id, company_id, task_template_id, sum(won_with),
                      sum(lost_with), sum(won_without), sum(lost_without),
                      sum(set_aside)
                 FROM crm_sop_history_count
             GROUP BY team_id, company_id, task_template_id
               HAVING sum(won_with) != 0 OR sum(lost_with) != 0
                      OR sum(won_without) != 0 OR sum(lost_without) != 0
                      OR sum(set_aside) != 0"""
        )
        return sorted(self.env.cr.fetchall(), key=str)

    def counted(self):
        """Every closed deal's tasks counted now, as a rebuild would."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """SELECT team, company, template, sum(ww), sum(lw), sum(wo),
                          sum(lo), sum(na)
                     FROM (%s)
                          AS r (team, company, template, salesperson,
                                ww, lw, wo, lo, na)
                 GROUP BY team, company, template
                   HAVING sum(ww) != 0 OR sum(lw) != 0 OR sum(wo) != 0
                          OR sum(lo) != 0 OR sum(na) != 0""",
                self.History._sop_rows_sql(),
            )
        )
        return sorted(self.env.cr.fetchall(), key=str)

    def test_won_by_stage_ids_is_won_by_stage(self):
        """What a close reads (the won stages' ids, no stage joined) says won
        of exactly the deals SOP_WON_SQL says it of, joining each deal's
        stage: true or false, never empty, a deal without stage included."""
        no_stage = self.env["crm.lead"].create(
            [self._sop_lead_vals(name="No stage"), self._sop_lead_vals(name="Gone")]
        )
        no_stage[1].action_archive()
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE crm_lead SET stage_id = NULL, probability = 0 WHERE id = ANY(%s)",
            [no_stage.ids],
        )
        self.env.cr.execute(
            SQL(
                """SELECT l.id, %s, %s FROM crm_lead l
                LEFT JOIN crm_stage s ON s.id = l.stage_id""",
                sop_won_in_stages_sql(self.env["crm.stage"]._sop_won_ids()),
                SQL(SOP_WON_SQL),
            )
        )
        rows = {
            lead_id: (by_ids, joined)
            for lead_id, by_ids, joined in self.env.cr.fetchall()
        }
        self.assertEqual(
            [
                lead_id
                for lead_id, (by_ids, joined) in rows.items()
                if by_ids is not joined
            ],
            [],
        )
        self.assertEqual({rows[lead.id][0] for lead in self.won}, {True})
        self.assertEqual([rows[lead.id][0] for lead in no_stage], [False, False])

    def feedback(self):
        """The Task Feedback's task and set-aside counts per (task template,
        company): the closed deals' from the counts, the others' read."""
        # a view's rows: what an earlier step read is not kept
        self.env["crm.sop.feedback.report"].invalidate_model()
        rows = (
            self.env["crm.sop.feedback.report"]
            .sudo()
            .search_read(
                [("scope", "=", "task")],
                ["task_template_id", "company_id", "task_count", "set_aside_count"],
            )
        )
        return sorted(
            (
                row["task_template_id"][0],
                row["company_id"] and row["company_id"][0],
                row["task_count"],
                row["set_aside_count"],
            )
            for row in rows
            if row["task_count"]
        )

    def feedback_counted(self):
        """Every active task counted now, as the Task Feedback read them
        before the counts kept them."""
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT t.task_template_id, COALESCE(l.company_id, 0), count(*),
                      count(*) FILTER (WHERE t.state = 'na')
                 FROM crm_sop_task t JOIN crm_lead l ON l.id = t.lead_id
                WHERE t.active
             GROUP BY 1, 2"""
        )
        return sorted(
            (template, company or False, total, set_aside)
            for template, company, total, set_aside in self.env.cr.fetchall()
        )

    def assertKept(self, step):
        self.assertEqual(self.stored(), self.counted(), step)
        self.assertEqual(self.feedback(), self.feedback_counted(), step)

    def test_counts_follow_every_change(self):
        self.assertTrue(self.stored(), "the closed history is counted")
        self.assertKept("history created")
        # an import of history: a deal created won, its fields filled (its
        # tasks are evaluated before the deal is counted whole)
        self.env["crm.lead"].create(
            self._sop_lead_vals(
                name="Imported won deal",
                stage_id=self.stage_team1_won.id,
                x_sop_companions="Spouse",
                x_sop_decision_makers="Both",
            )
        )
        self.assertKept("deal created won with its fields filled")
        won, lost = self.won[0], self.lost[0]

        # a task of a won deal ticked, then its fields filled (evaluated)
        self._task(won, self.tt_manual).action_sop_mark_done()
        self.assertKept("task ticked on a won deal")
        self.won[2].write(
            {"x_sop_companions": "Spouse", "x_sop_decision_makers": "Both"}
        )
        self.assertKept("fields filled on a won deal")
        self._task(won, self.tt_manual).action_sop_reopen()
        self.assertKept("task reopened on a won deal")

        # deals reopened, restored, lost, won again
        won.write({"stage_id": self.stage_team1_1.id})
        self.assertKept("won deal back in the pipeline")
        lost.action_unarchive()
        self.assertKept("lost deal restored")
        self.open_lead.action_set_lost()
        self.assertKept("open deal lost")
        self.open_lead.action_unarchive()
        self.open_lead.write({"stage_id": self.stage_team1_won.id})
        self.assertKept("deal won after being lost")

        # a won deal given to another salesperson, then moved (counted out
        # of the new one's rows, its count left on the first one's)
        self.won[1].write({"user_id": self.user_sales_leads.id})
        self.assertKept("won deal reassigned")

        # a won deal moves to another team and company-less
        team = self.env["crm.team"].create({"name": "Other team"})
        self.won[1].write({"team_id": team.id})
        self.assertKept("won deal changes team")
        # back to a team of the test playbook: its tasks come back and are
        # evaluated inside the write that counts the deal out and in
        self.won[1].write({"team_id": self.sales_team_1.id, "x_sop_companions": False})
        self.assertKept("won deal back in its team, a task undone in the write")
        self.won[1].write({"company_id": False})
        self.assertKept("won deal changes company")

        # a task set aside on a lost deal, then restored
        task = self._task(self.lost[1], self.tt_manual)
        task._sop_set_aside("Not for this customer")
        self.assertKept("task set aside on a lost deal")
        task.action_sop_restore()
        self.assertKept("task restored on a lost deal")

        # two closed deals merged, a closed deal deleted
        (self.won[2] | self.open_lead).merge_opportunity()
        self.assertKept("closed deals merged")
        self.lost[1].unlink()
        self.assertKept("closed deal deleted")

        # the playbook's structure and the won stages change: a task
        # template leaving the playbook counts its closed deals' tasks out,
        # on its rows alone
        self.tt_manual.active = False
        self.assertKept("task template archived")
        self.tt_manual.active = True
        self.assertKept("task template restored (open deals only)")
        other = self.env["crm.sop.template"].create({"name": "Other playbook"})
        self.tt_visit.stage_id = self.env["crm.sop.stage"].create(
            {"name": "Elsewhere", "template_id": other.id}
        )
        self.assertKept("task template moved to another playbook")
        self.sop_stage_pitch.active = False
        self.assertKept("SOP stage archived with its task templates")
        # the whole history counted anew: by the review facts' job, after
        # the manager's request
        self.stage_team1_won.is_won = False
        self.assertRecounted("a won stage is no longer won")
        team.unlink()
        self.assertRecounted("team deleted")
        self.env["crm.stage"].create(
            {"name": "Won too", "is_won": True, "team_id": self.sales_team_1.id}
        ).unlink()
        self.assertRecounted("a pipeline stage deleted")

    def assertRecounted(self, step):
        """The change marked the history to count anew; the job does it."""
        params = self.env["ir.config_parameter"]
        self.assertTrue(params.get_param(SOP_HISTORY_STALE), step)
        self.env["crm.sop.task.fact"]._cron_sop_rebuild()
        self.assertFalse(params.get_param(SOP_HISTORY_STALE), step)
        self.assertKept(step)

    def test_each_salesperson_closes_on_rows_of_their_own(self):
        """Two reps closing deals of one team update rows of their own: at
        once, neither waits for the other nor fails to serialize (one row
        per team did)."""

        def rows():
            self.env.flush_all()
            self.env.cr.execute(
                """SELECT team_id, company_id, task_template_id, user_key,
                          won_with, lost_with, won_without, lost_without
                     FROM crm_sop_history_count"""
            )
            return {row[:4]: row[4:] for row in self.env.cr.fetchall()}

        leads = self.env["crm.lead"].create(
            [
                self._sop_lead_vals(user_id=self.user_sales_salesman.id),
                self._sop_lead_vals(user_id=self.user_sales_leads.id),
            ]
        )
        for lead, close in zip(
            leads, ("action_set_won", "action_set_lost"), strict=True
        ):
            before = rows()
            getattr(lead, close)()
            after = rows()
            changed = {key for key in after if after[key] != before.get(key)}
            self.assertTrue(changed, f"{close}: counted")
            self.assertEqual({key[3] for key in changed}, {lead.user_id.id}, close)
        self.assertKept("two salespersons' closes")

    def test_uplift_reads_the_counts_whatever_the_history(self):
        """The uplift's queries do not grow with the closed deals."""
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        rep_lead = lead.with_user(self.user_sales_salesman)
        rep_lead.get_sop_uplift()

        def queries_of_uplift():
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            result = rep_lead.get_sop_uplift()
            return self.env.cr.sql_log_count - before, result

        count, first = queries_of_uplift()
        self._sop_close_history(30, won=True, visited=10)
        self._sop_close_history(30, won=False, visited=5)
        count_after, second = queries_of_uplift()
        self.assertEqual(count_after, count)
        self.assertEqual(second["won"], first["won"] + 30)
        self.assertEqual(second["lost"], first["lost"] + 30)

    def test_counts_are_the_engines_only(self):
        """The counts aggregate every company's closed deals of a team: no
        rep or manager reads or writes them through RPC (the engine reads
        them for the figures it serves, each company's apart)."""
        self.assertTrue(self.stored())
        for user in (self.user_sales_salesman, self.user_sales_manager):
            History = self.History.with_user(user)
            with self.assertRaises(AccessError):
                History.search_read([], ["won_with"])
            with self.assertRaises(AccessError):
                History.create({"won_with": 1000})
            with self.assertRaises(AccessError):
                History.sudo().search([], limit=1).with_user(user).write(
                    {"won_with": 1000}
                )
        # the uplift still serves the rep its own company's figures
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        self.assertEqual(
            lead.with_user(self.user_sales_salesman).get_sop_uplift()["won"],
            len(self.won),
        )

    def test_migration_drops_the_team_wide_key(self):
        """A database of 18.0.1.3.0 has one key per (team, company, task
        template): the migration drops it before the module is updated, so
        that two salespersons' rows of one team can be written."""
        self.env.cr.execute(
            """CREATE UNIQUE INDEX crm_sop_history_count_key
                   ON crm_sop_history_count (team_id, company_id, task_template_id)
                   WHERE FALSE"""
        )
        sop_migration("18.0.1.4.0", "pre-history_user_key.py").migrate(
            self.env.cr, "18.0.1.3.0"
        )
        self.env.cr.execute(
            "SELECT 1 FROM pg_indexes WHERE indexname = 'crm_sop_history_count_key'"
        )
        self.assertFalse(self.env.cr.fetchall())

    def test_migration_counts_what_was_set_aside(self):
        """A database of 18.0.1.5.0 gets the set-aside column empty (the ORM
        adds it): the migration counts it for the closed deals there are,
        and the Task Feedback reads them right."""
        task = self._task(self.lost[1], self.tt_manual)
        task._sop_set_aside("Not for this customer")
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_sop_history_count SET set_aside = NULL")
        self.assertNotEqual(self.stored(), self.counted())
        sop_migration("18.0.1.6.0", "post-migration.py").migrate(
            self.env.cr, "18.0.1.5.0"
        )
        self.assertKept("set-aside column counted by the migration")

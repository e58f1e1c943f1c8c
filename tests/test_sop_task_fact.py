from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import SQL

from .common import TestSopCommon


@tagged("post_install", "-at_install")
class TestSopTaskFact(TestSopCommon):
    """The task analysis' facts (crm.sop.task.fact) are kept equal to what
    the one SQL definition decides for every deal now, whatever happens to
    the deals, their tasks, their stage moves and the playbook."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.won = cls._sop_close_history(3, won=True, visited=2)
        cls.lost = cls._sop_close_history(2, won=False, visited=1)
        cls.open_lead = cls.env["crm.lead"].create(cls._sop_lead_vals())
        cls.Fact = cls.env["crm.sop.task.fact"]

    def stored(self, commit=True):
        """The facts (task, script) as the tables hold them once the
        transaction's precommit hooks ran (``commit``), or as they are now."""
        self.env.flush_all()
        if commit:
            self.env.cr.flush()
            # the job a change of the pipeline triggers (soon after)
            self.Fact._cron_sop_rebuild()
        self.env.cr.execute(
            "SELECT task_id, lead_id, task_template_id, sop_stage_id, template_id,"
            " user_id, team_id, company_id, date_closed, lead_create_date,"
            " date_done, date_left, required, done, won, reached, adhered"
            " FROM crm_sop_task_fact ORDER BY task_id"
        )
        tasks = self.env.cr.fetchall()
        self.env.cr.execute(
            "SELECT lead_id, mail_template_id, user_id, team_id, company_id,"
            " template_id, sop_stage_id, crm_stage_id, date_first_sent,"
            " date_closed, lead_create_date, send_count, won, closed, advanced"
            " FROM crm_sop_script_fact ORDER BY lead_id, mail_template_id"
        )
        return tasks, self.env.cr.fetchall()

    def decided(self):
        """Every deal's facts decided now, as a rebuild would."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL("SELECT * FROM (%s) f ORDER BY 1", self.Fact._sop_facts_sql())
        )
        tasks = self.env.cr.fetchall()
        self.env.cr.execute(
            SQL(
                "SELECT * FROM (%s) f ORDER BY 1, 2",
                self.env["crm.sop.script.fact"]._sop_facts_sql(),
            )
        )
        return tasks, self.env.cr.fetchall()

    def assertKept(self, step):
        self.assertEqual(self.stored(), self.decided(), step)

    def test_facts_follow_every_change(self):
        self.assertTrue(self.stored()[0], "the closed deals have facts")
        self.assertKept("history created")
        # scripts sent: to a won deal (then it goes back and moves on), an
        # open one (then lost); one send undone
        won, lost = self.won[0], self.lost[0]
        (won | self.open_lead).partner_id = self.customer
        won.action_sop_send_script(self.mail_template.id, channel="copy")
        self.open_lead.action_sop_send_script(self.mail_template.id, channel="copy")
        self.assertTrue(self.stored()[1], "the scripts sent have facts")
        self.assertKept("scripts sent")
        sends = self.env["crm.sop.script.send"].search(
            [("lead_id", "=", self.open_lead.id)]
        )
        sends.write({"delivery_state": "failed"})
        self.assertKept("a send refused by the mail server")
        sends.write({"delivery_state": "sent"})
        self.assertKept("the send delivered after all")
        self.env["crm.lead"].create(
            self._sop_lead_vals(
                name="Imported won deal",
                stage_id=self.stage_team1_won.id,
                x_sop_companions="Spouse",
                x_sop_decision_makers="Both",
            )
        )
        self.assertKept("deal created won with its fields filled")

        self._task(won, self.tt_manual).action_sop_mark_done()
        self.assertKept("task ticked on a won deal")
        self.won[2].write(
            {"x_sop_companions": "Spouse", "x_sop_decision_makers": "Both"}
        )
        self.assertKept("fields filled on a won deal (evaluated in SQL)")
        self._task(won, self.tt_manual).action_sop_reopen()
        self.assertKept("task reopened on a won deal")

        # an open deal moves on (its required tasks' stage left), and back
        self.open_lead.write({"stage_id": self.stage_team1_2.id})
        self.assertKept("open deal moved past a SOP stage")
        self.open_lead.write({"stage_id": self.stage_team1_1.id})
        self.assertKept("open deal moved back")
        # back and forth between stages it already left: nothing to refresh
        other = self.env["crm.lead"].create(self._sop_lead_vals(name="Back and forth"))
        other.write({"stage_id": self.stage_team1_2.id})
        self.assertKept("a second open deal moved past a SOP stage")
        # that move made in an earlier request: a stage first left in this
        # transaction (dated with its time) marks its deal, whichever of its
        # moves left it
        self.env.cr.execute(
            "UPDATE crm_sop_stage_move SET date = date - interval '1 hour'"
            " WHERE lead_id = %s",
            [other.id],
        )
        self.env["crm.sop.stage.move"].invalidate_model()
        self.env["crm.sop.task.fact"]._sop_refresh([other.id])
        self.assertKept("its move an hour ago")
        for stage in (self.stage_team1_1, self.stage_team1_2, self.stage_team1_1):
            other.write({"stage_id": stage.id})
            self.assertFalse(
                self.env.cr.precommit.data.get("crm_sop_task_fact.lead_ids"),
                "a move past no new stage marks nothing",
            )
            self.assertKept(f"open deal back and forth ({stage.name})")
        # a lost deal's stage written (its facts' reach follows), restored
        self.lost[0].write({"stage_id": self.stage_team1_2.id})
        self.assertKept("lost deal's stage written")
        self.lost[0].write({"stage_id": self.stage_team1_1.id})
        self.assertKept("lost deal's stage written back")
        # a deal reopened after a loss keeps its closing date until a move
        other.action_set_lost()
        other.action_unarchive()
        self.assertKept("deal reopened after a loss")
        other.write({"stage_id": self.stage_team1_2.id})
        self.assertKept("reopened deal moved (its closing date emptied)")
        self._task(self.open_lead, self.tt_manual).action_sop_mark_done()
        self.assertKept("task done after the stage was left")

        won.write({"stage_id": self.stage_team1_1.id})
        self.assertKept("won deal back in the pipeline")
        lost.action_unarchive()
        self.assertKept("lost deal restored")
        self.open_lead.action_set_lost()
        self.assertKept("open deal lost")
        self.open_lead.action_unarchive()
        self.open_lead.write({"stage_id": self.stage_team1_won.id})
        self.assertKept("deal won after being lost")

        team = self.env["crm.team"].create({"name": "Other team"})
        self.won[1].write({"team_id": team.id})
        self.assertKept("won deal changes team (its playbook's tasks go)")
        self.won[1].write({"team_id": self.sales_team_1.id, "x_sop_companions": False})
        self.assertKept("won deal back in its team, a task undone in the write")
        self.won[1].write({"company_id": False, "user_id": False})
        self.assertKept("won deal changes company and salesperson")

        task = self._task(self.lost[1], self.tt_manual)
        task._sop_set_aside("Not for this customer")
        self.assertKept("task set aside on a lost deal")
        task.action_sop_restore()
        self.assertKept("task restored on a lost deal")

        (self.won[2] | self.open_lead).merge_opportunity()
        self.assertKept("closed deals merged")
        self.lost[1].unlink()
        self.assertKept("closed deal deleted")
        self.env["crm.sop.script.send"].search([("lead_id", "=", won.id)]).unlink()
        self.assertKept("a send deleted")

        # the playbook's structure and the pipeline change
        self.tt_manual.required = not self.tt_manual.required
        self.assertKept("a task made required or not")
        self.stage_team1_2.sequence, self.stage_team1_1.sequence = (
            self.stage_team1_1.sequence,
            self.stage_team1_2.sequence,
        )
        self.assertKept("two pipeline stages swapped")
        self.tt_manual.stage_id = self.sop_stage_contact
        self.assertKept("a task moved to another SOP stage")
        self.tt_manual.active = False
        self.assertKept("task template archived")
        self.stage_team1_won.is_won = False
        self.assertKept("a won stage is no longer won")
        team.unlink()
        self.assertKept("team deleted")

    def test_a_pipeline_change_has_the_job_make_every_deals_facts_anew(self):
        """Stages reordered: not in the transaction (seconds over a large
        history), by the job it triggers."""
        self.assertKept("history created")
        cron = self.env.ref("crm_sales_sop.ir_cron_sop_facts_rebuild")
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)])
        self.stage_team1_won.sequence, self.stage_team1_1.sequence = (
            self.stage_team1_1.sequence,
            self.stage_team1_won.sequence,
        )
        self.env.flush_all()
        self.env.cr.flush()
        self.assertTrue(
            self.env["ir.config_parameter"].get_param(
                "crm_sales_sop.review_facts_stale"
            )
        )
        self.assertGreater(
            self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]),
            len(triggers),
        )
        self.assertNotEqual(
            self.stored(commit=False), self.decided(), "not yet made anew"
        )
        cron.method_direct_trigger()
        self.assertFalse(
            self.env["ir.config_parameter"].get_param(
                "crm_sales_sop.review_facts_stale"
            )
        )
        self.assertEqual(self.stored(commit=False), self.decided())

    def test_a_deleted_salesperson_or_team_is_emptied_in_place(self):
        """As the foreign key of the deal empties it, without making every
        deal's facts anew (no job triggered)."""
        rep = self.env["res.users"].create(
            {"name": "Leaving rep", "login": "sop_leaving_rep"}
        )
        team = self.env["crm.team"].create({"name": "Closing team"})
        self.won[0].write({"user_id": rep.id, "team_id": team.id})
        self.assertKept("a won deal given a rep and a team")
        params = self.env["ir.config_parameter"]
        params.set_param("crm_sales_sop.review_facts_stale", False)
        rep.unlink()
        team.unlink()
        self.assertFalse(params.get_param("crm_sales_sop.review_facts_stale"))
        self.assertEqual(self.stored(commit=False), self.decided())
        self.env.cr.execute(
            "SELECT count(*) FROM crm_sop_task_fact WHERE lead_id = %s"
            " AND user_id IS NULL AND team_id IS NULL",
            [self.won[0].id],
        )
        self.assertTrue(self.env.cr.fetchone()[0])

    def test_script_facts_are_made_where_a_script_was_sent(self):
        """A deal never sent a script has its task facts made alone; once
        sent one, its script facts follow; its sends deleted, the facts
        they left are deleted too (they count as script facts to make),
        then it has none again."""
        Fact, won = self.Fact, self.won[0]
        self.stored()
        self.assertFalse(Fact._sop_with_scripts([won.id]), "nothing sent yet")
        won.partner_id = self.customer
        won.action_sop_send_script(self.mail_template.id, channel="copy")
        self.assertTrue(Fact._sop_with_scripts([won.id, self.lost[0].id]))
        self.assertKept("a script sent to a won deal")
        self.assertTrue([row for row in self.stored()[1] if row[0] == won.id])
        sends = self.env["crm.sop.script.send"].search([("lead_id", "=", won.id)])
        sends.sudo().unlink()
        self.assertTrue(
            Fact._sop_with_scripts([won.id]), "its facts are left to delete"
        )
        self.assertKept("its sends deleted")
        self.assertFalse(
            [row for row in self.stored()[1] if row[0] == won.id],
            "no script facts left",
        )
        self.assertFalse(Fact._sop_with_scripts([won.id]))
        # closing a deal never sent a script makes its task facts as the
        # one definition decides
        self.open_lead.action_set_won()
        self.assertKept("a deal won without any script")

    def test_a_deal_created_open_marks_nothing(self):
        """Created in a stage (a kanban column), not closed: no facts can
        exist, no statement at commit."""
        self.stored()
        self.env["crm.lead"].create(
            self._sop_lead_vals(name="Quick create", stage_id=self.stage_team1_2.id)
        )
        self.env.flush_all()
        self.assertFalse(
            self.env.cr.precommit.data.get("crm_sop_task_fact.lead_ids"),
            "an open deal created in a stage is not marked",
        )

    def test_a_tick_writes_its_own_row_in_place(self):
        """A task ticked or reopened changes its own row only: on an open deal
        in the task's stage (or before it) it has none, and nothing is made
        anew at commit; once the deal left the stage or closed, its row is
        written in place (done, done date, done in time), still without
        making the deal's facts anew; a task set aside and restored marks
        its deal (its row goes and comes back). By hand and by the deal's
        data alike, as the salesperson."""

        def pending():
            self.env.flush_all()
            return self.env.cr.precommit.data.get("crm_sop_task_fact.lead_ids")

        def row(task):
            self.env.cr.execute(
                "SELECT done, adhered FROM crm_sop_task_fact WHERE task_id = %s",
                [task.id],
            )
            return self.env.cr.fetchone()

        # as the salesperson who ticks (the deals are hers)
        lead = self.open_lead.with_user(self.user_sales_salesman)
        visit = self._task(lead, self.tt_visit)
        self.assertTrue(visit.task_template_id.required)
        filled = {
            self.field_lead_companions.name: "Spouse",
            self.field_lead_decision.name: "Both",
        }
        emptied = dict.fromkeys(filled, False)
        self.stored()
        # in Contact, the visit's stage; the manual task's stage ahead
        lead.write(emptied)
        self.assertEqual(visit.state, "todo")
        self.assertFalse(pending(), "reopened by the data in the stage it stands in")
        lead.write(filled)
        self.assertEqual(visit.state, "done")
        self.assertFalse(pending(), "ticked by the data in the stage it stands in")
        self._task(lead, self.tt_manual).action_sop_mark_done()
        self.assertFalse(pending(), "ticked by hand before its stage")
        self._task(lead, self.tt_manual).action_sop_reopen()
        self.assertFalse(pending(), "reopened by hand before its stage")
        self.assertKept("ticked and reopened in the stage the deal stands in")
        # the deal left Contact with the visit done: its row, done in time
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertKept("moved past the task's stage")
        self.assertEqual(row(visit), (True, True))
        lead.write(emptied)
        self.assertFalse(pending(), "reopened after the stage was left")
        self.assertEqual(row(visit), (False, False), "written in place")
        self.assertKept("reopened by the data after the stage was left")
        lead.write(filled)
        self.assertFalse(pending(), "ticked after the stage was left")
        self.assertKept("ticked by the data after the stage was left")
        lead.write(emptied)
        # setting a required task aside is a manager's
        visit.with_user(self.env.user)._sop_set_aside("Not for this customer")
        self.assertEqual(pending(), {lead.id}, "set aside: its row goes")
        self.assertKept("set aside after the stage was left")
        visit.with_user(self.env.user).action_sop_restore()
        self.assertEqual(pending(), {lead.id}, "restored: its row comes back")
        self.assertKept("restored after the stage was left")
        # a won deal reached every stage: a tick by hand writes its row
        won = self.won[0].with_user(self.user_sales_salesman)
        manual = self._task(won, self.tt_manual)
        for action in (manual.action_sop_mark_done, manual.action_sop_reopen):
            action()
            self.assertFalse(pending(), f"{action.__name__} on a won deal")
            self.assertKept(f"{action.__name__} by hand on a won deal")

    def test_a_change_the_product_does_not_see_is_found(self):
        """The comparison can fail: a task done in SQL, behind the
        product's back, leaves the facts as they were."""
        self.assertKept("history created")
        self.env.cr.execute(
            "UPDATE crm_sop_task SET state = 'done' WHERE lead_id = %s"
            " AND state = 'todo'",
            [self.won[0].id],
        )
        self.env.invalidate_all()
        self.assertNotEqual(self.stored(), self.decided())
        self.Fact._sop_rebuild()
        self.assertKept("made anew")

    def test_the_report_reads_this_transactions_changes(self):
        """The task analysis read in the transaction that changed a deal
        reads its facts made anew (before the commit)."""
        Report = self.env["crm.sop.task.report"]
        domain = [("lead_id", "=", self.lost[0].id), ("reached", "=", True)]
        self.assertTrue(Report.search_count(domain))
        self.lost[0].action_unarchive()  # reopened: no longer closed
        self.assertEqual(Report.search_count(domain), 0)
        self.assertEqual(self.stored(commit=False), self.decided())

    def test_facts_are_the_engines_only(self):
        self.assertTrue(self.stored()[0])
        self.won[0].partner_id = self.customer
        self.won[0].action_sop_send_script(self.mail_template.id, channel="copy")
        self.env.cr.flush()
        for user in (self.user_sales_salesman, self.user_sales_manager):
            Script = self.env["crm.sop.script.fact"].with_user(user)
            with self.assertRaises(AccessError):
                Script.search_read([], ["won"])
            with self.assertRaises(AccessError):
                Script.create({"lead_id": self.won[0].id})
            with self.assertRaises(AccessError):
                Script.sudo().search([], limit=1).with_user(user).write({"won": False})
            Fact = self.Fact.with_user(user)
            with self.assertRaises(AccessError):
                Fact.search_read([], ["won"])
            with self.assertRaises(AccessError):
                Fact.create({"task_id": self._task(self.won[0], self.tt_manual).id})
            with self.assertRaises(AccessError):
                Fact.sudo().search([], limit=1).with_user(user).write({"won": False})

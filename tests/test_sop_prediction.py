from datetime import datetime
from unittest.mock import patch

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged, users
from odoo.tools import SQL

from odoo.addons.mail.tests.common import mail_new_test_user

from ..models import crm_sop_prediction
from .common import TestSopCommon, sop_migration
from .test_ui import _rep_panel_deals


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopUplift(TestSopCommon):
    """The uplift of the next tasks on a known history of sales_team_1:
    "Visit data" (companions and decision makers filled) was done on 30 of 40
    won deals and on 10 of 40 lost ones."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.history_won = cls._sop_close_history(40, True, 30)
        cls.history_lost = cls._sop_close_history(40, False, 10)
        # closed deals of another team do not count
        other_team = cls.env["crm.team"].create({"name": "Other team"})
        cls._sop_close_history(5, True, 5).write({"team_id": other_team.id})
        cls.lead = cls.env["crm.lead"].create(
            cls._sop_lead_vals(
                name="Open deal",
                partner_id=cls.customer.id,
                probability=20,
                expected_revenue=12000,
            )
        )

    def _task_row(self, uplift, task_template):
        return next(
            row
            for row in uplift["tasks"]
            if self.env["crm.sop.task"].browse(row["task_id"]).task_template_id
            == task_template
        )

    @users("user_sales_salesman")
    def test_uplift_with_enough_history(self):
        lead = self.lead.with_user(self.env.user)
        uplift = lead.get_sop_uplift()
        self.assertTrue(uplift["enough_history"])
        self.assertEqual((uplift["won"], uplift["lost"]), (40, 40))
        self.assertEqual(uplift["probability"], 20)
        self.assertEqual(uplift["expected_revenue"], 12000)
        visit = self._task_row(uplift, self.tt_visit)
        self.assertEqual(
            (
                visit["won_with"],
                visit["lost_with"],
                visit["won_without"],
                visit["lost_without"],
            ),
            (30, 10, 10, 30),
        )
        # odds 20/80 = 0.25, odds ratio (30.5 x 30.5) / (10.5 x 10.5) = 8.4376
        # -> odds 2.1094 -> 67.8 %
        self.assertEqual(visit["probability_if_done"], 67.8)
        # the customer profile was never filled, on any deal
        profile = self._task_row(uplift, self.tt_customer)
        self.assertEqual((profile["won_with"], profile["lost_with"]), (0, 0))
        self.assertEqual((profile["won_without"], profile["lost_without"]), (40, 40))
        # never done on a closed deal: nothing to compare, no figure
        self.assertFalse(profile["probability_if_done"])
        # the next step comes first, then the open tasks in SOP order (their
        # SOP stage's, then their own), at most five tasks
        self.assertEqual(uplift["tasks"][0]["task_id"], lead.sop_next_task_id.id)
        self.assertLessEqual(len(uplift["tasks"]), 5)
        rest = (
            lead.sudo().sop_task_ids.filtered(
                lambda t: t.state == "todo" and t != lead.sop_next_task_id
            )
        ).sorted(
            lambda t: (
                t.stage_id.sequence,
                t.stage_id.id,
                t.task_template_id.sequence,
                t.task_template_id.id,
            )
        )
        self.assertEqual([row["task_id"] for row in uplift["tasks"][1:]], rest.ids[:4])

    @users("user_sales_salesman")
    def test_not_enough_history(self):
        self.history_lost[:1].sudo().toggle_active()  # reopened: 39 lost
        uplift = self.lead.with_user(self.env.user).get_sop_uplift()
        self.assertFalse(uplift["enough_history"])
        self.assertEqual((uplift["won"], uplift["lost"]), (40, 39))
        visit = self._task_row(uplift, self.tt_visit)
        self.assertFalse(visit["probability_if_done"])
        # the evidence stays (the reopened deal was a visited one), without a
        # percentage
        self.assertEqual((visit["won_with"], visit["lost_with"]), (30, 9))

    def test_uplift_only_for_readers(self):
        other = mail_new_test_user(
            self.env, login="sop_uplift_other", groups="sales_team.group_sale_salesman"
        )
        with self.assertRaises(AccessError):
            self.lead.with_user(other).get_sop_uplift()

    @users("user_sales_salesman")
    def test_uplift_queries(self):
        lead = self.lead.with_user(self.env.user)
        lead.get_sop_uplift()
        self.env.invalidate_all()
        with self.assertQueryCount(user_sales_salesman=11):
            lead.get_sop_uplift()


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopProgressBand(TestSopCommon):
    """The SOP progress band feeds predictive lead scoring."""

    def _tasks(self, lead, *task_templates):
        return lead.sop_task_ids.filtered(
            lambda t: t.task_template_id in task_templates
        )

    def test_band_is_offered_to_predictive_lead_scoring(self):
        """A variable a manager adds in CRM settings (core's wizard), as the
        other scoring variables: then listed in crm.pls_fields."""
        variable = self.env.ref("crm_sales_sop.frequency_field_sop_progress_band")
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("crm.pls_fields", "phone_state,email_state")
        wizard = self.env["crm.lead.pls.update"].create({})
        wizard.pls_fields |= variable
        wizard.action_update_crm_lead_probabilities()
        self.assertIn(
            "sop_progress_band", params.get_param("crm.pls_fields").split(",")
        )
        self.assertIn("sop_progress_band", self.env["crm.lead"]._pls_get_safe_fields())

    def test_band_follows_progress_then_freezes(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        self.assertEqual((lead.sop_progress, lead.sop_progress_band), (0, "0"))
        # 2 of 6 tasks: 33 %
        lead.write({"x_sop_companions": "A", "x_sop_decision_makers": "B"})
        self._tasks(lead, self.tt_manual).action_sop_mark_done()
        self.assertEqual((lead.sop_progress, lead.sop_progress_band), (33, "25"))
        # won: the band stays the one it closed with
        lead.write({"stage_id": self.stage_team1_won.id})
        self._tasks(lead, self.tt_manual).action_sop_reopen()
        self.assertEqual((lead.sop_progress, lead.sop_progress_band), (17, "25"))
        # lost too
        lost = self.env["crm.lead"].create(self._sop_lead_vals())
        lost.action_set_lost()
        lost.write({"x_sop_companions": "A", "x_sop_decision_makers": "B"})
        self._tasks(lost, self.tt_manual).sudo().write({"state": "done"})
        self.env["crm.sop.engine"]._sop_evaluate(lost)
        self.assertEqual(lost.sop_progress_band, "0")
        # nobody else writes it
        with self.assertRaises(AccessError):
            lead.with_user(self.user_sales_salesman).write({"sop_progress_band": "100"})

    def test_automated_probability_learns_from_the_band(self):
        # as a manager adds it in CRM settings (Predictive Lead Scoring)
        params = self.env["ir.config_parameter"].sudo()
        fields = params.get_param("crm.pls_fields") or ""
        params.set_param(
            "crm.pls_fields", ",".join(filter(None, [fields, "sop_progress_band"]))
        )
        Frequency = self.env["crm.lead.scoring.frequency"]
        Frequency.create(
            [
                {
                    "variable": "sop_progress_band",
                    "value": value,
                    "won_count": won,
                    "lost_count": lost,
                    "team_id": self.sales_team_1.id,
                }
                for value, won, lost in (("0", 5.1, 40.1), ("25", 30.1, 10.1))
            ]
            + [
                {
                    "variable": "stage_id",
                    "value": str(self.stage_team1_1.id),
                    "won_count": 35.1,
                    "lost_count": 50.1,
                    "team_id": self.sales_team_1.id,
                }
            ]
        )
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        self.assertEqual(lead.sop_progress_band, "0")
        before = lead.automated_probability
        lead.write({"x_sop_companions": "A", "x_sop_decision_makers": "B"})
        self._tasks(lead, self.tt_manual).action_sop_mark_done()
        self.assertEqual(lead.sop_progress_band, "25")
        self.assertGreater(lead.automated_probability, before + 20)
        self.assertEqual(lead.probability, lead.automated_probability)


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopStageDays(TestSopCommon):
    """Days in the SOP stage against the won deals, in working days of the
    company's calendar (Monday to Friday here), from the SOP stage history."""

    def _stint(self, lead, start, end=None, closed=None):
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE crm_sop_stage_log SET date_start = %s, date_end = %s "
            "WHERE lead_id = %s AND sop_stage_id = %s",
            (start, end, lead.id, self.sop_stage_contact.id),
        )
        if closed:
            self.env.cr.execute(
                "UPDATE crm_lead SET date_closed = %s WHERE id = %s", (closed, lead.id)
            )
        self.env.invalidate_all()

    def _closed_stints(self, *stints):
        """Each (deal, start, closed): its stint from ``start``, open, and
        its closing date."""
        for lead, start, closed in stints:
            self._stint(lead, start, None, closed)

    def _open_and_won(self, count):
        """An open deal and ``count`` won deals created now, the company on a
        Monday-to-Friday calendar without holidays, in UTC."""
        self.env.company.resource_calendar_id = self.env["resource.calendar"].create(
            {"name": "Mon-Fri, no holiday", "tz": "UTC"}
        )
        lead = self.env["crm.lead"].create(self._sop_lead_vals(name="Open"))
        won = self.env["crm.lead"].create(
            [self._sop_lead_vals(name=f"Won {i}") for i in range(count)]
        )
        won.write({"stage_id": self.stage_team1_won.id})
        return lead, won

    def test_days_in_stage_and_median_of_won_deals(self):
        now = datetime(2026, 11, 25, 10, 0)  # a Wednesday
        with self.mock_datetime_and_now(now):
            lead, won = self._open_and_won(4)
            lost = self.env["crm.lead"].create(self._sop_lead_vals(name="Lost"))
            lost.action_set_lost()
            history = self.env["crm.sop.stage.log"].search([("lead_id", "=", lead.id)])
            self.assertEqual(
                (history.sop_stage_id, history.date_start, history.date_end),
                (self.sop_stage_contact, now, False),
            )
            # in Contact since Monday 16: Tue 17 to Tue 24 passed, 6 days
            self._stint(lead, datetime(2026, 11, 16, 10))
            # won deals: 2, 4 and 4 working days in Contact; one ended by its
            # closing; one closed more than a year ago does not count
            self._stint(won[0], datetime(2026, 11, 2, 9), datetime(2026, 11, 5, 9))
            self._stint(won[1], datetime(2026, 11, 2, 9), datetime(2026, 11, 9, 9))
            self._stint(
                won[2], datetime(2026, 11, 4, 9), None, datetime(2026, 11, 11, 9)
            )
            self._stint(
                won[3],
                datetime(2025, 1, 6, 9),
                datetime(2025, 1, 20, 9),
                datetime(2025, 1, 20, 9),
            )
            self._stint(lost, datetime(2026, 10, 1, 9), datetime(2026, 11, 20, 9))
            uplift = lead.with_user(self.user_sales_salesman).get_sop_uplift()
        self.assertEqual(uplift["stage_days"], 6)
        self.assertEqual(uplift["won_median_days"], 4)
        self.assertEqual(uplift["won_stage_deals"], 3)

    def test_median_of_the_last_won_deals(self):
        """The median reads the last won deals that stood in the SOP stage,
        newest closing first (STAGE_DAYS_WON_DEALS), not the whole year: the
        read does not grow with the history."""
        now = datetime(2026, 11, 25, 10, 0)  # a Wednesday
        with self.mock_datetime_and_now(now):
            lead, won = self._open_and_won(4)
            # a deal won without a stint in the stage is not one of them
            skipped = self.env["crm.lead"].create(self._sop_lead_vals(name="Won"))
            skipped.write({"stage_id": self.stage_team1_won.id})
            self.env.flush_all()
            self.env.cr.execute(
                "DELETE FROM crm_sop_stage_log WHERE lead_id = %s", (skipped.id,)
            )
            self.env.cr.execute(
                "UPDATE crm_lead SET date_closed = %s WHERE id = %s",
                (datetime(2026, 11, 24, 9), skipped.id),
            )
            self._stint(lead, datetime(2026, 11, 16, 10))
            # closed the 2nd, 3rd, 16th and 20th: 1, 2, 5 and 9 working days
            self._closed_stints(
                (won[0], datetime(2026, 10, 29, 9), datetime(2026, 11, 2, 9)),
                (won[1], datetime(2026, 10, 29, 9), datetime(2026, 11, 3, 9)),
                (won[2], datetime(2026, 11, 6, 9), datetime(2026, 11, 16, 9)),
                (won[3], datetime(2026, 11, 6, 9), datetime(2026, 11, 20, 9)),
            )
            rep_lead = lead.with_user(self.user_sales_salesman)
            uplift = rep_lead.get_sop_uplift()
            self.assertEqual(
                (uplift["won_median_days"], uplift["won_stage_deals"]), (3.5, 4)
            )
            # the last two closed: 5 and 9 days
            self.patch(crm_sop_prediction, "STAGE_DAYS_WON_DEALS", 2)
            uplift = rep_lead.get_sop_uplift()
        self.assertEqual(
            (
                uplift["stage_days"],
                uplift["won_median_days"],
                uplift["won_stage_deals"],
            ),
            (6, 7, 2),
        )

    def test_stints_read_by_the_deals_found(self):
        """The won deals' stints are read by their ids (the index on deal
        and stage), not by a scan of every stint of the SOP stage: the read
        does not grow with the history of the other deals."""
        lead, won = self._open_and_won(200)
        other = self.env["crm.lead"].create(self._sop_lead_vals(name="Other"))
        self.env.flush_all()
        # a long history: 20,000 closed stints of the stage, of another deal
        self.env.cr.execute(
            """INSERT INTO crm_sop_stage_log
                      (lead_id, sop_stage_id, date_start, date_end)
               SELECT %s, %s, now() - interval '2 days', now() - interval '1 day'
                 FROM generate_series(1, 20000)""",
            (other.id, self.sop_stage_contact.id),
        )
        self.env.cr.execute("ANALYZE crm_sop_stage_log, crm_lead")
        statements = []
        Cursor = type(self.env.cr)
        execute = Cursor.execute

        def kept(cr, query, params=None, log_exceptions=True):
            if "WITH won AS" in getattr(query, "code", str(query)):
                statements.append(query)
            return execute(cr, query, params, log_exceptions)

        with patch.object(Cursor, "execute", kept):
            uplift = lead.with_user(self.user_sales_salesman).get_sop_uplift()
        self.assertEqual(uplift["won_stage_deals"], 200)
        self.assertEqual(len(statements), 1)
        self.env.cr.execute(SQL("EXPLAIN (FORMAT JSON) %s", statements[0]))
        nodes, scans = [self.env.cr.fetchone()[0][0]["Plan"]], []
        while nodes:
            node = nodes.pop()
            nodes += node.get("Plans", [])
            if node["Node Type"] == "Seq Scan":
                scans.append(node["Relation Name"])
        self.assertNotIn("crm_sop_stage_log", scans)

    def test_stints_indexed_by_deal_and_stage(self):
        """The stints are read per deal and SOP stage through one index; the
        upgrade drops the deal's own index, which Odoo keeps."""

        def indexes():
            self.env.cr.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'crm_sop_stage_log'"
            )
            return {row[0] for row in self.env.cr.fetchall()}

        self.assertIn("crm_sop_stage_log_lead_stage_index", indexes())
        self.env.cr.execute(
            "CREATE INDEX crm_sop_stage_log__lead_id_index "
            "ON crm_sop_stage_log (lead_id)"
        )
        sop_migration("18.0.1.7.0", "post-migration.py").migrate(
            self.env.cr, "18.0.1.6.0"
        )
        self.assertNotIn("crm_sop_stage_log__lead_id_index", indexes())
        self.assertIn("crm_sop_stage_log_lead_stage_index", indexes())

    def test_days_in_stage_count_in_the_calendars_time_zone(self):
        """Stints are counted in the calendar's days: in Shanghai (UTC+8) a
        stint started Monday 17:00 UTC started on Tuesday."""
        self.env.company.resource_calendar_id = self.env["resource.calendar"].create(
            {"name": "Mon-Fri, Shanghai", "tz": "Asia/Shanghai"}
        )
        now = datetime(2026, 11, 25, 10, 0)  # Wednesday 18:00 in Shanghai
        with self.mock_datetime_and_now(now):
            lead = self.env["crm.lead"].create(self._sop_lead_vals(name="Open"))
            won = self.env["crm.lead"].create(self._sop_lead_vals(name="Won"))
            won.write({"stage_id": self.stage_team1_won.id})
            # since Tuesday 17 01:00 there: Wed 18 to Tue 24 passed, 5 days
            # (6 counted in UTC)
            self._stint(lead, datetime(2026, 11, 16, 17))
            # Tuesday 3 01:00 to Thursday 5 17:00 there: Wednesday 4 only
            # (2 in UTC)
            self._stint(won, datetime(2026, 11, 2, 17), datetime(2026, 11, 5, 9))
            uplift = lead.with_user(self.user_sales_salesman).get_sop_uplift()
        self.assertEqual((uplift["stage_days"], uplift["won_median_days"]), (5, 1))

    def test_median_counts_won_deals_only(self):
        """A deal with a closing date that is not won (active in a stage
        that is not won, as predictive lead scoring tells) is not one of the
        won deals, however recent."""
        now = datetime(2026, 11, 25, 10, 0)  # a Wednesday
        with self.mock_datetime_and_now(now):
            lead, won = self._open_and_won(2)
            other = self.env["crm.lead"].create(self._sop_lead_vals(name="Open"))
            self._stint(lead, datetime(2026, 11, 16, 10))
            self._closed_stints(
                # 1 and 2 working days
                (won[0], datetime(2026, 10, 29, 9), datetime(2026, 11, 2, 9)),
                (won[1], datetime(2026, 10, 29, 9), datetime(2026, 11, 3, 9)),
                # open, closed the 24th in the database: 16 days, not counted
                (other, datetime(2026, 10, 30, 9), datetime(2026, 11, 24, 9)),
            )
            uplift = lead.with_user(self.user_sales_salesman).get_sop_uplift()
        self.assertEqual(
            (uplift["won_median_days"], uplift["won_stage_deals"]), (1.5, 2)
        )

    def test_history_follows_the_sop_stage(self):
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        Log = self.env["crm.sop.stage.log"]
        self.assertEqual(
            Log.search([("lead_id", "=", lead.id)]).sop_stage_id, self.sop_stage_contact
        )
        # Contact done, the deal moves to Pitch: the Contact stint ends
        self.customer.write({"x_sop_gender": "male", "x_sop_age_range": "25_34"})
        lead.write({"x_sop_companions": "A", "x_sop_decision_makers": "B"})
        self.env["crm.sop.script.send"]._sop_record(lead, self.mail_template, "copy")
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.sop_stage_id, self.sop_stage_pitch)
        logs = Log.search([("lead_id", "=", lead.id)], order="id")
        self.assertEqual(
            logs.sop_stage_id, self.sop_stage_contact + self.sop_stage_pitch
        )
        self.assertTrue(logs[0].date_end)
        self.assertFalse(logs[1].date_end)
        # reps do not read the history itself
        with self.assertRaises(AccessError):
            Log.with_user(self.user_sales_salesman).search([])

    def test_history_when_the_orm_is_behind_the_database(self):
        """The summary's statement (the setup job's, which writes the
        playbook with it) leaves the stints out when no deal enters another
        SOP stage as the ORM holds them; a deal whose stored SOP stage
        differs all the same gets its stints from what the database held."""
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        # created earlier: its summary is in the database
        self.env.flush_all()
        Log = self.env["crm.sop.stage.log"]
        self.assertEqual(lead.sop_stage_id, self.sop_stage_contact)
        # the database says Pitch, the ORM's cache still Contact
        self.env.cr.execute(
            "UPDATE crm_lead SET sop_stage_id = %s WHERE id = %s",
            (self.sop_stage_pitch.id, lead.id),
        )
        # the deal's summary written by the statement: it stays in Contact
        self.env["crm.sop.engine"]._sop_update_summary(
            lead, templates={lead.id: self.playbook.id}
        )
        self.env.invalidate_all()
        self.assertEqual(lead.sop_stage_id, self.sop_stage_contact)
        logs = Log.search([("lead_id", "=", lead.id)], order="id")
        # from Pitch (as the database held it) into Contact: the open stint
        # ends and a new one starts
        self.assertEqual(logs.sop_stage_id, self.sop_stage_contact)
        self.assertEqual(len(logs), 2)
        self.assertTrue(logs[0].date_end)
        self.assertFalse(logs[1].date_end)


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopHistoryCompanies(TestSopCommon):
    """sales_team_1 is shared by two companies. Its closed deals in the main
    company (A): 10 won with their visit data, 5 lost without; in company 2
    (B): 40 won (30 with visit data), 40 lost (10 with). The history of a
    deal is its company's only: the uplift, the days in the SOP stage and
    the coaching queue of A's deal ignore B's closed deals."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._activate_multi_company()
        cls.env.company.resource_calendar_id = cls.env["resource.calendar"].create(
            {"name": "Mon-Fri, no holiday", "tz": "UTC"}
        )
        cls.rep_b = cls.user_sales_manager_mc
        cls.won_a = cls._sop_close_history(10, True, 10)
        cls._sop_close_history(5, False, 0)
        company_b = {"company_id": cls.company_2.id, "user_id": cls.rep_b.id}
        cls.won_b = cls._sop_close_history(40, True, 30, **company_b)
        cls._sop_close_history(40, False, 10, **company_b)
        cls.lead_a, cls.lead_b = cls.env["crm.lead"].create(
            [
                cls._sop_lead_vals(
                    name="Deal A", probability=20, expected_revenue=12000
                ),
                cls._sop_lead_vals(
                    name="Deal B", probability=20, expected_revenue=10000, **company_b
                ),
            ]
        )

    def _visit(self, uplift):
        row = next(
            row
            for row in uplift["tasks"]
            if self.env["crm.sop.task"].browse(row["task_id"]).task_template_id
            == self.tt_visit
        )
        return row, (
            row["won_with"],
            row["lost_with"],
            row["won_without"],
            row["lost_without"],
        )

    def test_fixture(self):
        self.assertEqual(
            (self.won_a + self.lead_a).company_id, self.company_main, "company A"
        )
        self.assertEqual((self.won_b + self.lead_b).company_id, self.company_2)
        self.assertFalse(self.sales_team_1.company_id)

    def test_uplift_of_each_company(self):
        uplift = self.lead_a.with_user(self.user_sales_salesman).get_sop_uplift()
        self.assertEqual((uplift["won"], uplift["lost"]), (10, 5))
        self.assertFalse(uplift["enough_history"])
        visit, counts = self._visit(uplift)
        self.assertEqual(counts, (10, 0, 0, 5))
        self.assertFalse(visit["probability_if_done"])
        # B's deal, by B's rep in B: B's history only, enough of it
        lead_b = self.lead_b.with_user(self.rep_b).with_context(
            allowed_company_ids=self.company_2.ids
        )
        uplift = lead_b.get_sop_uplift()
        self.assertEqual((uplift["won"], uplift["lost"]), (40, 40))
        visit, counts = self._visit(uplift)
        self.assertEqual(counts, (30, 10, 10, 30))
        self.assertEqual(visit["probability_if_done"], 67.8)

    def test_deal_without_company_reads_deals_without_company(self):
        """A deal of the shared team without company: the closed deals
        without company (one won here), neither A's nor B's."""
        shared = self.env["crm.lead"].create(
            [
                self._sop_lead_vals(name="Shared won", company_id=False),
                self._sop_lead_vals(name="Shared open", company_id=False),
            ]
        )
        shared[0].write({"stage_id": self.stage_team1_won.id})
        self.assertFalse(shared.company_id)
        uplift = shared[1].with_user(self.user_sales_salesman).get_sop_uplift()
        self.assertEqual((uplift["won"], uplift["lost"]), (1, 0))
        _visit, counts = self._visit(uplift)
        self.assertEqual(counts, (0, 0, 1, 0))

    def test_won_median_of_the_deal_company(self):
        """The won deals in the SOP stage the median reads: A's 10 for A's
        deal, B's 40 for B's deal (all of them stayed in Contact)."""
        uplift = self.lead_a.with_user(self.user_sales_salesman).get_sop_uplift()
        self.assertEqual(uplift["won_stage_deals"], 10)
        self.company_2.resource_calendar_id = self.env.company.resource_calendar_id
        uplift = (
            self.lead_b.with_user(self.rep_b)
            .with_context(allowed_company_ids=self.company_2.ids)
            .get_sop_uplift()
        )
        self.assertEqual(uplift["won_stage_deals"], 40)

    def test_coaching_queue_per_company(self):
        """A manager of both companies: A's deal is below A's history floor
        (no gain), B's deal gains from B's history: visit data, 20 % -> 67.8
        %, 47.8 points of 10,000. The figures above the queue are those of
        the company the manager works in (A)."""
        Coaching = self.env["crm.sop.coaching"].with_user(self.rep_b)

        def queue(companies):
            result = Coaching.with_context(allowed_company_ids=companies.ids).get_queue(
                self.sales_team_1.id
            )
            rows = {
                row["lead_id"]: row
                for row in result["rows"]
                if row["lead_id"] in (self.lead_a + self.lead_b).ids
            }
            return result, rows

        result, rows = queue(self.company_main + self.company_2)
        self.assertEqual((result["won"], result["lost"]), (10, 5))
        self.assertFalse(result["enough_history"])
        self.assertEqual(set(rows), {self.lead_a.id, self.lead_b.id})
        self.assertFalse(rows[self.lead_a.id]["gain"])
        row_b = rows[self.lead_b.id]
        self.assertEqual(
            self.env["crm.sop.task"].browse(row_b["task_id"]).task_template_id,
            self.tt_visit,
        )
        self.assertEqual(
            (row_b["probability_if_done"], row_b["gain"], row_b["score"]),
            (67.8, 47.8, 4780.0),
        )
        # working in B only: B's history and deals
        result, rows = queue(self.company_2)
        self.assertEqual((result["won"], result["lost"]), (40, 40))
        self.assertTrue(result["enough_history"])
        self.assertEqual(set(rows), {self.lead_b.id})
        # a manager of A only: A's history and deals, nothing of B
        result = (
            self.env["crm.sop.coaching"]
            .with_user(self.user_sales_manager)
            .get_queue(self.sales_team_1.id)
        )
        self.assertEqual((result["won"], result["lost"]), (10, 5))
        self.assertNotIn(self.lead_b.id, [row["lead_id"] for row in result["rows"]])


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopUpliftUi(HttpCase):
    def test_last_deal_answer_shows(self):
        """Pager next, then back, the first answer held: the card shows the
        deal on screen."""
        proposal = _rep_panel_deals(self.env, "sop_uplift_rep", "en_US")
        fresh = self.env["crm.lead"].search(
            [("name", "=", "Fresh deal"), ("user_id", "=", proposal.user_id.id)]
        )
        fresh.expected_revenue = 5000
        self.start_tour(
            "/odoo/crm", "crm_sales_sop_uplift_fast", login="sop_uplift_rep"
        )

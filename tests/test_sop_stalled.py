from datetime import datetime, time, timedelta

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, tagged, users

from ..models.crm_sop_stage import SOP_STALL_DAYS_MAX
from .common import TestSopCommon, sop_migration


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopStalled(TestSopCommon):
    """Stalled deals: the SOP has not moved for the stall days of its SOP
    stage, in working days of the company's calendar (Shanghai, Monday to
    Friday 08:00-17:00, a public holiday on Tuesday 2026-03-10)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.calendar = cls.env["resource.calendar"].create(
            {
                "name": "Shanghai office",
                "tz": "Asia/Shanghai",
                "attendance_ids": [
                    (
                        0,
                        0,
                        {
                            "name": f"{day} {period}",
                            "dayofweek": str(day),
                            "hour_from": start,
                            "hour_to": end,
                            "day_period": period,
                        },
                    )
                    for day in range(5)
                    for period, start, end in (
                        ("morning", 8, 12),
                        ("afternoon", 13, 17),
                    )
                ],
            }
        )
        cls.company = cls.env.company
        cls.company.resource_calendar_id = cls.calendar
        # Tuesday 2026-03-10, the whole day in Shanghai (UTC+8)
        cls.env["resource.calendar.leaves"].create(
            {
                "name": "Public holiday",
                "calendar_id": cls.calendar.id,
                "company_id": cls.company.id,
                "date_from": datetime(2026, 3, 9, 16, 0),
                "date_to": datetime(2026, 3, 10, 15, 59, 59),
            }
        )
        cls.sop_stage_contact.stall_days = 2

    def _at(self, day, hour):
        """A naive UTC datetime for ``hour`` o'clock in Shanghai on March ``day``."""
        return datetime(2026, 3, day, hour) - timedelta(hours=8)

    def _lead(self, **vals):
        return self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id, **vals)
        )

    def test_work_days_are_kept_until_the_calendar_changes(self):
        """A calendar's working days are computed once a day per worker (a
        year of intervals costs ~30 ms on every deal form), and a new public
        holiday is taken at once."""
        Engine = self.env["crm.sop.engine"]
        company = self.env.company
        calendar = company.resource_calendar_id
        now = datetime(2026, 12, 4, 12)
        since = now - timedelta(days=20)
        before = Engine._sop_work_days(calendar, company, since, 5, now)
        self.assertTrue(before)
        with self.assertQueryCount(1):  # what the days depend on, then cached
            self.assertEqual(
                Engine._sop_work_days(calendar, company, since, 5, now), before
            )
        holiday = before[-2]
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Public holiday",
                "calendar_id": calendar.id,
                "company_id": company.id,
                "date_from": datetime.combine(holiday, time(0)),
                "date_to": datetime.combine(holiday, time(23, 59)),
            }
        )
        self.assertEqual(
            Engine._sop_work_days(calendar, company, since, 5, now),
            [day for day in before if day != holiday],
        )

    def test_stalled_after_working_days_skipping_weekend_and_holiday(self):
        # created on Friday 2026-03-06, 10:00 in Shanghai
        with self.mock_datetime_and_now(self._at(6, 10)):
            lead = self._lead(name="Quiet deal")
            idle_elsewhere = self._lead(
                name="No stall days", stage_id=self.stage_team1_2.id
            )
        self.assertEqual(lead.sop_stage_id, self.sop_stage_contact)
        self.assertEqual(lead.sop_stage_date, self._at(6, 10))
        self.assertEqual(idle_elsewhere.sop_stage_id, self.sop_stage_pitch)
        Engine = self.env["crm.sop.engine"]
        # Monday: Monday itself has not passed; Wednesday: Monday passed and
        # Tuesday is a public holiday; Thursday: Monday and Wednesday passed
        for day, stalled in ((9, False), (10, False), (11, False), (12, True)):
            with self.subTest(day=day), self.mock_datetime_and_now(self._at(day, 9)):
                Engine._sop_flag_stalled()
                self.assertEqual(lead.sop_stalled, stalled)
                self.assertFalse(idle_elsewhere.sop_stalled, "Pitch has no stall days")
        self.assertEqual(
            self.env["crm.lead"].search(
                [("sop_stalled", "=", True), ("id", "in", (lead + idle_elsewhere).ids)]
            ),
            lead,
            "the Stalled filter finds it",
        )
        # without the holiday, Wednesday would have been enough
        self.env["resource.calendar.leaves"].search(
            [("calendar_id", "=", self.calendar.id)]
        ).unlink()
        with self.mock_datetime_and_now(self._at(11, 9)):
            Engine._sop_flag_stalled()
        self.assertTrue(lead.sop_stalled)

        # the rep fills the visit data on Thursday: the SOP moves, the flag goes
        with self.mock_datetime_and_now(self._at(12, 11)):
            lead.with_user(self.user_sales_salesman).write(
                {"x_sop_companions": "Her sister", "x_sop_decision_makers": "Both"}
            )
            self.assertFalse(lead.sop_stalled)
            self.assertEqual(lead.sop_stage_date, self._at(12, 11))
            Engine._sop_flag_stalled()
            self.assertFalse(lead.sop_stalled, "it moved today")
        # a pipeline move that brings a new SOP stage moves it too; a write
        # that moves nothing of the SOP does not
        with self.mock_datetime_and_now(self._at(12, 12)):
            lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.sop_stage_id, self.sop_stage_pitch)
        self.assertEqual(lead.sop_stage_date, self._at(12, 12))
        with self.mock_datetime_and_now(self._at(12, 15)):
            lead.write({"description": "Called back", "priority": "2"})
        self.assertEqual(lead.sop_stage_date, self._at(12, 12))

    def test_only_forward_movement_restarts_the_clock(self):
        """Setting a task aside and restoring it, or ticking a task and
        reopening it, or clearing and re-filling data, is no movement: the
        stall clock stays where it was and the deal stays stalled."""
        with self.mock_datetime_and_now(self._at(2, 10)):
            lead = self._lead(name="Idle deal")
        Engine = self.env["crm.sop.engine"]
        with self.mock_datetime_and_now(self._at(6, 9)):
            Engine._sop_flag_stalled()
        self.assertTrue(lead.sop_stalled)
        rep_lead = lead.with_user(self.user_sales_salesman)
        manual = self._task(rep_lead, self.tt_manual)
        with self.mock_datetime_and_now(self._at(6, 11)):
            manual._sop_set_aside("Agreed on the phone, nothing to tick")
            self.assertEqual(manual.state, "na")
            manual.action_sop_restore()
            self.assertEqual(lead.sop_stage_date, self._at(2, 10))
            self.assertTrue(lead.sop_stalled)
            # ticked and reopened: the clock comes back where it stood
            manual.action_sop_mark_done()
            self.assertEqual(lead.sop_stage_date, self._at(6, 11))
            manual.action_sop_reopen()
            self.assertEqual(lead.sop_stage_date, self._at(2, 10))
            Engine._sop_flag_stalled()
            self.assertTrue(lead.sop_stalled)
            # data filled, cleared: the task was done, the clock moved once
            rep_lead.write(
                {"x_sop_companions": "Her sister", "x_sop_decision_makers": "Both"}
            )
            self.assertEqual(lead.sop_stage_date, self._at(6, 11))
        with self.mock_datetime_and_now(self._at(10, 11)):
            rep_lead.write({"x_sop_companions": False})
            rep_lead.write({"x_sop_companions": "Her sister"})
            self.assertEqual(lead.sop_stage_date, self._at(6, 11), "no new movement")
            # a move back and forth in the pipeline: only the forward one
            rep_lead.write({"stage_id": self.stage_team1_2.id})
            self.assertEqual(lead.sop_stage_date, self._at(10, 11))
        with self.mock_datetime_and_now(self._at(11, 11)):
            rep_lead.write({"stage_id": self.stage_team1_1.id})
            self.assertEqual(lead.sop_stage_date, self._at(10, 11))

    def test_flag_cleared_when_the_deal_closes_or_stall_days_go(self):
        with self.mock_datetime_and_now(self._at(2, 10)):
            won, lost, kept = (
                self._lead(name=name) for name in ("Won", "Lost", "Kept")
            )
        Engine = self.env["crm.sop.engine"]
        with self.mock_datetime_and_now(self._at(6, 9)):
            self.assertCountEqual(
                [
                    lead_id
                    for lead_id in Engine._sop_flag_stalled()
                    if lead_id in (won + lost + kept).ids
                ],
                (won + lost + kept).ids,
            )
            won.action_set_won()
            lost.action_set_lost()
            Engine._sop_flag_stalled()
        self.assertEqual(
            (won + lost + kept).filtered("sop_stalled"),
            kept,
            "closed deals are not stalled",
        )
        self.sop_stage_contact.stall_days = 0
        with self.mock_datetime_and_now(self._at(6, 9)):
            Engine._sop_flag_stalled()
        self.assertFalse(kept.sop_stalled, "0 stall days: never stalled")

    def test_stall_pass_query_count_is_constant(self):
        """8 queries, and the savepoint of its one company (2)."""
        with self.mock_datetime_and_now(self._at(2, 10)):
            self._lead(name="One")
        Engine = self.env["crm.sop.engine"]
        with self.mock_datetime_and_now(self._at(6, 9)):
            Engine._sop_flag_stalled()  # warm the caches
            self.env.invalidate_all()
            with self.assertQueryCount(10):
                Engine._sop_flag_stalled()
        with self.mock_datetime_and_now(self._at(2, 10)):
            self.env["crm.lead"].create(
                [self._sop_lead_vals(name=f"Many {i}") for i in range(20)]
            )
        with self.mock_datetime_and_now(self._at(6, 9)):
            Engine._sop_flag_stalled()
            self.env.invalidate_all()
            with self.assertQueryCount(10):
                stalled = Engine._sop_flag_stalled()
        self.assertGreaterEqual(len(stalled), 21)

    @users("user_sales_salesman")
    def test_rep_cannot_write_the_engine_fields(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals(name="Mine"))
        for vals in ({"sop_stalled": False}, {"sop_stage_date": "2026-01-01"}):
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                lead.write(vals)
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                self.env["crm.lead"].create(self._sop_lead_vals(**vals))

    @users("user_sales_manager")
    def test_stall_days_bounded(self):
        """A manager types 0 to 365 working days; past it, or negative, is
        refused with a message and nothing changes (form and write)."""
        stage = self.sop_stage_contact.with_env(self.env)
        self.assertIn(str(SOP_STALL_DAYS_MAX), stage._fields["stall_days"].help)
        for days in (SOP_STALL_DAYS_MAX + 1, 3000000, -1):
            with self.subTest(days=days):
                with self.assertRaises(ValidationError) as refused:
                    stage.write({"stall_days": days})
                self.assertIn("from 0 (never) to 365", str(refused.exception))
                with self.assertRaises(ValidationError):
                    with Form(
                        stage, view="crm_sales_sop.crm_sop_stage_view_form"
                    ) as form:
                        form.stall_days = days
                self.env.invalidate_all()
                self.assertEqual(stage.stall_days, 2)
        stage.write({"stall_days": SOP_STALL_DAYS_MAX})
        self.assertEqual(stage.stall_days, SOP_STALL_DAYS_MAX)

    def test_stall_days_past_the_bound_never_overflow(self):
        """A database that held stall days past the bound before it existed
        (the CHECK could not be added): the pass counts them as they say,
        never stalled, and the deals of the other stages are flagged."""
        with self.mock_datetime_and_now(self._at(2, 10)):
            quiet = self._lead(name="Quiet deal")
            pitch = self._lead(name="Pitch deal", stage_id=self.stage_team1_2.id)
        self.env.cr.execute(
            "ALTER TABLE crm_sop_stage DROP CONSTRAINT crm_sop_stage_stall_days_positive"
        )
        self.env.cr.execute(
            "UPDATE crm_sop_stage SET stall_days = 3000000 WHERE id = %s",
            [self.sop_stage_pitch.id],
        )
        self.env.invalidate_all()
        with self.mock_datetime_and_now(self._at(6, 9)):
            stalled = self.env["crm.sop.engine"]._sop_flag_stalled()
        self.assertIn(quiet.id, stalled)
        self.assertNotIn(pitch.id, stalled)
        self.assertEqual((quiet.sop_stalled, pitch.sop_stalled), (True, False))
        # ten years later, still never stalled
        with self.mock_datetime_and_now(self._at(6, 9) + timedelta(days=3650)):
            self.env["crm.sop.engine"]._sop_flag_stalled()
        self.assertFalse(pitch.sop_stalled)

    def test_upgrade_keeps_the_stall_clock(self):
        """From a version without the stall clock (18.0.1.0.0): the deals get
        their last task done (else their creation); then 18.0.1.2.0 starts
        their last forward move there, so no deal is stalled by the upgrade."""
        with self.mock_datetime_and_now(self._at(2, 10)):
            idle = self._lead(name="Idle")
            worked = self._lead(name="Worked")
        with self.mock_datetime_and_now(self._at(3, 15)):
            worked.write(
                {"x_sop_companions": "Her sister", "x_sop_decision_makers": "Both"}
            )
        leads = idle + worked
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE crm_lead SET sop_stage_date = NULL, sop_forward_date = NULL"
            " WHERE id = ANY(%s)",
            [leads.ids],
        )
        for version, script in (
            ("18.0.1.1.0", "post-migration.py"),
            ("18.0.1.2.0", "post-stall_clock.py"),
        ):
            sop_migration(version, script).migrate(self.env.cr, "18.0.1.0.0")
        leads.invalidate_recordset()
        self.assertEqual(idle.sop_stage_date, idle.create_date)
        self.assertEqual(worked.sop_stage_date, self._at(3, 15))
        self.assertEqual(worked.sop_forward_date, self._at(3, 15))
        # and the clock holds on the deal's next summary
        with self.mock_datetime_and_now(self._at(4, 9)):
            self.env["crm.sop.engine"]._sop_update_summary(worked, forward=())
        self.assertEqual(worked.sop_stage_date, self._at(3, 15))

import email
import socket
import threading
from datetime import date, datetime, timedelta
from email.header import decode_header, make_header
from unittest.mock import patch

import psycopg2
import pytz
from aiosmtpd.controller import Controller

import odoo
from odoo import SUPERUSER_ID, api
from odoo.exceptions import AccessError, ValidationError
from odoo.modules.migration import load_script
from odoo.tests import Form, TransactionCase, tagged, users
from odoo.tools import html2plaintext
from odoo.tools.misc import file_path
from odoo.tools.safe_eval import safe_eval

from odoo.addons.mail.tests.common import mail_new_test_user

from ..models.crm_sop_reminder import CrmSopReminder
from ..models.res_company import SOP_REMINDER_OFFSET_MAX
from .common import SopTransactionsMixin, TestSopCommon


def _office_calendar(env, name, tz, hours=((8, 12), (13, 17))):
    """Monday to Friday, ``hours`` in ``tz``."""
    return env["resource.calendar"].create(
        {
            "name": name,
            "tz": tz,
            "attendance_ids": [
                (
                    0,
                    0,
                    {
                        "name": f"{day} {start}",
                        "dayofweek": str(day),
                        "hour_from": start,
                        "hour_to": end,
                        "day_period": "morning" if start < 12 else "afternoon",
                    },
                )
                for day in range(5)
                for start, end in hours
            ],
        }
    )


class TestSopReminderCommon(TestSopCommon):
    """The company works Monday to Friday 08:00-12:00 and 13:00-17:00 on a
    Shanghai calendar; reminders 30 minutes after the workday starts and 60
    before it ends (the defaults). Every other user of the database opted
    out, so that only the reps of the test are prompted."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.calendar = _office_calendar(cls.env, "Office", "Asia/Shanghai")
        cls.company.resource_calendar_id = cls.calendar
        cls.env["res.users"].with_context(active_test=False).search([]).write(
            {"sop_reminder_opt_out": True}
        )

    @classmethod
    def _rep(cls, login, tz, lang="en_US", notification_type="inbox", leads=1):
        rep = mail_new_test_user(
            cls.env,
            login=login,
            name=login.replace("_", " ").title(),
            email=f"{login}@test.example.com",
            tz=tz,
            lang=lang,
            notification_type=notification_type,
            groups="sales_team.group_sale_salesman",
        )
        rep.partner_id.tz = tz  # mail_new_test_user sets it from the env user
        cls.env["crm.lead"].create(
            [
                cls._sop_lead_vals(
                    name=f"{rep.name} deal {i}",
                    user_id=rep.id,
                    partner_id=cls.customer.id,
                    expected_revenue=1000 * (i + 1),
                    probability=10,
                )
                for i in range(leads)
            ]
        )
        return rep

    def _remind(self, utc, **kwargs):
        """Run the job's reminder part at ``utc`` (naive UTC datetime)."""
        with self.mock_datetime_and_now(utc):
            return self.env["crm.sop.reminder"]._sop_remind(**kwargs)

    def _prompts(self, reps):
        """{(login, local date, moment): local time sent 'HH:MM'}."""
        result = {}
        for reminder in self.env["crm.sop.reminder"].search(
            [("user_id", "in", reps.ids)]
        ):
            rep = reminder.user_id
            tz = pytz.timezone(rep.tz or self.calendar.tz)
            sent = pytz.utc.localize(reminder.create_date).astimezone(tz)
            key = (rep.login, reminder.local_date, reminder.moment)
            self.assertNotIn(key, result)
            result[key] = sent.strftime("%a %H:%M")
        return result

    def _messages(self, rep):
        """The digests a rep received (not the notices of deals assigned)."""
        return self.env["mail.message"].search(
            [
                ("partner_ids", "in", rep.partner_id.ids),
                ("message_type", "=", "user_notification"),
                ("model", "=", "res.partner"),
                ("res_id", "=", rep.partner_id.id),
            ]
        )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopReminder(TestSopReminderCommon):
    def test_time_zones_and_daylight_saving(self):
        """The job every 15 minutes from Thursday 2026-03-26 to Monday
        2026-03-30 (Paris moves to summer time on Sunday 29): each rep is
        prompted at 08:30 and 16:00 of their own day, Friday and Monday,
        never on the weekend."""
        reps = (
            self._rep("rep_kolkata", "Asia/Kolkata")
            + self._rep("rep_kiritimati", "Pacific/Kiritimati")
            + self._rep("rep_paris", "Europe/Paris")
            + self._rep("rep_no_tz", False)
        )
        utc = datetime(2026, 3, 26, 0, 0)
        while utc < datetime(2026, 3, 31, 0, 0):
            self._remind(utc)
            utc += timedelta(minutes=15)
        prompts = {
            key: sent
            for key, sent in self._prompts(reps).items()
            if date(2026, 3, 27) <= key[1] <= date(2026, 3, 30)
        }
        expected = {}
        for login in ("rep_kolkata", "rep_kiritimati", "rep_paris", "rep_no_tz"):
            for day in (date(2026, 3, 27), date(2026, 3, 30)):
                expected[login, day, "start"] = f"{day:%a} 08:30"
                expected[login, day, "end"] = f"{day:%a} 16:00"
        self.assertEqual(prompts, expected)
        # in UTC, Paris moved by an hour, Kiritimati is a day ahead
        paris = self.env["crm.sop.reminder"].search(
            [("user_id.login", "=", "rep_paris"), ("moment", "=", "start")]
        )
        self.assertIn(datetime(2026, 3, 27, 7, 30), paris.mapped("create_date"))
        self.assertIn(datetime(2026, 3, 30, 6, 30), paris.mapped("create_date"))
        kiritimati = self.env["crm.sop.reminder"].search(
            [
                ("user_id.login", "=", "rep_kiritimati"),
                ("local_date", "=", date(2026, 3, 30)),
                ("moment", "=", "start"),
            ]
        )
        self.assertEqual(kiritimati.create_date, datetime(2026, 3, 29, 18, 30))

    def test_digest(self):
        """One message in the rep's inbox: their deals, stalled and overdue
        ones first then by what is at stake, each with its next step and
        links; at the end of the day, what they completed today."""
        rep = self._rep("rep_digest", "Asia/Shanghai", leads=3)
        deals = self.env["crm.lead"].search([("user_id", "=", rep.id)])
        small, medium, big = deals.sorted("expected_revenue")
        self.sop_stage_contact.stall_days = 1
        # the deals were created earlier: their summary is in the database
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE crm_lead SET sop_stage_date = '2026-02-20' WHERE id = %s",
            [small.id],
        )
        medium.date_deadline = date(2026, 3, 1)
        # Monday 2026-03-02, 08:30 in Shanghai: the job flags, then prompts
        with self.mock_datetime_and_now(datetime(2026, 3, 2, 0, 30)):
            self.env["crm.sop.reminder"]._cron_sop_reminder()
        self.assertTrue(small.sop_stalled)
        message = self._messages(rep)
        self.assertEqual(len(message), 1)
        self.assertEqual(message.subject, "Your Sales SOP today: 3 deals to move")
        body = str(message.body)
        positions = [body.index(lead.name) for lead in (small, medium, big)]
        self.assertEqual(positions, sorted(positions), "stalled, overdue, at stake")
        self.assertIn("Stalled", body)
        self.assertIn("Overdue", body)
        self.assertIn(f"/odoo/crm/{big.id}", body)
        self.assertIn(f"/odoo/my-sop-day/{big.sop_next_task_id.id}", body)
        self.assertIn(big.sop_next_task_id.name, body)
        self.assertIn("/odoo/my-sop-day", body)
        self.assertEqual(
            message.notification_ids.mapped("notification_type"), ["inbox"]
        )
        # the messaging menu (systray) lists it: the inbox the rep fetches
        # (mail's /mail/inbox/messages) has it, on a thread (their contact)
        inbox = (
            self.env["mail.message"]
            .with_user(rep)
            ._message_fetch(domain=[("needaction", "=", True)])["messages"]
        )
        self.assertIn(message, inbox)
        self.assertEqual(
            (message.model, message.res_id), ("res.partner", rep.partner_id.id)
        )
        ledger = self.env["crm.sop.reminder"].search([("user_id", "=", rep.id)])
        self.assertEqual(
            (ledger.moment, ledger.local_date, ledger.message_id),
            ("start", date(2026, 3, 2), message),
        )
        # the rep works on the big deal during the day
        with self.mock_datetime_and_now(datetime(2026, 3, 2, 3, 0)):
            big.with_user(rep).write(
                {"x_sop_companions": "Her sister", "x_sop_decision_makers": "Both"}
            )
            # the system completes a task of another deal (an evaluation run
            # as the superuser): not the rep's work
            medium.write({"x_sop_companions": "Alone", "x_sop_decision_makers": "Him"})
        self.assertEqual(
            medium.sop_task_ids.filtered("done_user_id").done_user_id.ids, [1]
        )
        self._remind(datetime(2026, 3, 2, 7, 45))  # 15:45: nothing yet
        self.assertEqual(len(self._messages(rep)), 1)
        self._remind(datetime(2026, 3, 2, 8, 0))  # 16:00
        end = self._messages(rep) - message
        self.assertEqual(end.subject, "Before you leave: 3 deals to move")
        self.assertIn("Completed today", str(end.body))
        self.assertIn(self.tt_visit.name, str(end.body))
        done_part = str(end.body).split("Completed")[1]
        # per deal, each task once, only what a person completed
        self.assertIn(big.name, done_part)
        self.assertIn(f"/odoo/crm/{big.id}", done_part)
        self.assertEqual(done_part.count(self.tt_visit.name), 1)
        self.assertNotIn(medium.name, done_part)
        self.assertNotIn(self.tt_customer.name, done_part)
        self.assertNotIn("None", html2plaintext(str(end.body)))

    def test_language_and_email(self):
        """A rep who works in Chinese reads the digest in Chinese; one who
        chose email notifications gets it by email."""
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["crm_sales_sop"], ["zh_CN"])
        rep_zh = self._rep("rep_zh", "Asia/Shanghai", lang="zh_CN")
        rep_mail = self._rep("rep_mail", "Asia/Shanghai", notification_type="email")
        self._remind(datetime(2026, 3, 2, 0, 30))
        message_zh = self._messages(rep_zh)
        self.assertIn("个商机待推进", message_zh.subject)
        self.assertIn("下一步", str(message_zh.body))
        message_mail = self._messages(rep_mail)
        self.assertEqual(
            message_mail.notification_ids.mapped("notification_type"), ["email"]
        )
        # on the rep's own contact, yet nobody else reads it (another rep
        # reads that contact, not the digest notified to its owner)
        with self.assertRaises(AccessError):
            message_mail.with_user(rep_zh).read(["body"])
        self.assertFalse(
            self.env["mail.message"]
            .with_user(rep_zh)
            .search([("id", "=", message_mail.id)])
        )
        # the email's layout: no document header, as wide as the screen (up
        # to 590 px); the mail itself is deleted once sent
        layout = self.env.ref("crm_sales_sop.mail_notification_sop_digest")
        self.assertIn("max-width: 590px", layout.arch)
        self.assertNotIn("min-width", layout.arch)
        self.assertNotIn("record_name", layout.arch)
        # the mail queue is woken right away, not left to its hourly run
        mail_queue = self.env.ref("mail.ir_cron_mail_scheduler_action")
        self.assertTrue(
            self.env["ir.cron.trigger"].search([("cron_id", "=", mail_queue.id)])
        )

    def test_subjects_plural(self):
        """One deal / n deals, in English and in Chinese: never "deal(s)"."""
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["crm_sales_sop"], ["zh_CN"])
        one = self._rep("rep_one", "Asia/Shanghai", leads=1)
        two = self._rep("rep_two", "Asia/Shanghai", leads=2)
        one_zh = self._rep("rep_one_zh", "Asia/Shanghai", leads=1, lang="zh_CN")
        self._remind(datetime(2026, 3, 2, 0, 30))
        self.assertEqual(
            self._messages(one).subject, "Your Sales SOP today: 1 deal to move"
        )
        self.assertEqual(
            self._messages(two).subject, "Your Sales SOP today: 2 deals to move"
        )
        self.assertNotIn("(s)", self._messages(one_zh).subject)

    def test_holidays_leaves_opt_out_nothing_to_do(self):
        on_leave = self._rep("rep_on_leave", "Asia/Shanghai")
        resource = self.env["resource.resource"].create(
            {
                "name": on_leave.name,
                "user_id": on_leave.id,
                "calendar_id": self.calendar.id,
                "tz": "Asia/Shanghai",
            }
        )
        half_day = self._rep("rep_half_day", "Asia/Shanghai")
        half_resource = self.env["resource.resource"].create(
            {
                "name": half_day.name,
                "user_id": half_day.id,
                "calendar_id": self.calendar.id,
                "tz": "Asia/Shanghai",
            }
        )
        at_work = self._rep("rep_at_work", "Asia/Shanghai")
        opted_out = self._rep("rep_opted_out", "Asia/Shanghai")
        opted_out.with_user(opted_out).write({"sop_reminder_opt_out": True})
        idle = self._rep("rep_idle", "Asia/Shanghai", leads=0)
        closed = self._rep("rep_closed", "Asia/Shanghai")
        closed_lead = self.env["crm.lead"].search([("user_id", "=", closed.id)])
        closed_lead.action_set_won()
        Leave = self.env["resource.calendar.leaves"]
        # Monday 2026-03-02: public holiday (Shanghai day, in UTC)
        Leave.create(
            {
                "name": "Public holiday",
                "calendar_id": self.calendar.id,
                "date_from": datetime(2026, 3, 1, 16, 0),
                "date_to": datetime(2026, 3, 2, 15, 59, 59),
            }
        )
        # Tuesday: the first rep's own leave; the second's afternoon off
        Leave.create(
            {
                "name": "Day off",
                "calendar_id": self.calendar.id,
                "resource_id": resource.id,
                "date_from": datetime(2026, 3, 2, 16, 0),
                "date_to": datetime(2026, 3, 3, 15, 59, 59),
            }
        )
        Leave.create(
            {
                "name": "Afternoon off",
                "calendar_id": self.calendar.id,
                "resource_id": half_resource.id,
                "date_from": datetime(2026, 3, 3, 5, 0),
                "date_to": datetime(2026, 3, 3, 9, 0),
            }
        )
        reps = on_leave + half_day + at_work + opted_out + idle + closed
        utc = datetime(2026, 3, 1, 16, 0)  # Monday 00:00 in Shanghai
        while utc < datetime(2026, 3, 3, 16, 0):
            self._remind(utc)
            utc += timedelta(minutes=15)
        tuesday = date(2026, 3, 3)
        self.assertEqual(
            self._prompts(reps),
            {
                ("rep_half_day", tuesday, "start"): "Tue 08:30",
                # the workday ends at 12:00: reminded at 11:00
                ("rep_half_day", tuesday, "end"): "Tue 11:00",
                ("rep_at_work", tuesday, "start"): "Tue 08:30",
                ("rep_at_work", tuesday, "end"): "Tue 16:00",
            },
        )
        for rep in (on_leave, opted_out, idle, closed):
            self.assertFalse(self._messages(rep), rep.login)

    def test_late_run_catches_up_never_after_hours(self):
        rep = self._rep("rep_late", "Asia/Shanghai")
        latecomer = self._rep("rep_latecomer", "Asia/Shanghai")
        latecomer.sop_reminder_opt_out = True
        self.assertFalse(self._remind(datetime(2026, 3, 2, 0, 15)), "08:15: too early")
        # the job did not run all morning: it catches up at 11:00
        claims = self._remind(datetime(2026, 3, 2, 3, 0))
        self.assertEqual([(c.user_id, c.moment) for c in claims], [(rep.id, "start")])
        # run twice, then at lunch (not working hours): nothing more
        self.assertFalse(self._remind(datetime(2026, 3, 2, 3, 0)))
        latecomer.sop_reminder_opt_out = False
        self.assertFalse(self._remind(datetime(2026, 3, 2, 4, 30)), "12:30: lunch")
        # the latecomer's start is due in the afternoon, until 16:00
        claims = self._remind(datetime(2026, 3, 2, 5, 0))
        self.assertEqual(
            [(c.user_id, c.moment) for c in claims], [(latecomer.id, "start")]
        )
        # the job stopped from 15:00 to after hours: no end prompt at 17:00
        self.assertFalse(self._remind(datetime(2026, 3, 2, 9, 0)))
        self.assertFalse(self._remind(datetime(2026, 3, 2, 13, 0)))
        self.assertEqual(len(self._messages(rep)), 1)
        self.assertEqual(len(self._messages(latecomer)), 1)
        # a late start and the end at once: only the end prompt goes
        other = self._rep("rep_only_end", "Asia/Shanghai")
        claims = self._remind(datetime(2026, 3, 3, 8, 15))
        self.assertIn((other.id, "end"), [(c.user_id, c.moment) for c in claims])
        self.assertNotIn((other.id, "start"), [(c.user_id, c.moment) for c in claims])

    def test_batches_and_query_count(self):
        """Deciding, claiming and reading what the digests show costs the
        same queries for 1 rep or 6; posting is the messages themselves."""
        reps = [self._rep(f"rep_batch_{i}", "Asia/Shanghai", leads=2) for i in range(8)]
        Reminder = self.env["crm.sop.reminder"]
        now = datetime(2026, 3, 2, 0, 30)
        counts = []
        # the first batch warms the caches (QWeb template, translations)
        for batch in ([reps[7].id], [reps[0].id], [rep.id for rep in reps[1:7]]):
            self.env.invalidate_all()
            with self.mock_datetime_and_now(now):
                start = self.cr.sql_log_count
                claims = Reminder._sop_reminder_claim(batch, now)
                Reminder._sop_reminder_digests(claims, now)
                counts.append(self.cr.sql_log_count - start)
            self.assertEqual(len(claims), len(batch))
        counts = counts[1:]
        self.assertEqual(counts[0], counts[1], f"queries for 1 rep / 6 reps: {counts}")
        self.env.invalidate_all()
        with self.assertQueryCount(counts[0]):
            with self.mock_datetime_and_now(now + timedelta(minutes=15)):
                claims = Reminder._sop_reminder_claim(
                    [rep.id for rep in reps], now + timedelta(minutes=15)
                )
                Reminder._sop_reminder_digests(claims, now)
        self.assertFalse(claims, "claimed already: nothing to read")

    def test_batches_report_progress(self):
        reps = self._rep("rep_p1", "Asia/Shanghai") + self._rep(
            "rep_p2", "Asia/Shanghai"
        )
        cron = self.env.ref("crm_sales_sop.ir_cron_sop_reminder")
        self.assertEqual(
            (cron.interval_number, cron.interval_type, cron.code.strip()),
            (15, "minutes", "model._cron_sop_reminder()"),
        )
        progress = self.env["ir.cron.progress"].create({"cron_id": cron.id})
        Reminder = self.env["crm.sop.reminder"].with_context(
            ir_cron_progress_id=progress.id
        )
        with self.mock_datetime_and_now(datetime(2026, 3, 2, 0, 30)):
            claims = Reminder._sop_remind(batch_size=1)
        self.assertEqual(len(claims), 2)
        self.assertEqual((progress.done, progress.remaining), (2, 0))
        self.assertEqual(len(self._messages(reps[0])), 1)

    @users("user_sales_salesman")
    def test_reps_cannot_touch_the_ledger(self):
        Reminder = self.env["crm.sop.reminder"]
        with self.assertRaises(AccessError):
            Reminder.create(
                {"user_id": self.env.uid, "moment": "start", "local_date": "2026-03-02"}
            )
        with self.assertRaises(AccessError):
            Reminder.search([])
        self.env.user.write({"sop_reminder_opt_out": True})
        self.assertTrue(self.env.user.sop_reminder_opt_out)

    @users("user_sales_manager")
    def test_managers_read_the_ledger_only(self):
        rep = self._rep("rep_ledger", "Asia/Shanghai")
        self._remind(datetime(2026, 3, 2, 0, 30))
        Reminder = self.env["crm.sop.reminder"]
        reminder = Reminder.search([("user_id", "=", rep.id)])
        self.assertEqual(reminder.moment, "start")
        with self.assertRaises(AccessError):
            reminder.write({"local_date": "2026-03-03"})
        with self.assertRaises(AccessError):
            Reminder.create(
                {"user_id": rep.id, "moment": "end", "local_date": "2026-03-02"}
            )
        with self.assertRaises(AccessError):
            reminder.unlink()

    def test_settings_move_the_moments(self):
        rep = self._rep("rep_settings", "Asia/Shanghai")
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(
            (settings.sop_reminder_start_offset, settings.sop_reminder_end_offset),
            (30, 60),
        )
        settings.sop_reminder_start_offset = 0
        settings.sop_reminder_end_offset = 15
        self.assertEqual(
            (
                self.company.sop_reminder_start_offset,
                self.company.sop_reminder_end_offset,
            ),
            (0, 15),
        )
        self.assertFalse(self._remind(datetime(2026, 3, 1, 23, 45)), "07:45")
        self.assertTrue(self._remind(datetime(2026, 3, 2, 0, 0)), "08:00")
        self.assertFalse(self._remind(datetime(2026, 3, 2, 8, 30)), "16:30")
        claims = self._remind(datetime(2026, 3, 2, 8, 45))
        self.assertEqual([(c.user_id, c.moment) for c in claims], [(rep.id, "end")])


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopReminderCompanies(TestSopReminderCommon):
    """Two companies on Shanghai calendars: the main one (rep A, manager A)
    and company B (rep B, manager B), a deal each, stalled in the Contact
    SOP stage (1 stall day) since Friday 2026-02-20."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_b = cls.env["res.company"].create({"name": "SOP Company B"})
        cls.calendar_b = _office_calendar(cls.env, "Office B", "Asia/Shanghai")
        cls.company_b.resource_calendar_id = cls.calendar_b
        cls.rep_a = cls._rep("rep_company_a", "Asia/Shanghai")
        cls.rep_b = mail_new_test_user(
            cls.env,
            login="rep_company_b",
            name="Rep Company B",
            email="rep_company_b@test.example.com",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
            tz=False,  # the calendar's time zone
            notification_type="inbox",
            groups="sales_team.group_sale_salesman",
        )
        cls.manager_b = mail_new_test_user(
            cls.env,
            login="manager_company_b",
            name="Manager Company B",
            email="manager_company_b@test.example.com",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
            groups="sales_team.group_sale_manager",
        )
        cls.lead_a = cls.env["crm.lead"].search([("user_id", "=", cls.rep_a.id)])
        cls.lead_b = cls.env["crm.lead"].create(
            cls._sop_lead_vals(
                name="Company B deal",
                user_id=cls.rep_b.id,
                company_id=cls.company_b.id,
                probability=10,
            )
        )
        cls.sop_stage_contact.stall_days = 1
        # the deals were created earlier: their summary is in the database
        cls.env.flush_all()
        cls.env.cr.execute(
            "UPDATE crm_lead SET sop_stage_date = '2026-02-20' WHERE id = ANY(%s)",
            [(cls.lead_a + cls.lead_b).ids],
        )
        cls.env.invalidate_all()

    def _cron(self, utc):
        with self.mock_datetime_and_now(utc):
            self.env["crm.sop.reminder"]._cron_sop_reminder()

    def test_ledger_rows_belong_to_the_reps_company(self):
        self.assertEqual(self.lead_b.company_id, self.company_b)
        self.assertTrue(self.lead_b.sop_next_task_id)
        self._cron(datetime(2026, 3, 2, 0, 30))
        Reminder = self.env["crm.sop.reminder"]
        row_a = Reminder.search([("user_id", "=", self.rep_a.id)])
        row_b = Reminder.search([("user_id", "=", self.rep_b.id)])
        self.assertEqual(
            (row_a.company_id, row_b.company_id), (self.company, self.company_b)
        )
        reps = self.rep_a + self.rep_b
        for manager, own, other in (
            (self.user_sales_manager, row_a, row_b),
            (self.manager_b, row_b, row_a),
        ):
            with self.subTest(manager=manager.login):
                ledger = Reminder.with_user(manager)
                self.assertEqual(ledger.search([("user_id", "in", reps.ids)]), own)
                self.assertEqual(
                    own.with_user(manager).read(["moment"])[0]["moment"], "start"
                )
                with self.assertRaises(AccessError):
                    other.with_user(manager).read(["user_id"])
                groups = ledger.read_group(
                    [("user_id", "in", reps.ids)], ["user_id"], ["user_id"]
                )
                self.assertEqual(
                    [(g["user_id"][0], g["user_id_count"]) for g in groups],
                    [(own.user_id.id, 1)],
                )
                # nor through the company switcher, to a company one is not in
                with self.assertRaises(AccessError):
                    ledger.with_context(
                        allowed_company_ids=[manager.company_id.id, other.company_id.id]
                    ).search([("id", "=", other.id)])

    def test_one_company_failing_does_not_stop_the_others(self):
        """Company B's calendar holds a time zone the server does not know
        (written in SQL, as a server with older time zone data would meet):
        B's stall pass and B's reminders fail, are logged and skipped; A's
        deal is flagged and A's rep reminded in the same run. Once B's
        calendar is fixed, the next run catches B up."""
        self.env.cr.execute(
            "UPDATE resource_calendar SET tz = 'Mars/Olympus_Mons' WHERE id = %s",
            [self.calendar_b.id],
        )
        self.env.cr.execute(
            "UPDATE crm_lead SET sop_stalled = TRUE WHERE id = %s", [self.lead_b.id]
        )
        self.env.invalidate_all()
        with (
            self.assertLogs(
                "odoo.addons.crm_sales_sop.models.crm_sop_engine", "ERROR"
            ) as stall_logs,
            self.assertLogs(
                "odoo.addons.crm_sales_sop.models.crm_sop_reminder", "ERROR"
            ) as reminder_logs,
        ):
            self._cron(datetime(2026, 3, 2, 0, 30))
        self.assertIn("SOP Company B", stall_logs.output[0])
        self.assertIn(f"company id {self.company_b.id}", reminder_logs.output[0])
        self.assertTrue(self.lead_a.sop_stalled, "A's deal flagged")
        self.assertTrue(self.lead_b.sop_stalled, "B's deal keeps its flag")
        message_a = self._messages(self.rep_a)
        self.assertEqual(len(message_a), 1, "A's rep reminded")
        self.assertIn("Stalled", str(message_a.body))
        self.assertFalse(self._messages(self.rep_b))
        Reminder = self.env["crm.sop.reminder"]
        self.assertFalse(Reminder.search([("user_id", "=", self.rep_b.id)]))
        # the calendar fixed, the next run counts B's deal and prompts B's rep
        self.env.cr.execute(
            """UPDATE crm_lead SET sop_stalled = FALSE WHERE id = %s;
               UPDATE resource_calendar SET tz = 'Asia/Shanghai' WHERE id = %s""",
            [self.lead_b.id, self.calendar_b.id],
        )
        self.env.invalidate_all()
        self._cron(datetime(2026, 3, 2, 0, 45))
        self.assertTrue(self.lead_b.sop_stalled)
        self.assertEqual(len(self._messages(self.rep_b)), 1)
        self.assertEqual(len(self._messages(self.rep_a)), 1, "A: once a day")

    def test_stall_days_past_the_bound_do_not_stop_the_reminders(self):
        """Stall days of 3,000,000 held by a database from before the bound
        (its CHECK could not be added): the job runs, that stage never
        stalls, the other deals are flagged and every rep reminded."""
        pitch = self.env["crm.lead"].create(
            self._sop_lead_vals(
                name="Pitch deal",
                user_id=self.rep_a.id,
                stage_id=self.stage_team1_2.id,
                probability=10,
            )
        )
        self.env.cr.execute(
            "ALTER TABLE crm_sop_stage DROP CONSTRAINT crm_sop_stage_stall_days_positive"
        )
        # the deals were created earlier: their summary is in the database
        self.env.flush_all()
        self.env.cr.execute(
            """UPDATE crm_sop_stage SET stall_days = 3000000 WHERE id = %s;
               UPDATE crm_lead SET sop_stage_date = '2016-01-04' WHERE id = %s""",
            [self.sop_stage_pitch.id, pitch.id],
        )
        self.env.invalidate_all()
        with self.assertNoLogs("odoo.addons.crm_sales_sop", "ERROR"):
            self._cron(datetime(2026, 3, 2, 0, 30))
        self.assertEqual(
            (self.lead_a.sop_stalled, self.lead_b.sop_stalled, pitch.sop_stalled),
            (True, True, False),
        )
        self.assertEqual(len(self._messages(self.rep_a)), 1)
        self.assertEqual(len(self._messages(self.rep_b)), 1)


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopSettingsBounds(TestSopReminderCommon):
    """What a manager types in the CRM settings is bounded on the server:
    reminder offsets 0 to 480 minutes, the high-value amount 0 or more."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = mail_new_test_user(
            cls.env,
            login="sop_settings_admin",
            name="SOP Settings Admin",
            groups="base.group_system,sales_team.group_sale_manager",
        )

    def _company_values(self):
        self.env.invalidate_all()
        company = self.company
        return (
            company.sop_reminder_start_offset,
            company.sop_reminder_end_offset,
            company.sop_high_value_amount,
        )

    def test_bad_numbers_refused_nothing_changed(self):
        company = self.company.with_user(self.admin)
        company.write({"sop_high_value_amount": 20000})
        before = self._company_values()
        self.assertEqual(before, (30, 60, 20000))
        Fields = self.env["res.company"]._fields
        for name in ("sop_reminder_start_offset", "sop_reminder_end_offset"):
            self.assertIn(str(SOP_REMINDER_OFFSET_MAX), Fields[name].help)
        bad = [
            ({"sop_reminder_start_offset": SOP_REMINDER_OFFSET_MAX + 1}, "480 minutes"),
            ({"sop_reminder_start_offset": -1}, "480 minutes"),
            ({"sop_reminder_end_offset": 100000}, "480 minutes"),
            ({"sop_high_value_amount": -1}, "cannot be negative"),
        ]
        for vals, message in bad:
            with self.subTest(vals=vals, by="write"):
                with self.assertRaises(ValidationError) as refused:
                    company.write(vals)
                self.assertIn(message, str(refused.exception))
                self.assertEqual(self._company_values(), before)
            with self.subTest(vals=vals, by="settings"):
                with self.assertRaises(ValidationError) as refused:
                    self.env["res.config.settings"].with_user(self.admin).create(
                        vals
                    ).execute()
                self.assertIn(message, str(refused.exception))
                self.assertEqual(self._company_values(), before)
            with self.subTest(vals=vals, by="settings form"):
                with self.assertRaises(ValidationError) as refused:
                    with Form(
                        self.env["res.config.settings"].with_user(self.admin)
                    ) as form:
                        for name, value in vals.items():
                            setattr(form, name, value)
                self.assertIn(message, str(refused.exception))
                self.assertEqual(self._company_values(), before)
        # the bounds themselves are accepted
        settings = (
            self.env["res.config.settings"]
            .with_user(self.admin)
            .create(
                {
                    "sop_reminder_start_offset": 0,
                    "sop_reminder_end_offset": SOP_REMINDER_OFFSET_MAX,
                    "sop_high_value_amount": 0,
                }
            )
        )
        settings.execute()
        self.assertEqual(self._company_values(), (0, SOP_REMINDER_OFFSET_MAX, 0))


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopUpgrade(TestSopReminderCommon):
    """The 18.0.1.2.0 upgrade on a database from before it: ledger rows
    without company, numbers past the new bounds (the CHECKs dropped, as
    they were not there)."""

    def test_pre_migration_fills_the_company_and_bounds_the_numbers(self):
        rep = self._rep("rep_upgrade", "Asia/Shanghai")
        self._remind(datetime(2026, 3, 2, 0, 30))
        row = self.env["crm.sop.reminder"].search([("user_id", "=", rep.id)])
        company_b = self.env["res.company"].create({"name": "SOP Upgrade B"})
        self.env.flush_all()
        self.env.cr.execute(
            """ALTER TABLE crm_sop_reminder ALTER COLUMN company_id DROP NOT NULL;
               ALTER TABLE crm_sop_stage
                   DROP CONSTRAINT crm_sop_stage_stall_days_positive;
               ALTER TABLE res_company
                   DROP CONSTRAINT res_company_sop_reminder_offsets_positive,
                   DROP CONSTRAINT res_company_sop_high_value_amount_positive;
               UPDATE crm_sop_reminder SET company_id = NULL WHERE id = %s;
               UPDATE crm_sop_stage SET stall_days = CASE id WHEN %s THEN 3000000
                                                             ELSE 365 END
                WHERE id IN %s;
               UPDATE res_company
                  SET sop_reminder_start_offset = 9000,
                      sop_reminder_end_offset = 60,
                      sop_high_value_amount = -5
                WHERE id = %s""",
            [
                row.id,
                self.sop_stage_contact.id,
                (self.sop_stage_contact.id, self.sop_stage_pitch.id),
                company_b.id,
            ],
        )
        script = load_script(
            file_path("crm_sales_sop/migrations/18.0.1.2.0/pre-migration.py"),
            "crm_sales_sop_pre_migration_18_0_1_2_0",
        )
        with self.assertLogs("crm_sales_sop_pre_migration_18_0_1_2_0", "WARNING"):
            script.migrate(self.env.cr, "18.0.1.1.0")
        self.env.invalidate_all()
        self.assertEqual(row.company_id, self.company)
        self.assertEqual(
            (self.sop_stage_contact.stall_days, self.sop_stage_pitch.stall_days),
            (0, 365),
            "past the bound: never, as in practice; within it: kept",
        )
        self.assertEqual(
            (
                company_b.sop_reminder_start_offset,
                company_b.sop_reminder_end_offset,
                company_b.sop_high_value_amount,
            ),
            (SOP_REMINDER_OFFSET_MAX, 60, 0),
        )
        self.assertEqual(self.company.sop_reminder_start_offset, 30, "kept")


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopMyDay(TestSopReminderCommon):
    def test_my_sop_day(self):
        rep = self._rep("rep_my_day", "Asia/Shanghai", leads=3)
        other = self._rep("rep_other", "Asia/Shanghai")
        small, medium, big = (
            self.env["crm.lead"]
            .search([("user_id", "=", rep.id)])
            .sorted("expected_revenue")
        )
        small_done = self._task(small, self.tt_visit)
        small.write({"x_sop_companions": "Alone", "x_sop_decision_makers": "Him"})
        self.assertEqual(small_done.state, "done")
        self.env.cr.execute(
            "UPDATE crm_lead SET sop_stalled = TRUE WHERE id = %s", [small.id]
        )
        self.env.invalidate_all()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_sales_sop.crm_sop_task_action_my_day"
        )
        self.assertEqual(action["path"], "my-sop-day")
        list_view = self.env.ref("crm_sales_sop.crm_sop_task_view_list_my_day")
        order = list_view.arch_db.split('default_order="')[1].split('"')[0]
        Task = self.env["crm.sop.task"].with_user(rep)
        domain = safe_eval(action["domain"], {"uid": rep.id})
        tasks = Task.search(domain, order=order)
        self.assertTrue(tasks)
        self.assertEqual(set(tasks.mapped("state")), {"todo"})
        self.assertNotIn(small_done, tasks)
        self.assertEqual(set(tasks.lead_id.ids), set((small + medium + big).ids))
        self.assertEqual(
            list(dict.fromkeys(tasks.mapped("lead_id"))),
            [small, big, medium],
            "stalled first, then at stake",
        )
        # as the rep: reads and uses the buttons of their own tasks only
        views = Task.get_views([(list_view.id, "list"), (False, "kanban")])
        for view_type in ("list", "kanban"):
            self.assertIn("sop_task_button", views["views"][view_type]["arch"])
        task = tasks[0]
        self.assertTrue(task.button)
        self.assertTrue(task.action_sop_open())
        others = Task.search(
            [("lead_id.user_id", "=", other.id), ("state", "=", "todo")]
        )
        self.assertFalse(others, "the rule keeps other reps' tasks out")


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopReminderEmail(TestSopReminderCommon):
    """The digest email really leaves: Odoo's outgoing mail, through an
    ir.mail_server pointed at a local SMTP server run by the test."""

    def test_digest_email_reaches_the_smtp_server(self):
        received = []

        class Sink:
            async def handle_DATA(self, server, session, envelope):
                received.append(envelope)
                return "250 Message accepted for delivery"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(Sink(), hostname="127.0.0.1", port=port)
        controller.start()
        self.addCleanup(controller.stop)
        self.env["ir.mail_server"].search([]).active = False
        self.env["ir.mail_server"].create(
            {
                "name": "Local sink",
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_encryption": "none",
                "sequence": 1,
            }
        )
        rep = self._rep("rep_smtp", "Asia/Shanghai", notification_type="email")
        lead = self.env["crm.lead"].search([("user_id", "=", rep.id)])
        # Odoo never connects to an SMTP server while a test runs: this test
        # lifts that for the job's run, towards its own local server only
        with patch.object(odoo.modules.module, "current_test", None):
            self._remind(datetime(2026, 3, 2, 0, 30))
        # core may send its own mail meanwhile (the deal assigned to the rep)
        parsed = [email.message_from_bytes(envelope.content) for envelope in received]
        subjects = [str(make_header(decode_header(msg["Subject"]))) for msg in parsed]
        digests = [i for i, subject in enumerate(subjects) if "Sales SOP" in subject]
        self.assertEqual(len(digests), 1, subjects)
        self.assertEqual(received[digests[0]].rcpt_tos, ["rep_smtp@test.example.com"])
        self.assertEqual(subjects[digests[0]], "Your Sales SOP today: 1 deal to move")
        parsed = parsed[digests[0]]
        body = "".join(
            part.get_payload(decode=True).decode()
            for part in parsed.walk()
            if part.get_content_type() == "text/html"
        )
        self.assertIn(lead.name, body)
        self.assertIn("/odoo/my-sop-day", body)


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopReminderConcurrency(SopTransactionsMixin, TransactionCase):
    """Real transactions, committed as the cron commits them: two runs at
    once, and a run that crashes after its first batch. The reps work in
    Kiritimati, where it is Monday 09:00 while nobody else works (Sunday
    19:00 UTC)."""

    NOW = datetime(2026, 3, 1, 19, 0)

    def setUp(self):
        super().setUp()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            team = env["crm.team"].create({"name": "SOP reminder team"})
            stage = env["crm.stage"].create(
                {"name": "SOP reminder stage", "sequence": 1, "team_id": team.id}
            )
            playbook = env["crm.sop.template"].create(
                {
                    "name": "SOP reminder playbook",
                    "sequence": 0,
                    "team_ids": [(6, 0, team.ids)],
                    "stage_ids": [
                        (
                            0,
                            0,
                            {
                                "name": "Contact",
                                "crm_stage_id": stage.id,
                                "task_template_ids": [
                                    (0, 0, {"name": "Say hello", "kind": "manual"})
                                ],
                            },
                        )
                    ],
                }
            )
            reps = env["res.users"].create(
                [
                    {
                        "name": f"SOP reminder rep {i}",
                        "login": f"sop_reminder_rep_{i}",
                        "tz": "Pacific/Kiritimati",
                        "notification_type": "inbox",
                        "groups_id": [
                            (6, 0, env.ref("sales_team.group_sale_salesman").ids)
                        ],
                    }
                    for i in range(3)
                ]
            )
            env["crm.lead"].create(
                [
                    {
                        "name": f"Deal of {rep.name}",
                        "type": "opportunity",
                        "team_id": team.id,
                        "user_id": rep.id,
                        "stage_id": stage.id,
                    }
                    for rep in reps
                ]
            )
            self.ids = {
                "reps": reps.ids,
                "team": team.id,
                "stage": stage.id,
                "playbook": playbook.id,
            }
            self.addCleanup(self._clean_up)
            # real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        self.envs = self._sop_transactions(2)
        # the cron's own behaviour: commit each batch (not done in tests)
        self.startPatcher(patch.object(threading.current_thread(), "testing", False))

    def _clean_up(self):
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            reps = env["res.users"].browse(self.ids["reps"])
            cr.execute(
                "DELETE FROM mail_message WHERE id IN (SELECT message_id FROM "
                "crm_sop_reminder WHERE user_id = ANY(%s))",
                [reps.ids],
            )
            cr.execute(
                "DELETE FROM crm_sop_reminder WHERE user_id = ANY(%s)", [reps.ids]
            )
            env["crm.lead"].with_context(active_test=False).search(
                [("team_id", "=", self.ids["team"])]
            ).unlink()
            playbook = self.ids["playbook"]
            # not the engine's history rules: remove every trace of the test
            cr.execute(
                "DELETE FROM crm_sop_task_template WHERE template_id = %s", [playbook]
            )
            cr.execute("DELETE FROM crm_sop_stage WHERE template_id = %s", [playbook])
            cr.execute("DELETE FROM crm_sop_template WHERE id = %s", [playbook])
            env["crm.stage"].browse(self.ids["stage"]).unlink()
            env["crm.team"].browse(self.ids["team"]).unlink()
            partners = reps.partner_id
            reps.unlink()
            partners.unlink()
            if self.ids.get("progress"):
                cr.execute(
                    "DELETE FROM ir_cron_progress WHERE id = %s", [self.ids["progress"]]
                )
            env["crm.sop.task.template"]._sop_clear_caches()
            # real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit

    def _ledger(self):
        with self.env.registry.cursor() as cr:
            cr.execute(
                """SELECT r.user_id, r.moment, COUNT(n.id)
                     FROM crm_sop_reminder r
                     JOIN res_users u ON u.id = r.user_id
                LEFT JOIN mail_notification n
                       ON n.mail_message_id = r.message_id
                      AND n.res_partner_id = u.partner_id
                    WHERE r.user_id = ANY(%s)
                 GROUP BY r.user_id, r.moment ORDER BY r.user_id""",
                [self.ids["reps"]],
            )
            return cr.fetchall()

    def _messages_per_rep(self):
        with self.env.registry.cursor() as cr:
            cr.execute(
                """SELECT u.id, COUNT(m.id)
                     FROM res_users u
                     JOIN mail_message_res_partner_rel rel
                       ON rel.res_partner_id = u.partner_id
                     JOIN mail_message m ON m.id = rel.mail_message_id
                    WHERE u.id = ANY(%s) AND m.message_type = 'user_notification'
                      AND m.model = 'res.partner' AND m.res_id = u.partner_id
                 GROUP BY u.id ORDER BY u.id""",
                [self.ids["reps"]],
            )
            return cr.fetchall()

    def test_two_runs_at_once(self):
        env_a, env_b = self.envs
        env_b.cr.execute("SELECT 1")  # B's snapshot is taken before A commits
        claims_a = env_a["crm.sop.reminder"]._sop_remind(now=self.NOW)
        self.assertEqual(
            sorted(c.user_id for c in claims_a if c.user_id in self.ids["reps"]),
            self.ids["reps"],
        )
        claim = CrmSopReminder._sop_reminder_claim
        outcomes = []

        def claim_and_tell(reminder, user_ids, now):
            try:
                claims = claim(reminder, user_ids, now)
            except Exception as error:
                outcomes.append(type(error).__name__)
                raise
            outcomes.append(len(claims))
            return claims

        with patch.object(CrmSopReminder, "_sop_reminder_claim", claim_and_tell):
            claims_b = env_b["crm.sop.reminder"]._sop_remind(now=self.NOW)
        self.assertFalse([c for c in claims_b if c.user_id in self.ids["reps"]])
        # B's snapshot did not see A's rows: its claim failed, and the batch
        # tried again in a new transaction found them claimed
        self.assertEqual(outcomes, ["SerializationFailure", 0])
        expected = [(rep_id, "start", 1) for rep_id in self.ids["reps"]]
        self.assertEqual(self._ledger(), expected)
        self.assertEqual(
            self._messages_per_rep(), [(rep_id, 1) for rep_id in self.ids["reps"]]
        )

    def test_crash_after_the_first_batch(self):
        env = self.envs[0]
        Reminder = env["crm.sop.reminder"]
        cron = env.ref("crm_sales_sop.ir_cron_sop_reminder")
        progress = env["ir.cron.progress"].create({"cron_id": cron.id})
        self.ids["progress"] = progress.id
        Reminder = Reminder.with_context(ir_cron_progress_id=progress.id)
        post = CrmSopReminder._sop_reminder_post
        calls = []

        def post_then_crash(reminder, claims, now):
            if claims:
                calls.append(claims)
                if len(calls) == 2:
                    # the server goes: the job cannot go on (any other
                    # error skips the batch, see TestSopReminderFailures)
                    raise psycopg2.OperationalError("server closed the connection")
            return post(reminder, claims, now)

        with (
            patch.object(CrmSopReminder, "_sop_reminder_post", post_then_crash),
            self.assertRaises(psycopg2.OperationalError),
        ):
            Reminder._sop_remind(now=self.NOW, batch_size=1)
        env.cr.rollback()  # what ir.cron does with a job that raised
        self.assertEqual(self._ledger(), [(self.ids["reps"][0], "start", 1)])
        self.assertEqual(progress.remaining, 2, "the batches of two reps are left")
        # the next run, later in the working window
        claims = Reminder._sop_remind(now=self.NOW + timedelta(minutes=15))
        self.assertEqual(
            sorted(c.user_id for c in claims if c.user_id in self.ids["reps"]),
            self.ids["reps"][1:],
        )
        self.assertEqual(
            self._ledger(), [(rep_id, "start", 1) for rep_id in self.ids["reps"]]
        )
        self.assertEqual(
            self._messages_per_rep(), [(rep_id, 1) for rep_id in self.ids["reps"]]
        )

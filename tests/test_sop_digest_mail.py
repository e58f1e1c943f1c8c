import email
import json
import socket
import threading
from datetime import datetime
from email.header import decode_header, make_header
from unittest.mock import patch

from aiosmtpd.controller import Controller

import odoo
from odoo.tests import HttpCase, tagged

from odoo.addons.base.models.ir_cron import ir_cron as IrCron

from .test_sop_reminder import TestSopReminderCommon


class _SmtpSink:
    """aiosmtpd handler keeping every envelope it accepts."""

    def __init__(self):
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope)
        return "250 Message accepted for delivery"


class TestSopDigestMailCommon(TestSopReminderCommon):
    """The reminder job and the mail queue are run by Odoo's own cron runner
    (``ir.cron._process_jobs``, what each cron worker thread calls when it
    wakes up), on this test's transaction; the email goes through
    ``ir.mail_server`` over SMTP to a server run by the test on 127.0.0.1.
    The mail queue's own schedule is an hour away: only the trigger the
    reminder job leaves makes it run now."""

    NOW = datetime(2026, 3, 2, 0, 30)  # Monday 08:30 in Shanghai

    def setUp(self):
        super().setUp()
        self.sink = _SmtpSink()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        # a shared, busy machine may take more than aiosmtpd's 5 s default
        controller = Controller(
            self.sink, hostname="127.0.0.1", port=port, ready_timeout=30
        )
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
        self.reminder_cron = self.env.ref("crm_sales_sop.ir_cron_sop_reminder")
        self.queue_cron = self.env.ref("mail.ir_cron_mail_scheduler_action")

    def _only_the_proofs_jobs_due(self):
        """Only the two jobs of the proof are due in this transaction, once
        the test's data is made (creating a deal triggers crm's lead
        enrichment): the others wait a day, the mail queue an hour (its own
        schedule); the reminder job is due by a trigger (a nextcall in the
        past would stay due, the job's clock being frozen before the
        database's)."""
        self.env.flush_all()  # the worker reads the database
        self.cr.execute("DELETE FROM ir_cron_trigger")
        self.cr.execute(
            """UPDATE ir_cron SET nextcall = (now() at time zone 'UTC')
                                           + interval '1 day'
                WHERE id != %s""",
            [self.queue_cron.id],
        )
        self.cr.execute(
            """UPDATE ir_cron SET active = true,
                      nextcall = (now() at time zone 'UTC') + interval '1 hour'
                WHERE id = %s""",
            [self.queue_cron.id],
        )
        self.env["ir.cron.trigger"].create(
            {"cron_id": self.reminder_cron.id, "call_at": self.NOW}
        )
        self.env.flush_all()
        self.env.invalidate_all()

    def _cron_rounds(self, max_rounds=5):
        """Run the cron worker's loop until no job is due: each round is
        what a worker does when it wakes up (a trigger's NOTIFY wakes it at
        once). Returns the names of the jobs run, per round."""
        registry = self.registry
        rounds = []
        self._only_the_proofs_jobs_due()

        class TestDb:
            """The worker's own connection, on this test's transaction."""

            def cursor(self):
                return registry.cursor()

        db_connect = odoo.sql_db.db_connect
        thread = threading.current_thread()
        dbname = getattr(thread, "dbname", None)
        in_test_mode = registry.in_test_mode()  # an HttpCase is already
        if not in_test_mode:
            registry.enter_test_mode(self.cr)
        try:
            with (
                patch.object(
                    odoo.sql_db,
                    "db_connect",
                    lambda name, *a, **k: (
                        TestDb()
                        if name == registry.db_name
                        else db_connect(name, *a, **k)
                    ),
                ),
                # Odoo never connects to an SMTP server while a test runs:
                # lifted for the run, towards the test's own local server
                patch.object(odoo.modules.module, "current_test", None),
                self.mock_datetime_and_now(self.NOW),
            ):
                for _round in range(max_rounds):
                    ready = IrCron._get_all_ready_jobs(self.cr)
                    if not ready:
                        break
                    rounds.append(sorted(job["cron_name"] for job in ready))
                    IrCron._process_jobs(registry.db_name)
        finally:
            if not in_test_mode:
                registry.leave_test_mode()
            if dbname is not None:
                thread.dbname = dbname
        self.env.invalidate_all()
        return rounds

    def _digests(self):
        """The digests the SMTP server received (core may send its own
        notices too): [(envelope, parsed message, subject)]."""
        result = []
        for envelope in self.sink.received:
            message = email.message_from_bytes(envelope.content)
            subject = str(make_header(decode_header(message["Subject"])))
            if "Sales SOP" in subject:
                result.append((envelope, message, subject))
        return result

    def _parts(self, message):
        """{content type: decoded text} of an email's parts."""
        return {
            part.get_content_type(): part.get_payload(decode=True).decode(
                part.get_content_charset() or "utf-8"
            )
            for part in message.walk()
            if not part.is_multipart()
        }


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopDigestThroughCron(TestSopDigestMailCommon):
    """A digest sent by email leaves with the cron round that posts it."""

    def test_digest_email_leaves_in_the_cron_round(self):
        rep = self._rep("rep_cron_mail", "Asia/Shanghai", notification_type="email")
        lead = self.env["crm.lead"].search([("user_id", "=", rep.id)])
        rounds = self._cron_rounds()
        self.assertEqual(
            rounds,
            [[self.reminder_cron.cron_name], [self.queue_cron.cron_name]],
            "the reminder job, then the mail queue it woke, then nothing due",
        )
        digests = self._digests()
        self.assertEqual(len(digests), 1, [d[2] for d in digests])
        envelope, message, subject = digests[0]
        self.assertEqual(envelope.rcpt_tos, ["rep_cron_mail@test.example.com"])
        self.assertIn("rep_cron_mail@test.example.com", message["To"])
        self.assertEqual(subject, "Your Sales SOP today: 1 deal to move")
        parts = self._parts(message)
        html, text = parts["text/html"], parts["text/plain"]
        # the digest's own layout (no document header), at most 590 px wide
        self.assertIn("max-width: 590px", html)
        self.assertIn(lead.name, html)
        self.assertIn("/odoo/my-sop-day", html)
        self.assertIn(lead.name, text)
        self.assertNotIn("None [1]", text)
        self.assertNotIn("None", text)
        # the email left: core marks it sent (or deletes it) once SMTP took it
        mails = (
            self.env["mail.mail"]
            .sudo()
            .search(
                [("recipient_ids", "in", rep.partner_id.ids), ("subject", "=", subject)]
            )
        )
        self.assertFalse(mails.filtered(lambda m: m.state == "outgoing"))

    def test_without_the_trigger_the_mail_waits_for_the_queue(self):
        """The control: were the reminder job not to wake the mail queue, the
        digest would wait in the queue for its hourly run."""
        rep = self._rep("rep_cron_wait", "Asia/Shanghai", notification_type="email")
        queue = self.queue_cron
        trigger = IrCron._trigger

        def no_queue_trigger(self, at=None):
            if self == queue:
                return self.env["ir.cron.trigger"]
            return trigger(self, at)

        with patch.object(IrCron, "_trigger", no_queue_trigger):
            rounds = self._cron_rounds()
        self.assertEqual(rounds, [[self.reminder_cron.cron_name]])
        self.assertFalse(self._digests())
        waiting = (
            self.env["mail.mail"]
            .sudo()
            .search(
                [
                    ("recipient_ids", "in", rep.partner_id.ids),
                    ("state", "=", "outgoing"),
                ]
            )
        )
        self.assertEqual(len(waiting), 1, "queued for the hourly run")


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopDigestMailPhone(TestSopDigestMailCommon, HttpCase):
    """The digest email as received, opened on a phone (390 px): nothing
    wider than the screen, whatever the deal's name."""

    def test_digest_email_fits_a_phone(self):
        rep = self._rep(
            "rep_cron_phone", "Asia/Shanghai", notification_type="email", leads=3
        )
        self.env["crm.lead"].search([("user_id", "=", rep.id)], limit=1).name = (
            "Pudong_showroom_family_SUV_with_trade_in_and_financing_Q3_2026"
            " 上海浦东展厅家庭SUV购车含置换与金融方案"
        )
        self._cron_rounds()
        digests = self._digests()
        self.assertEqual(len(digests), 1)
        html = self._parts(digests[0][1])["text/html"]
        self.assertIn("Pudong_showroom", html)
        # the email in a 390 px frame, as a phone's mail app shows it
        code = f"""
            const frame = document.createElement("iframe");
            frame.style.cssText = "width: 390px; height: 844px; border: 0;";
            document.body.appendChild(frame);
            const doc = frame.contentDocument;
            doc.open();
            doc.write({json.dumps(html)});
            doc.close();
            setTimeout(() => {{
                const page = doc.documentElement;
                if (!page.textContent.includes("Pudong_showroom")) {{
                    console.error("the digest is not in the frame");
                }} else if (page.scrollWidth > 390) {{
                    console.error(`the digest is ${{page.scrollWidth}}px wide on a 390px screen`);
                }} else {{
                    console.log("test successful");
                }}
            }}, 200);
        """
        # the server reads the addons' static folders once, on the first static
        # file asked: here, not in the browser's parallel requests (a race of
        # Python 3.11's parser, "AST constructor recursion depth mismatch")
        self.url_open("/web/static/img/favicon.ico")
        self.browser_js("/odoo", code, "odoo.isReady === true", login=rep.login)

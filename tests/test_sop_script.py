import smtplib
from contextlib import ExitStack
from unittest.mock import patch

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, tagged, users
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import MailCase, mail_new_test_user
from odoo.addons.sms.tests.common import SMSCase

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopScript(TestSopCommon, MailCase):
    """One-click scripts: every channel records one send and completes the
    matching script task; every refusal says why and changes nothing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("zh_CN")
        cls.mail_template.write(
            {
                "sop_is_script": True,
                "sop_stage_ids": [(6, 0, cls.sop_stage_contact.ids)],
                "lang": "{{ object.partner_id.lang }}",
            }
        )
        cls.mail_template.with_context(lang="zh_CN").write(
            {
                "subject": "欢迎 {{ object.name }}",
                "body_html": "<p><t t-out='object.partner_id.name or \"\"'/>，您好</p>",
            }
        )
        cls.follow_up = cls.env["mail.template"].create(
            {
                "name": "SOP test follow-up",
                "model_id": cls.env["ir.model"]._get_id("crm.lead"),
                "subject": "Following your visit",
                "body_html": "<p>Dear <t t-out='object.partner_id.name or \"\"'/>,"
                "</p><p>thank you for your visit to <b>our store</b>.</p>",
                "sop_is_script": True,
                "sop_stage_ids": [(6, 0, cls.sop_stage_pitch.ids)],
            }
        )
        cls.not_a_script = cls.env["mail.template"].create(
            {
                "name": "Internal template",
                "model_id": cls.env["ir.model"]._get_id("crm.lead"),
                "body_html": "<p>Internal</p>",
            }
        )

    def _lead(self, **vals):
        vals.setdefault("partner_id", self.customer.id)
        return self.env["crm.lead"].create(self._sop_lead_vals(**vals))

    def _task(self, lead, task_template):
        return lead.sop_task_ids.filtered(lambda t: t.task_template_id == task_template)

    def _sends(self, lead):
        return (
            self.env["crm.sop.script.send"].sudo().search([("lead_id", "=", lead.id)])
        )

    # ------------------------------------------------------------
    # channels
    # ------------------------------------------------------------

    @users("user_sales_salesman")
    def test_email_in_one_click_from_a_task(self):
        lead = self._lead()
        task = self._task(lead, self.tt_script)
        self.assertEqual(task.button, "send")
        with self.mock_mail_gateway():
            task.action_sop_open()
            self._leave_queue(lead)
        self.assertEqual(task.state, "done")
        self.assertTrue(task.date_script_sent)
        message = lead.message_ids[0]
        self.assertIn("Hello Wang Fang", message.body)
        self.assertEqual(message.subject, "Welcome SOP Opportunity")
        self.assertEqual(message.partner_ids, self.customer)
        self.assertEqual(message.message_type, "comment")
        # sent to the customer through Odoo's outgoing mail
        self.assertSentEmail(
            self.env.user.partner_id, self.customer, subject="Welcome SOP Opportunity"
        )
        send = self._sends(lead)
        self.assertEqual(len(send), 1)
        self.assertRecordValues(
            send,
            [
                {
                    "task_id": task.id,
                    "mail_template_id": self.mail_template.id,
                    "user_id": self.env.user.id,
                    "channel": "email",
                    "crm_stage_id": self.stage_team1_1.id,
                    "sop_stage_id": self.sop_stage_contact.id,
                }
            ],
        )
        # the rep reads the sends of their deal
        self.assertEqual(
            self.env["crm.sop.script.send"].search([("lead_id", "=", lead.id)]), send
        )

    # ------------------------------------------------------------
    # one tap is not blind: what was sent to whom, and Undo
    # ------------------------------------------------------------

    def _queued(self, lead):
        return (
            self.env["mail.mail"]
            .sudo()
            .search(
                [
                    ("model", "=", "crm.lead"),
                    ("res_id", "=", lead.id),
                    ("state", "=", "outgoing"),
                ]
            )
        )

    def _leave_queue(self, lead):
        """The mail queue sends what waits for the customer of ``lead`` (a
        one-tap email waits there for its Undo), and the transaction ends
        (its sends follow the delivery at commit)."""
        self._queued(lead).send()
        self.env.cr.flush()

    @users("user_sales_salesman")
    def test_undo_before_the_mail_leaves(self):
        lead = self._lead()
        task = self._task(lead, self.tt_script)
        with self.mock_mail_gateway():
            notice = task.action_sop_open()
            # the toast: which script, to whom, and Undo while it waits
            self.assertEqual(notice["tag"], "crm_sales_sop.script_sent")
            params = notice["params"]
            self.assertEqual(
                params["message"],
                "“SOP test welcome” to Wang Fang <wang.fang@test.example.com>",
            )
            self.assertGreater(params["undo_seconds"], 0)
            mail = self._queued(lead)
            self.assertEqual(mail.state, "outgoing")
            self.assertGreater(mail.scheduled_date, lead.create_date)
            # the mail queue is woken when the Undo window closes
            queue = self.env.ref("mail.ir_cron_mail_scheduler_action")
            self.assertTrue(
                self.env["ir.cron.trigger"]
                .sudo()
                .search(
                    [("cron_id", "=", queue.id), ("call_at", "=", mail.scheduled_date)]
                )
            )
            self.assertEqual(task.state, "done")
            message = lead.message_ids[0]
            send = self._sends(lead)
            self.assertEqual(send.id, params["send_id"])
            result = send.action_sop_undo()
            self.assertIn("was not sent", result["params"]["message"])
            # nothing leaves: the email, its message and the send are gone
            self.env["mail.mail"].sudo().process_email_queue()
        self.assertNotSentEmail([self.customer])
        self.assertFalse(mail.exists())
        self.assertFalse(message.exists())
        self.assertFalse(self._sends(lead))
        self.assertEqual(task.state, "todo")
        self.assertFalse(task.date_script_sent)
        self.assertFalse(task.date_done)
        self.assertEqual(task.button, "send")
        # sent again later, it counts
        with self.mock_mail_gateway():
            task.action_sop_open()
            self._leave_queue(lead)
        self.assertSentEmail(self.env.user.partner_id, self.customer)
        self.assertEqual(task.state, "done")

    @users("user_sales_salesman")
    def test_undo_after_the_mail_left_is_refused(self):
        lead = self._lead()
        task = self._task(lead, self.tt_script)
        with self.mock_mail_gateway():
            task.action_sop_open()
            self._leave_queue(lead)
        self.assertSentEmail(self.env.user.partner_id, self.customer)
        send = self._sends(lead)
        with self.assertRaisesRegex(UserError, "Too late to undo"):
            send.action_sop_undo()
        self.assertEqual(send.delivery_state, "sent")
        self.assertEqual(task.state, "done")
        # once sent, the toast of a send offers no Undo
        self.assertEqual(send._sop_sent_notice()["params"]["undo_seconds"], 0)

    def test_only_the_sender_can_undo(self):
        lead = self._lead()
        task = self._task(lead, self.tt_script)
        with self.mock_mail_gateway():
            task.with_user(self.user_sales_salesman).action_sop_open()
        send = self._sends(lead)
        mail = self._queued(lead)
        # a colleague who reads every deal, and the manager
        for user in (self.user_sales_leads, self.user_sales_manager):
            with self.subTest(user=user.login):
                with self.assertRaisesRegex(AccessError, "who sent a script"):
                    send.with_user(user).action_sop_undo()
        self.assertTrue(send.exists())
        self.assertEqual(mail.state, "outgoing")
        self.assertEqual(task.state, "done")

    @users("user_sales_salesman")
    def test_sms_and_copy_offer_no_undo(self):
        lead = self._lead()
        notice = lead.action_sop_send_script(self.follow_up.id, channel="copy")
        self.assertEqual(notice["params"]["undo_seconds"], 0)
        with self.assertRaisesRegex(UserError, "Too late to undo"):
            self._sends(lead).action_sop_undo()

    @users("user_sales_salesman")
    def test_the_language_chosen_goes_everywhere(self):
        self.mail_template.sudo().with_context(lang="zh_CN").name = "欢迎话术"
        lead = self._lead()
        menu = lead.sop_get_scripts()
        row = next(r for r in menu["scripts"] if r["id"] == self.mail_template.id)
        # the menu switches names with the language
        self.assertEqual(row["names"]["zh_CN"], "欢迎话术")
        self.assertEqual(row["names"]["en_US"], "SOP test welcome")
        # "Edit first" writes in the language chosen, not the customer's
        action = lead.action_sop_edit_script(self.mail_template.id, lang="zh_CN")
        composer = Form(
            self.env["mail.compose.message"].with_context(**action["context"])
        )
        self.assertEqual(composer.subject, "欢迎 SOP Opportunity")
        task = self._task(lead, self.tt_script)
        action = task.action_sop_edit_script(lang="zh_CN")
        self.assertEqual(action["context"]["template_preview_lang"], "zh_CN")
        action = lead.action_sop_edit_script(self.mail_template.id)
        composer = Form(
            self.env["mail.compose.message"].with_context(**action["context"])
        )
        self.assertEqual(composer.subject, "Welcome SOP Opportunity")
        # the toast names the script in the language it was sent in
        with self.mock_mail_gateway():
            notice = task.action_sop_send_script(lang="zh_CN")
        self.assertIn("欢迎话术", notice["params"]["message"])
        self.assertIn("欢迎 SOP Opportunity", lead.message_ids[0].subject)
        with self.assertRaisesRegex(UserError, "not installed"):
            lead.action_sop_edit_script(self.mail_template.id, lang="xx_XX")

    @users("user_sales_salesman")
    def test_scripts_menu_and_send_from_the_lead(self):
        lead = self._lead()
        menu = lead.sop_get_scripts()
        names = [row["name"] for row in menu["scripts"]]
        # the scripts of the deal's SOP stage first; templates that are not
        # scripts are not offered
        self.assertEqual(names[0], "SOP test welcome")
        self.assertIn("SOP test follow-up", names)
        self.assertNotIn("Internal template", names)
        welcome = menu["scripts"][0]
        self.assertTrue(welcome["current"])
        self.assertEqual(welcome["task_id"], self._task(lead, self.tt_script).id)
        # SMS where the sms module is installed (core crm brings it)
        self.assertEqual(menu["channels"], ["email", "sms", "copy"])
        self.assertEqual(menu["lang"], "en_US")
        with self.mock_mail_gateway():
            lead.action_sop_send_script(self.mail_template.id)
        self.assertEqual(self._task(lead, self.tt_script).state, "done")
        self.assertTrue(lead.sop_get_scripts()["scripts"][0]["sent"])
        # a library script without task: recorded, completes nothing
        with self.mock_mail_gateway():
            lead.action_sop_send_script(self.follow_up.id)
        self.assertEqual(
            self._sends(lead).mapped("mail_template_id"),
            self.follow_up + self.mail_template,
        )
        self.assertFalse(self._sends(lead)[0].task_id)

    def test_plain_text_keeps_the_scripts_paragraphs(self):
        """Copy and SMS text read as the script does: paragraphs apart, line
        breaks kept, the source's line wraps joined (no space inside Chinese
        text), links with their address."""
        self.follow_up.sudo().body_html = (
            "<p>您好，我是小王。\n    我们有适合您家的产品，\n    解答您的疑问。</p>\n\n"
            "<p>We open at 10,\n    close at 6.<br/>Welcome!</p>"
            "<ul><li>Sofas</li><li>Tables</li></ul>"
            '<p>Catalogue: <a href="https://example.com/c">here</a></p>'
        )
        lead = self._lead(partner_id=self.customer.id)
        self.assertEqual(
            lead.sop_render_script(self.follow_up.id)["body"],
            "您好，我是小王。我们有适合您家的产品，解答您的疑问。\n\n"
            "We open at 10, close at 6.\nWelcome!\n\n"
            "- Sofas\n- Tables\n\n"
            "Catalogue: here (https://example.com/c)",
        )

    @users("user_sales_salesman")
    def test_copy_then_confirm(self):
        walk_in = self.env["res.partner"].create(
            {"name": "Zhao Min", "phone": "+86 139 0000 0000"}
        )
        lead = self._lead(partner_id=walk_in.id)
        task = self._task(lead, self.tt_script)
        rendered = task.sop_render_script()
        self.assertEqual(
            rendered, {"subject": "Welcome SOP Opportunity", "body": "Hello Zhao Min"}
        )
        rendered = lead.sop_render_script(self.follow_up.id)
        self.assertEqual(
            rendered["body"],
            "Dear Zhao Min,\n\nthank you for your visit to our store.",
        )
        action = task.action_sop_copy_script()
        self.assertEqual(action["tag"], "crm_sales_sop.copy_script")
        self.assertEqual(action["params"]["body"], "Hello Zhao Min")
        self.assertEqual(action["params"]["model"], "crm.sop.task")
        # copying records nothing: the rep has not sent it yet
        self.assertFalse(self._sends(lead))
        self.assertEqual(task.state, "todo")
        task.action_sop_send_script(channel="copy")
        self.assertEqual(task.state, "done")
        self.assertEqual(self._sends(lead).channel, "copy")
        self.assertFalse(
            lead.message_ids.filtered(lambda m: m.message_type == "comment")
        )

    @users("user_sales_salesman")
    def test_edit_first_counts(self):
        lead = self._lead()
        task = self._task(lead, self.tt_script)
        action = task.action_sop_edit_script()
        composer = Form(
            self.env["mail.compose.message"].with_context(**action["context"])
        )
        with self.mock_mail_gateway():
            composer.save().action_send_mail()
        self.assertEqual(task.state, "done")
        self.assertRecordValues(
            self._sends(lead), [{"channel": "email", "task_id": task.id}]
        )
        # a template that is not a script sent through the composer is no
        # script send
        Form(
            self.env["mail.compose.message"].with_context(
                default_model="crm.lead",
                default_res_ids=lead.ids,
                default_template_id=self.not_a_script.id,
            )
        ).save().action_send_mail()
        self.assertEqual(len(self._sends(lead)), 1)

    @users("user_sales_salesman")
    def test_edit_first_to_a_colleague_records_nothing(self):
        lead = self._lead()
        task = self._task(lead, self.tt_script)
        colleague = self.user_sales_manager.partner_id
        action = task.action_sop_edit_script()
        composer = Form(
            self.env["mail.compose.message"].with_context(**action["context"])
        )
        composer.partner_ids.clear()
        composer.partner_ids.add(colleague)
        with self.mock_mail_gateway():
            composer.save().action_send_mail()
        # the message went to the colleague, not to the customer
        message = lead.message_ids[0]
        self.assertEqual(message.partner_ids, colleague)
        self.assertNotIn(self.customer, message.notification_ids.res_partner_id)
        self.assertFalse(self._sends(lead))
        self.assertEqual(task.state, "todo")
        self.assertFalse(task.date_script_sent)
        # the customer among the recipients: it counts
        action = task.action_sop_edit_script()
        composer = Form(
            self.env["mail.compose.message"].with_context(**action["context"])
        )
        composer.partner_ids.add(colleague)
        with self.mock_mail_gateway():
            composer.save().action_send_mail()
        self.assertEqual(task.state, "done")
        self.assertRecordValues(
            self._sends(lead),
            [
                {
                    "task_id": task.id,
                    "partner_id": self.customer.id,
                    "mail_message_id": lead.message_ids[0].id,
                    "delivery_state": "sent",
                }
            ],
        )

    @users("user_sales_salesman")
    def test_copy_and_edit_first_need_a_customer(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        task = self._task(lead, self.tt_script)
        template_id = self.mail_template.id
        for call in (
            lambda: lead.sop_render_script(template_id),
            lambda: lead.action_sop_copy_script(template_id),
            lambda: lead.action_sop_edit_script(template_id),
            lambda: lead.action_sop_send_script(template_id, channel="copy"),
            task.sop_render_script,
            task.action_sop_copy_script,
            task.action_sop_edit_script,
            lambda: task.action_sop_send_script(channel="copy"),
        ):
            with self.subTest(call=call):
                self._assert_refused(lead, call, UserError, "Set the customer")
        self.assertFalse(task.date_script_sent)

    # ------------------------------------------------------------
    # delivery
    # ------------------------------------------------------------

    def _smtp_refusing(self, email):
        """The SMTP session of mail's test gateway refusing ``email`` at RCPT
        TO, as a server does (smtplib raises it from send_message); other
        recipients go through."""
        session = self.testing_smtp_session
        send_message = session.send_message

        def refuse(message, smtp_from, smtp_to_list, *args, **kwargs):
            if any(email in address for address in smtp_to_list):
                raise smtplib.SMTPRecipientsRefused(
                    {email: (550, b"5.1.1 mailbox unavailable")}
                )
            return send_message(message, smtp_from, smtp_to_list, *args, **kwargs)

        stack = ExitStack()
        stack.enter_context(patch.object(session, "send_message", side_effect=refuse))
        # mail logs the refusal as an error, as it should outside a test
        stack.enter_context(mute_logger("odoo.addons.mail.models.mail_mail"))
        return stack

    def _notes(self, lead):
        return lead.message_ids.filtered(
            lambda m: m.message_type == "notification" and "did not reach" in m.body
        )

    @users("user_sales_salesman")
    def test_email_refused_by_the_mail_server_leaves_the_task_open(self):
        lead = self._lead()
        task = self._task(lead, self.tt_script)
        with self.mock_mail_gateway(), self._smtp_refusing(self.customer.email):
            task.action_sop_send_script()
            self._leave_queue(lead)
        message = lead.message_ids.filtered(lambda m: m.message_type == "comment")
        self.assertEqual(
            message.notification_ids.filtered(
                lambda n: n.res_partner_id == self.customer
            ).notification_status,
            "exception",
        )
        send = self._sends(lead)
        self.assertRecordValues(
            send,
            [
                {
                    "task_id": task.id,
                    "channel": "email",
                    "delivery_state": "failed",
                    "mail_message_id": message.id,
                    "partner_id": self.customer.id,
                }
            ],
        )
        self.assertIn("mailbox unavailable", send.failure_reason)
        self.assertEqual(task.state, "todo")
        self.assertFalse(task.date_script_sent)
        self.assertEqual(task.button, "send")
        # the rep is told: a note on the deal names the script and why
        note = self._notes(lead)
        self.assertEqual(len(note), 1)
        self.assertIn("SOP test welcome", note.body)
        self.assertIn("Wang Fang", note.body)
        self.assertIn("mailbox unavailable", note.body)
        # the rep cannot make it delivered: mail's record of the customer is
        # not theirs to write, nor is the send
        notification = message.notification_ids.filtered(
            lambda n: n.res_partner_id == self.customer
        )
        with self.assertRaises(AccessError):
            notification.write({"notification_status": "sent"})
        with self.assertRaises(AccessError):
            send.with_user(self.env.user).write({"delivery_state": "sent"})
        self.env.invalidate_all()
        self.assertEqual(notification.sudo().notification_status, "exception")
        self.assertEqual(send.delivery_state, "failed")
        self.assertEqual(task.state, "todo")
        # a later send that gets through completes it
        with self.mock_mail_gateway():
            task.action_sop_send_script()
            self._leave_queue(lead)
        self.assertEqual(task.state, "done")
        self.assertEqual(self._sends(lead).mapped("delivery_state"), ["sent", "failed"])
        self.assertEqual(task.date_script_sent, self._sends(lead)[0].date)

    @users("user_sales_salesman")
    def test_queued_email_refused_later_reopens_the_task(self):
        leads = self.env["crm.lead"].create(
            [self._sop_lead_vals(partner_id=self.customer.id) for _i in range(3)]
        )
        tasks = leads.sop_task_ids.filtered(
            lambda t: t.task_template_id == self.tt_script
        )
        # queued (core sends after commit, or by the mail queue)
        for task in tasks:
            with self.mock_mail_gateway():
                task.with_context(mail_notify_force_send=False).action_sop_send_script()
        sends = (
            self.env["crm.sop.script.send"]
            .sudo()
            .search([("lead_id", "in", leads.ids)])
        )
        self.assertEqual(sends.mapped("delivery_state"), ["outgoing"] * 3)
        # on its way: the task counts as sent
        self.assertEqual(tasks.mapped("state"), ["done"] * 3)
        mails = (
            self.env["mail.mail"]
            .sudo()
            .search([("model", "=", "crm.lead"), ("res_id", "in", leads.ids)])
        )
        self.assertEqual(len(mails), 3)
        # the mail queue sends them; the server refuses the customer
        with self.mock_mail_gateway(), self._smtp_refusing(self.customer.email):
            mails.with_user(self.env.ref("base.user_root")).send()
            # what the commit of the queue's transaction runs
            self.env.cr.flush()
        self.assertEqual(mails.mapped("state"), ["exception"] * 3)
        self.env.invalidate_all()
        self.assertEqual(sends.mapped("delivery_state"), ["failed"] * 3)
        self.assertEqual(tasks.mapped("state"), ["todo"] * 3)
        self.assertFalse(any(tasks.mapped("date_script_sent")))
        for lead in leads:
            self.assertEqual(len(self._notes(lead)), 1)
        # and the rep who sent them gets a sticky notification for each
        told = (
            self.env["bus.bus"]
            .sudo()
            .search(
                [
                    (
                        "channel",
                        "like",
                        f'"res.partner",{self.env.user.partner_id.id}]',
                    ),
                    ("message", "like", "Script not delivered"),
                ]
            )
        )
        self.assertEqual(len(told), 3)
        # Retry from mail's failure dialog: the mail gets through
        retried = mails.filtered(lambda mail: mail.res_id == leads[0].id)
        with self.mock_mail_gateway():
            retried.action_retry()
            retried.with_user(self.env.ref("base.user_root")).send()
            self.env.cr.flush()
        self.env.invalidate_all()
        self.assertEqual(
            [
                send.delivery_state
                for send in sends.sorted(lambda send: send.lead_id.id)
            ],
            ["sent", "failed", "failed"],
        )
        self.assertEqual(
            [task.state for task in tasks.sorted(lambda task: task.lead_id.id)],
            ["done", "todo", "todo"],
        )

    @users("user_sales_salesman")
    def test_mass_mailing_follows_each_mail(self):
        other = self.env["res.partner"].create(
            {"name": "Li Lei", "email": "li.lei@test.example.com"}
        )
        leads = self._lead() | self._lead(partner_id=other.id)
        tasks = leads.sop_task_ids.filtered(
            lambda t: t.task_template_id == self.tt_script
        )
        composer = Form(
            self.env["mail.compose.message"].with_context(
                default_model="crm.lead",
                default_res_ids=leads.ids,
                default_template_id=self.mail_template.id,
                default_composition_mode="mass_mail",
            )
        )
        # sent right away; the delivered mail is deleted (auto_delete)
        with (
            self.mock_mail_gateway(mail_unlink_sent=True),
            self._smtp_refusing(self.customer.email),
        ):
            composer.save().action_send_mail()
        refused, delivered = (
            self._sends(leads[0]),
            self._sends(leads[1]),
        )
        self.assertRecordValues(
            refused + delivered,
            [
                {"partner_id": self.customer.id, "delivery_state": "failed"},
                {"partner_id": other.id, "delivery_state": "sent"},
            ],
        )
        self.assertTrue(refused.mail_mail_id)
        self.assertFalse(delivered.mail_mail_id.exists())
        self.assertEqual(tasks[0].state, "todo")
        self.assertEqual(tasks[1].state, "done")
        self.assertEqual(len(self._notes(leads[0])), 1)
        self.assertFalse(self._notes(leads[1]))
        # Retry from the outgoing mails: it gets through
        mail = refused.mail_mail_id.sudo()
        with self.mock_mail_gateway():
            mail.action_retry()
            mail.send()
        self.assertEqual(refused.delivery_state, "sent")
        self.assertEqual(tasks[0].state, "done")

    @users("user_sales_salesman")
    def test_bounce_after_delivery_reopens_the_task(self):
        lead = self._lead()
        task = self._task(lead, self.tt_script)
        with self.mock_mail_gateway():
            task.action_sop_send_script()
            self._leave_queue(lead)
        send = self._sends(lead)
        self.assertEqual(send.delivery_state, "sent")
        self.assertEqual(task.state, "done")
        # the customer's server returns it: a delivery status notification
        # processed by Odoo's mail gateway
        dsn = f"""From: MAILER-DAEMON@mx.example.com
To: {self.alias_bounce}@{self.alias_domain}
Subject: Undelivered Mail Returned to Sender
Message-Id: <dsn-sop-1@mx.example.com>
In-Reply-To: {send.sudo().mail_message_id.message_id}
References: {send.sudo().mail_message_id.message_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="SOPDSN"

--SOPDSN
Content-Type: text/plain; charset=us-ascii

The mailbox of wang.fang@test.example.com does not exist.

--SOPDSN
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; {self.customer.email}
Action: failed
Status: 5.1.1

--SOPDSN--
"""
        self.env["mail.thread"].sudo().message_process(False, dsn)
        self.env.cr.flush()  # what the commit of the gateway's transaction runs
        self.env.invalidate_all()
        self.assertEqual(send.delivery_state, "failed")
        self.assertEqual(task.state, "todo")
        self.assertFalse(task.date_script_sent)
        self.assertEqual(len(self._notes(lead)), 1)

    def test_failures_followed_in_one_pass(self):
        """However many mails fail in a transaction, their sends are followed
        in one pass with the same number of queries."""
        counts = []
        for size in (1, 1, 6):  # warm up the registry's caches first
            leads = self.env["crm.lead"].create(
                [self._sop_lead_vals(partner_id=self.customer.id) for _i in range(size)]
            )
            for lead in leads:
                with self.mock_mail_gateway():
                    lead.with_user(self.user_sales_salesman).with_context(
                        mail_notify_force_send=False
                    ).action_sop_send_script(self.mail_template.id)
            mails = self.env["mail.mail"].search(
                [("model", "=", "crm.lead"), ("res_id", "in", leads.ids)]
            )
            with self.mock_mail_gateway(), self._smtp_refusing(self.customer.email):
                mails.send()
                self.env.flush_all()
                before = self.cr.sql_log_count
                self.env.cr.flush()
                counts.append(self.cr.sql_log_count - before)
            self.assertEqual(
                set(
                    self.env["crm.sop.script.send"]
                    .search([("lead_id", "in", leads.ids)])
                    .mapped("delivery_state")
                ),
                {"failed"},
            )
        self.assertEqual(counts[1], counts[2])

    # ------------------------------------------------------------
    # language
    # ------------------------------------------------------------

    @users("user_sales_salesman")
    def test_rendered_in_the_customers_language(self):
        self.customer.sudo().lang = "zh_CN"
        lead = self._lead()
        self.assertEqual(lead.sop_get_scripts()["lang"], "zh_CN")
        self.assertEqual(
            lead.sop_render_script(self.mail_template.id),
            {"subject": "欢迎 SOP Opportunity", "body": "Wang Fang，您好"},
        )
        # the rep switches the script's language before sending
        self.assertEqual(
            lead.sop_render_script(self.mail_template.id, lang="en_US")["body"],
            "Hello Wang Fang",
        )
        with self.mock_mail_gateway():
            lead.action_sop_send_script(self.mail_template.id, lang="en_US")
        self.assertIn("Hello Wang Fang", lead.message_ids[0].body)
        with self.assertRaisesRegex(UserError, "not installed"):
            lead.sop_render_script(self.mail_template.id, lang="xx_XX")

    def test_customer_created_from_a_lead_takes_the_reps_language(self):
        rep = self.user_sales_salesman
        rep.lang = "zh_CN"
        lead = (
            self.env["crm.lead"]
            .with_user(rep)
            .with_context(lang="en_US")
            .create(
                self._sop_lead_vals(
                    contact_name="Zhao Min", email_from="zm@example.com"
                )
            )
        )
        lead._handle_partner_assignment(create_missing=True)
        self.assertEqual(lead.partner_id.name, "Zhao Min")
        self.assertEqual(lead.partner_id.lang, "zh_CN")
        # a language set on the deal wins
        lead_fr = (
            self.env["crm.lead"]
            .with_user(rep)
            .create(
                self._sop_lead_vals(
                    contact_name="Marie",
                    lang_id=self.env["res.lang"]._lang_get("en_US").id,
                )
            )
        )
        lead_fr._handle_partner_assignment(create_missing=True)
        self.assertEqual(lead_fr.partner_id.lang, "en_US")

    # ------------------------------------------------------------
    # refusals: a clear message, nothing sent, recorded or completed
    # ------------------------------------------------------------

    def _assert_refused(self, lead, call, exception, message):
        task = self._task(lead, self.tt_script)
        count = len(lead.message_ids)
        with self.mock_mail_gateway(), self.assertRaisesRegex(exception, message):
            call()
        self.assertFalse(self._sends(lead))
        self.assertEqual(task.state, "todo")
        self.assertEqual(len(lead.message_ids), count)
        self.assertFalse(self._new_mails)

    @users("user_sales_salesman")
    def test_refusals(self):
        no_customer = self.env["crm.lead"].create(self._sop_lead_vals())
        self._assert_refused(
            no_customer,
            lambda: self._task(no_customer, self.tt_script).action_sop_send_script(),
            UserError,
            "Set the customer",
        )
        walk_in = self.env["res.partner"].create({"name": "Zhao Min"})
        no_email = self._lead(partner_id=walk_in.id)
        self._assert_refused(
            no_email,
            lambda: no_email.action_sop_send_script(self.mail_template.id),
            UserError,
            "has no email address",
        )
        self._assert_refused(
            no_email,
            lambda: no_email.action_sop_send_script(
                self.mail_template.id, channel="sms"
            ),
            UserError,
            "has no mobile number",
        )
        lead = self._lead()
        self._assert_refused(
            lead,
            lambda: lead.action_sop_send_script(self.mail_template.id, channel="fax"),
            UserError,
            "Unknown way",
        )
        for template_id in (self.not_a_script.id, 0, "1", False, 10**9):
            self._assert_refused(
                lead,
                lambda template_id=template_id: lead.action_sop_send_script(
                    template_id
                ),
                UserError,
                "not a Sales SOP script",
            )

    def test_refused_when_the_script_fails_to_render(self):
        self.mail_template.body_html = "<p><t t-out='object.no_such_field'/></p>"
        lead = self._lead().with_user(self.user_sales_salesman)
        self._assert_refused(
            lead,
            lambda: lead.action_sop_send_script(self.mail_template.id),
            UserError,
            "could not be prepared",
        )
        self._assert_refused(
            lead,
            lambda: lead.action_sop_send_script(self.mail_template.id, channel="copy"),
            UserError,
            "could not be prepared",
        )

    def test_refused_on_a_lead_the_rep_may_not_write(self):
        other_rep = mail_new_test_user(
            self.env,
            login="sop_other_rep",
            groups="sales_team.group_sale_salesman",
        )
        lead = self._lead(user_id=other_rep.id)
        task = self._task(lead, self.tt_script)
        rep_lead = lead.with_user(self.user_sales_salesman)
        rep_task = task.with_user(self.user_sales_salesman)
        for call in (
            lambda: rep_lead.action_sop_send_script(self.mail_template.id),
            lambda: rep_lead.action_sop_send_script(
                self.mail_template.id, channel="copy"
            ),
            lambda: rep_lead.sop_render_script(self.mail_template.id),
            lambda: rep_lead.action_sop_copy_script(self.mail_template.id),
            lambda: rep_lead.action_sop_edit_script(self.mail_template.id),
            lambda: rep_lead.sop_get_scripts(),
            lambda: rep_task.action_sop_send_script(),
            lambda: rep_task.sop_render_script(),
            lambda: rep_task.action_sop_copy_script(),
        ):
            self._assert_refused(lead, call, AccessError, "")

    @users("user_sales_salesman")
    def test_sends_are_written_by_the_engine_only(self):
        lead = self._lead()
        Send = self.env["crm.sop.script.send"]
        with self.assertRaises(AccessError):
            Send.create(
                {
                    "lead_id": lead.id,
                    "mail_template_id": self.mail_template.id,
                    "user_id": self.env.uid,
                    "channel": "copy",
                }
            )
        lead.action_sop_send_script(self.mail_template.id, channel="copy")
        with self.assertRaises(AccessError):
            self._sends(lead).with_user(self.env.user).write({"channel": "email"})
        with self.assertRaises(AccessError):
            self._sends(lead).with_user(self.env.user).write(
                {"delivery_state": "failed"}
            )
        self.assertEqual(self._sends(lead).delivery_state, "sent")
        with self.assertRaises(AccessError):
            self._sends(lead).with_user(self.env.user).unlink()

    # ------------------------------------------------------------
    # the library
    # ------------------------------------------------------------

    def test_library_kept_by_managers(self):
        # a rep edits the templates core lets them edit (their own)...
        template = (
            self.env["mail.template"]
            .with_user(self.user_sales_salesman)
            .create(
                {
                    "name": "Rep's template",
                    "model_id": self.env["ir.model"]._get_id("crm.lead"),
                }
            )
        )
        template.subject = "Changed"
        # ...but the library of scripts is the managers'
        with self.assertRaises(AccessError):
            template.sop_is_script = True
        with self.assertRaises(AccessError):
            template.sop_stage_ids = self.sop_stage_contact
        with self.assertRaises(AccessError):
            template.create(
                {
                    "name": "Rep's own script",
                    "model_id": self.env["ir.model"]._get_id("crm.lead"),
                    "sop_is_script": True,
                }
            )
        # copies of scripts are not scripts
        copy = self.mail_template.copy()
        self.assertFalse(copy.sop_is_script)
        # managers edit every template where the database keeps the default
        # (internal users are template editors)
        self.user_sales_manager.groups_id += self.env.ref(
            "mail.group_mail_template_editor"
        )
        self.not_a_script.with_user(self.user_sales_manager).sop_is_script = True
        self.assertTrue(self.not_a_script.sop_is_script)
        with self.assertRaises(ValidationError):
            self.env["mail.template"].with_user(self.user_sales_manager).create(
                {
                    "name": "Partner script",
                    "model_id": self.env["ir.model"]._get_id("res.partner"),
                    "sop_is_script": True,
                }
            )

    def test_default_library(self):
        scripts = self.env["mail.template"].search([("sop_is_script", "=", True)])
        for xmlid, stage in (
            ("mail_template_sop_welcome", "crm_sop_stage_first_contact"),
            ("mail_template_sop_introduction", "crm_sop_stage_first_contact"),
            ("mail_template_sop_follow_up", "crm_sop_stage_build_trust"),
            ("mail_template_sop_reference", "crm_sop_stage_build_trust"),
            ("mail_template_sop_proposal", "crm_sop_stage_product_pitch"),
        ):
            template = self.env.ref(f"crm_sales_sop.{xmlid}")
            self.assertIn(template, scripts)
            self.assertIn(
                self.env.ref(f"crm_sales_sop.{stage}"), template.sop_stage_ids
            )
            # shipped in Chinese too
            zh_body = template.with_context(lang="zh_CN").body_html
            self.assertNotEqual(zh_body, template.with_context(lang="en_US").body_html)
            self.assertRegex(str(zh_body), "[\u4e00-\u9fff]")

    # ------------------------------------------------------------
    # merge and cost
    # ------------------------------------------------------------

    def test_sends_follow_a_merge(self):
        head = self._lead(name="Head")
        tail = self._lead(name="Tail")
        tail.action_sop_send_script(self.follow_up.id, channel="copy")
        send = self._sends(tail)
        (head | tail).merge_opportunity()
        merged = (head | tail).exists()
        self.assertEqual(len(merged), 1)
        self.assertEqual(send.lead_id, merged)

    @users("user_sales_salesman")
    def test_queries_per_send(self):
        leads = self.env["crm.lead"].create(
            [self._sop_lead_vals(partner_id=self.customer.id) for _i in range(3)]
        )
        leads[0].action_sop_send_script(self.follow_up.id, channel="copy")  # warm up
        self.env.invalidate_all()
        # 22, and the deal's task analysis facts made anew (its task is done)
        with self.assertQueryCount(user_sales_salesman=23):
            leads[1].action_sop_send_script(self.mail_template.id, channel="copy")
        self.assertEqual(self._task(leads[1], self.tt_script).state, "done")


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopScriptSms(TestSopCommon, SMSCase):
    """SMS, where the sms module is installed (core crm brings it): the
    plain-text script through Odoo's SMS gateway (IAP, stubbed by sms's own
    test helper as core's tests do)."""

    @users("user_sales_salesman")
    def test_sms_in_one_click(self):
        self.customer.sudo().mobile = "+86 139 1234 5678"
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        task = lead.sop_task_ids.filtered(
            lambda t: t.task_template_id == self.tt_script
        )
        with self.mockSMSGateway():
            task.action_sop_send_script(channel="sms")
        self.assertSMSIapSent(["+8613912345678"], content="Hello Wang Fang")
        self.assertEqual(task.state, "done")
        send = self.env["crm.sop.script.send"].search([("lead_id", "=", lead.id)])
        self.assertRecordValues(
            send, [{"channel": "sms", "task_id": task.id, "delivery_state": "sent"}]
        )

    @users("user_sales_salesman")
    def test_failed_sms_leaves_the_task_open(self):
        self.customer.sudo().mobile = "+86 139 1234 5678"
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id)
        )
        task = lead.sop_task_ids.filtered(
            lambda t: t.task_template_id == self.tt_script
        )
        with self.mockSMSGateway(sim_error="credit"):
            task.action_sop_send_script(channel="sms")
        send = self.env["crm.sop.script.send"].search([("lead_id", "=", lead.id)])
        self.assertRecordValues(
            send, [{"channel": "sms", "task_id": task.id, "delivery_state": "failed"}]
        )
        self.assertEqual(task.state, "todo")
        note = lead.message_ids.filtered(
            lambda m: m.message_type == "notification" and "did not reach" in m.body
        )
        self.assertEqual(len(note), 1)
        self.assertIn("SMS", note.body)
        with self.mockSMSGateway():
            task.action_sop_send_script(channel="sms")
        self.assertEqual(task.state, "done")

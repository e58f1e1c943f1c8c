from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, tagged, users

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
            "Dear Zhao Min,\nthank you for your visit to *our store*.",
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
        with self.assertQueryCount(user_sales_salesman=22):
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
        self.assertRecordValues(send, [{"channel": "sms", "task_id": task.id}])

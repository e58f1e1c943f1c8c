from datetime import datetime
from unittest.mock import patch

from odoo.tests import HttpCase, JsonRpcException, tagged

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import sop_evaluations
from .test_sop_reminder import _office_calendar


def _rep_and_team(env, login, team_name):
    """A rep (own documents, may edit customers) alone in a new sales team,
    which follows the standard playbook (the fallback)."""
    rep = mail_new_test_user(
        env,
        login=login,
        name=login.replace("_", " ").title(),
        groups="sales_team.group_sale_salesman,base.group_partner_manager",
    )
    team = env["crm.team"].create({"name": team_name, "member_ids": [(6, 0, rep.ids)]})
    return rep, team


def _gated_deal(env, login, team_name, name):
    """A rep's opportunity in New under the standard playbook, whose First
    Contact stage blocks, with a call planned for the rep."""
    rep, team = _rep_and_team(env, login, team_name)
    env.ref("crm_sales_sop.crm_sop_stage_first_contact").gate = "block"
    lead = env["crm.lead"].create(
        {
            "name": name,
            "type": "opportunity",
            "user_id": rep.id,
            "team_id": team.id,
            "stage_id": env.ref("crm.stage_lead1").id,
        }
    )
    lead.activity_schedule(
        "mail.mail_activity_data_call", summary="Call the customer", user_id=rep.id
    )
    return lead


def _tasks(lead):
    """{task template xml id (without module): task} of the lead."""
    xmlids = lead.sop_task_ids.task_template_id.get_external_id()
    return {
        xmlids[task.task_template_id.id].split(".")[-1]: task
        for task in lead.sop_task_ids
    }


def _my_day_deals(env, login, team_name, lang="en_US"):
    """Two deals of a new rep (working in ``lang``) in New: a small one whose
    customer has an email (its welcome script can be sent) and a big one;
    returns the small one."""
    rep, team = _rep_and_team(env, login, team_name)
    if lang != "en_US":
        env["res.lang"]._activate_lang(lang)
        rep.lang = lang
    customer = env["res.partner"].create(
        {"name": "Zhou Min", "email": "zhou.min@example.com"}
    )
    small, _big = env["crm.lead"].create(
        [
            {
                "name": name,
                "type": "opportunity",
                "user_id": rep.id,
                "team_id": team.id,
                "expected_revenue": revenue,
                "probability": 50,
                "partner_id": partner.id,
                "stage_id": env.ref("crm.stage_lead1").id,
            }
            for name, revenue, partner in (
                ("Small deal", 100, customer),
                ("Big deal", 90000, env["res.partner"]),
            )
        ]
    )
    return small


def _load_zh(env):
    """Simplified Chinese active, this addon's terms loaded afresh: a tour
    in zh_CN fails on a string left untranslated."""
    env["res.lang"]._activate_lang("zh_CN")
    env["ir.module.module"]._load_module_terms(
        ["crm_sales_sop"], ["zh_CN"], overwrite=True
    )


def _grant_clipboard(case, browser):
    """Copy writes the script to the clipboard: let the tour read it."""
    browser._websocket_request(
        "Browser.grantPermissions",
        params={
            "origin": case.base_url(),
            "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
        },
    )
    # a headless page never has the focus a rep's window has, and
    # the clipboard is refused to unfocused pages
    browser._websocket_request(
        "Emulation.setFocusEmulationEnabled", params={"enabled": True}
    )


def _assert_undone(case, lead):
    """The tour sent the welcome script and undid it: nothing left, open."""
    welcome = _tasks(lead)["crm_sop_task_welcome"]
    case.assertEqual(welcome.state, "todo")
    case.assertFalse(
        case.env["crm.sop.script.send"].search([("lead_id", "=", lead.id)])
    )
    case.assertFalse(
        case.env["mail.mail"].search(
            [("model", "=", "crm.lead"), ("res_id", "=", lead.id)]
        )
    )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopMyDayUi(HttpCase):
    browser_size = "1440x900"

    def test_my_sop_day_at_desktop_width(self):
        small = _my_day_deals(self.env, "sop_day_desk_rep", "Day desk team")
        self.start_tour(
            "/odoo/my-sop-day",
            "crm_sales_sop_my_day_desktop",
            login="sop_day_desk_rep",
        )
        _assert_undone(self, small)

    def test_my_sop_day_at_desktop_width_zh(self):
        small = _my_day_deals(self.env, "sop_day_desk_zh", "Day desk zh", "zh_CN")
        self.start_tour(
            "/odoo/my-sop-day", "crm_sales_sop_my_day_desktop", login="sop_day_desk_zh"
        )
        _assert_undone(self, small)


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopUi(HttpCase):
    def test_rep_fills_a_task_through_its_dialog(self):
        rep, team = _rep_and_team(self.env, "sop_tour_rep", "Tour team")
        self.env["crm.lead"].create(
            {
                "name": "Tour opportunity",
                "type": "opportunity",
                "user_id": rep.id,
                "team_id": team.id,
                "stage_id": self.env.ref("crm.stage_lead1").id,
            }
        )
        self.start_tour("/odoo/crm", "crm_sales_sop_fill_task", login="sop_tour_rep")
        lead = self.env["crm.lead"].search([("name", "=", "Tour opportunity")])
        self.assertEqual(lead.x_sop_companions, "Her sister")
        visit = lead.sop_task_ids.filtered(
            lambda t: (
                t.task_template_id
                == self.env.ref("crm_sales_sop.crm_sop_task_visit_data")
            )
        )
        self.assertEqual(visit.state, "done")
        self.assertEqual(visit.done_user_id, rep)

    def authenticate(self, user, password, browser=None):
        session = super().authenticate(user, password, browser=browser)
        if browser:
            _grant_clipboard(self, browser)
        return session

    def test_rep_sends_scripts_from_the_panel(self):
        # the Scripts menu switches its names with the language chosen
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["crm_sales_sop"], ["zh_CN"])
        rep, team = _rep_and_team(self.env, "sop_script_rep", "Script team")
        customer = self.env["res.partner"].create(
            {"name": "Zhao Min", "email": "zhao.min@example.com", "lang": "en_US"}
        )
        lead = self.env["crm.lead"].create(
            {
                "name": "Script opportunity",
                "type": "opportunity",
                "user_id": rep.id,
                "team_id": team.id,
                "partner_id": customer.id,
                "stage_id": self.env.ref("crm.stage_lead1").id,
            }
        )
        self.start_tour("/odoo/crm", "crm_sales_sop_scripts", login="sop_script_rep")
        self.assertEqual(_tasks(lead)["crm_sop_task_welcome"].state, "done")
        sends = self.env["crm.sop.script.send"].search([("lead_id", "=", lead.id)])
        self.assertEqual(
            {
                (s.mail_template_id.get_external_id()[s.mail_template_id.id], s.channel)
                for s in sends
            },
            {
                ("crm_sales_sop.mail_template_sop_welcome", "email"),
                ("crm_sales_sop.mail_template_sop_introduction", "copy"),
            },
        )
        self.assertEqual(sends.user_id, rep)
        mail = self.env["mail.mail"].search([("recipient_ids", "in", customer.ids)])
        self.assertEqual(len(mail), 1)
        self.assertIn("Hello Zhao Min", mail.body_html)

    def test_copy_then_sent_keeps_the_scroll_position(self):
        """Copy → Sent on a task of the SOP panel, the form scrolled down:
        the record reloads in place, the form does not jump to the top."""
        rep, team = _rep_and_team(self.env, "sop_copy_rep", "Copy team")
        customer = self.env["res.partner"].create(
            {"name": "Qian Li", "email": "qian.li@example.com"}
        )
        lead = self.env["crm.lead"].create(
            {
                "name": "Copy opportunity",
                "type": "opportunity",
                "user_id": rep.id,
                "team_id": team.id,
                "partner_id": customer.id,
                "stage_id": self.env.ref("crm.stage_lead1").id,
            }
        )
        # a long chatter: the form scrolls
        lead.with_context(mail_notrack=True)._message_log_batch(
            {lead.id: "".join(f"<p>Call note {i}</p>" for i in range(40))}
        )
        for i in range(15):
            lead.message_post(body=f"Follow-up note {i}", message_type="comment")
        self.start_tour(
            f"/odoo/crm/{lead.id}",
            "crm_sales_sop_copy_keeps_scroll",
            login="sop_copy_rep",
        )
        self.assertEqual(_tasks(lead)["crm_sop_task_welcome"].state, "done")
        sends = self.env["crm.sop.script.send"].search([("lead_id", "=", lead.id)])
        self.assertEqual(
            {
                (s.mail_template_id.get_external_id()[s.mail_template_id.id], s.channel)
                for s in sends
            },
            {
                ("crm_sales_sop.mail_template_sop_welcome", "copy"),
                ("crm_sales_sop.mail_template_sop_introduction", "copy"),
            },
        )
        self.assertEqual(sends.user_id, rep)

    def test_rep_day_on_a_gated_deal(self):
        lead = _gated_deal(self.env, "sop_day_rep", "Day team", "Gated opportunity")
        self.start_tour("/odoo/crm", "crm_sales_sop_rep_day", login="sop_day_rep")
        self.assertEqual(lead.stage_id, self.env.ref("crm.stage_lead1"))
        self.assertEqual(lead.x_sop_companions, "Her sister")
        tasks = _tasks(lead)
        self.assertEqual(tasks["crm_sop_task_follow_up_call"].state, "done")
        reference = tasks["crm_sop_task_reference"]
        self.assertEqual(
            (reference.state, reference.na_reason),
            ("na", "The customer asked for none"),
        )

    def test_manager_edits_a_condition(self):
        task_template = self.env.ref("crm_sales_sop.crm_sop_task_priority")
        action = self.env.ref("crm_sales_sop.crm_sop_task_template_action")
        self.start_tour(
            f"/odoo/action-{action.id}/{task_template.id}",
            "crm_sales_sop_manager_condition",
            login="admin",
        )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopManagerUi(HttpCase):
    """Issue 15, item 9, at 1440 px: a manager builds a playbook top-down."""

    browser_size = "1440x900"

    def test_manager_builds_a_playbook_top_down(self):
        action = self.env.ref("crm_sales_sop.crm_sop_template_action")
        self.start_tour(
            f"/odoo/action-{action.id}/new",
            "crm_sales_sop_manager_top_down",
            login="admin",
        )
        playbook = self.env["crm.sop.template"].search(
            [("name", "=", "Top-down Playbook")]
        )
        self.assertEqual(playbook.stage_ids.mapped("name"), ["Greet the Visitor"])
        task_template = playbook.stage_ids.task_template_ids
        self.assertEqual(
            (task_template.name, task_template.kind, task_template.template_id),
            ("Offer a drink", "manual", playbook),
        )

    def test_manager_deletes_a_playbook_a_large_team_follows(self):
        """More open deals follow the playbook than one save re-maps: it is
        archived instead of deleted, and the manager reads why."""
        from ..models import crm_sop_engine

        team = self.env["crm.team"].create({"name": "Large SOP team"})
        playbook = self.env["crm.sop.template"].create(
            {
                "name": "Large team playbook",
                "team_ids": [(6, 0, team.ids)],
                "stage_ids": [
                    (
                        0,
                        0,
                        {
                            "name": "Greet",
                            "task_template_ids": [
                                (0, 0, {"name": "Say hello", "kind": "manual"})
                            ],
                        },
                    )
                ],
            }
        )
        leads = self.env["crm.lead"].create(
            [
                {
                    "name": f"Large team deal {i}",
                    "type": "opportunity",
                    "team_id": team.id,
                }
                for i in range(5)
            ]
        )
        self.assertEqual(leads.sop_template_id, playbook)
        action = self.env.ref("crm_sales_sop.crm_sop_template_action")
        with patch.object(crm_sop_engine, "SOP_SETUP_INLINE", 2):
            self.start_tour(
                f"/odoo/action-{action.id}/{playbook.id}",
                "crm_sales_sop_manager_delete_playbook",
                login="admin",
            )
        self.assertTrue(playbook.exists())
        self.assertFalse(playbook.active)
        notice = (
            self.env["bus.bus"]
            .sudo()
            .search([("message", "like", "Playbook archived, not deleted")])
            .mapped("message")
        )
        self.assertEqual(len(notice), 1)
        self.assertIn("3 open opportunities still follow", notice[0])

    def test_manager_edits_a_condition_wide(self):
        task_template = self.env.ref("crm_sales_sop.crm_sop_task_priority")
        action = self.env.ref("crm_sales_sop.crm_sop_task_template_action")
        self.start_tour(
            f"/odoo/action-{action.id}/{task_template.id}",
            "crm_sales_sop_manager_condition",
            login="admin",
        )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopManagerUiPhone(HttpCase):
    """Issue 15, item 9, at 390 px: the condition editor stays readable."""

    browser_size = "390x844"
    touch_enabled = True

    def test_manager_edits_a_condition_on_a_phone(self):
        task_template = self.env.ref("crm_sales_sop.crm_sop_task_priority")
        action = self.env.ref("crm_sales_sop.crm_sop_task_template_action")
        self.start_tour(
            f"/odoo/action-{action.id}/{task_template.id}",
            "crm_sales_sop_manager_condition",
            login="admin",
        )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopUiPhone(HttpCase):
    browser_size = "390x844"
    touch_enabled = True

    def test_rep_on_a_phone(self):
        lead = _gated_deal(self.env, "sop_phone_rep", "Phone team", "Phone opportunity")
        # a script goes to a customer: without one it is refused
        lead.partner_id = self.env["res.partner"].create(
            {"name": "Zhou Min", "email": "zhou.min@example.com"}
        )
        self.start_tour("/odoo/crm", "crm_sales_sop_phone", login="sop_phone_rep")
        self.assertEqual(lead.stage_id, self.env.ref("crm.stage_lead1"))
        tasks = _tasks(lead)
        self.assertEqual(tasks["crm_sop_task_needs_summary"].state, "todo")
        self.assertEqual(tasks["crm_sop_task_reference"].state, "na")
        self.assertEqual(tasks["crm_sop_task_follow_up_call"].state, "done")

    def test_my_sop_day_on_a_phone(self):
        small = _my_day_deals(self.env, "sop_day_phone_rep", "Day phone team")
        self.start_tour(
            "/odoo/my-sop-day", "crm_sales_sop_my_day", login="sop_day_phone_rep"
        )
        _assert_undone(self, small)

    def test_my_sop_day_on_a_phone_zh(self):
        small = _my_day_deals(self.env, "sop_day_phone_zh", "Day phone zh", "zh_CN")
        self.start_tour(
            "/odoo/my-sop-day", "crm_sales_sop_my_day", login="sop_day_phone_zh"
        )
        _assert_undone(self, small)


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopGatesUi(HttpCase):
    def test_rep_lives_with_gates(self):
        """As a rep: the New column says it is gated, a warn gate shows its
        warning, a deal already past a newly gated stage is marked won."""
        rep, team = _rep_and_team(self.env, "sop_gate_rep", "Gate team")
        Lead = self.env["crm.lead"]
        vals = {"type": "opportunity", "user_id": rep.id, "team_id": team.id}
        signed = Lead.create(
            {
                **vals,
                "name": "Signed deal",
                "stage_id": self.env.ref("crm.stage_lead3").id,
            }
        )
        warned = Lead.create(
            {
                **vals,
                "name": "Warned deal",
                "stage_id": self.env.ref("crm.stage_lead2").id,
            }
        )
        # the gates are configured after the deals moved on
        self.env.ref("crm_sales_sop.crm_sop_stage_first_contact").gate = "block"
        self.env.ref("crm_sales_sop.crm_sop_stage_confirm_needs").gate = "warn"
        self.start_tour("/odoo/crm", "crm_sales_sop_gates", login="sop_gate_rep")
        self.assertTrue(signed.stage_id.is_won)
        self.assertEqual(warned.stage_id, self.env.ref("crm.stage_lead3"))
        self.assertTrue(
            warned.message_ids.filtered(
                lambda m: "open required Sales SOP tasks" in (m.body or "")
            )
        )
        self.assertFalse(self.env["crm.sop.gate.pass"].search_count([]))


def _rep_panel_deals(env, login, lang):
    """A rep who sees the whole pipeline (lang ``lang``), their stalled deal
    in Proposition without revenue, a fresh deal, and another rep's stalled
    deal; returns the Proposition deal."""
    rep = mail_new_test_user(
        env,
        login=login,
        name=login.replace("_", " ").title(),
        lang=lang,
        groups="sales_team.group_sale_salesman_all_leads",
    )
    other = mail_new_test_user(
        env, login=f"{login}_other", groups="sales_team.group_sale_salesman"
    )
    team = env["crm.team"].create(
        {"name": f"{login} team", "member_ids": [(6, 0, (rep + other).ids)]}
    )
    vals = {"type": "opportunity", "team_id": team.id, "expected_revenue": 0}
    proposal, fresh, others = env["crm.lead"].create(
        [
            {
                **vals,
                "name": "Proposal deal",
                "user_id": rep.id,
                "stage_id": env.ref("crm.stage_lead3").id,
            },
            {**vals, "name": "Fresh deal", "user_id": rep.id},
            {**vals, "name": "Other rep stalled", "user_id": other.id},
        ]
    )
    # the stall pass is a cron: its flag, set as it would
    env.flush_all()
    env.cr.execute(
        "UPDATE crm_lead SET sop_stalled = TRUE WHERE id IN %s",
        (tuple((proposal + others).ids),),
    )
    env.invalidate_all()
    # the server side of the panel: the SOP stage of Proposition, a next step of it
    pitch = env.ref("crm_sales_sop.crm_sop_stage_product_pitch")
    assert proposal.sop_stage_id == pitch, proposal.sop_stage_id.name
    assert proposal.sop_next_task_id.stage_id == pitch
    return proposal


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopRepPanelUi(HttpCase):
    """Issue 15 at 1440 px, in English and Simplified Chinese."""

    browser_size = "1440x900"

    def _run(self, login, lang):
        lead = _rep_panel_deals(self.env, login, lang)
        self.start_tour("/odoo/crm", "crm_sales_sop_rep_filters", login=login)
        self.start_tour(f"/odoo/crm/{lead.id}", "crm_sales_sop_rep_panel", login=login)

    def test_rep_panel_en(self):
        self._run("sop_panel_rep_en", "en_US")

    def test_rep_panel_zh(self):
        _load_zh(self.env)
        self._run("sop_panel_rep_zh", "zh_CN")


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopRepPanelUiPhone(HttpCase):
    """Issue 15 at 390 px: the SOP filters and the deal form, in English and
    Simplified Chinese."""

    browser_size = "390x844"
    touch_enabled = True

    def _run(self, login, lang):
        lead = _rep_panel_deals(self.env, login, lang)
        # the filters behind the phone's search toggle (item 1), then the deal
        self.start_tour("/odoo/crm", "crm_sales_sop_rep_filters", login=login)
        self.start_tour(f"/odoo/crm/{lead.id}", "crm_sales_sop_rep_panel", login=login)

    def test_rep_panel_phone_en(self):
        self._run("sop_panel_phone_en", "en_US")

    def test_rep_panel_phone_zh(self):
        _load_zh(self.env)
        self._run("sop_panel_phone_zh", "zh_CN")


def _digest_posted(case, login):
    """A rep (inbox notifications, in Shanghai, alone prompted) with a deal,
    whose Monday 08:30 digest the reminder job posted."""
    env = case.env
    rep, team = _rep_and_team(env, login, f"{login} team")
    rep.write({"tz": "Asia/Shanghai", "notification_type": "inbox"})
    env.company.resource_calendar_id = _office_calendar(
        env, "Digest office", "Asia/Shanghai"
    )
    env["res.users"].search([("id", "!=", rep.id)]).sop_reminder_opt_out = True
    env["crm.lead"].create(
        {
            "name": "Digest deal",
            "type": "opportunity",
            "user_id": rep.id,
            "team_id": team.id,
            "stage_id": env.ref("crm.stage_lead1").id,
        }
    )
    env["crm.sop.reminder"]._sop_remind(now=datetime(2026, 3, 2, 0, 30))
    digest = env["crm.sop.reminder"].search([("user_id", "=", rep.id)]).message_id
    case.assertEqual(digest.subject, "Your Sales SOP today: 1 deal to move")
    case.assertEqual(digest.notification_ids.notification_type, "inbox")
    return rep, digest


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopDigestUi(HttpCase):
    """The digest in the rep's messaging menu (systray), at desktop width."""

    browser_size = "1440x900"

    def test_digest_in_the_messaging_menu(self):
        rep, _digest = _digest_posted(self, "digest_rep")
        self.start_tour("/odoo/crm", "crm_sales_sop_digest_systray", login=rep.login)


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopDigestUiPhone(HttpCase):
    """The same at phone width (390 px)."""

    browser_size = "390x844"
    touch_enabled = True

    def test_digest_in_the_messaging_menu_on_a_phone(self):
        rep, _digest = _digest_posted(self, "phone_digest_rep")
        self.start_tour("/odoo/crm", "crm_sales_sop_digest_systray", login=rep.login)


def _long_deal(env, login, lang="en_US"):
    """A rep's deal whose customer has an email, with a long chatter: the
    form scrolls; the rep works in ``lang``."""
    rep, team = _rep_and_team(env, login, f"{login} team")
    if lang != "en_US":
        _load_zh(env)
        rep.lang = lang
    customer = env["res.partner"].create(
        {"name": "Qian Li", "email": "qian.li@example.com"}
    )
    lead = env["crm.lead"].create(
        {
            "name": "Copy opportunity",
            "type": "opportunity",
            "user_id": rep.id,
            "team_id": team.id,
            "partner_id": customer.id,
            "stage_id": env.ref("crm.stage_lead1").id,
        }
    )
    lead.with_context(mail_notrack=True)._message_log_batch(
        {lead.id: "".join(f"<p>Call note {i}</p>" for i in range(40))}
    )
    for i in range(15):
        lead.message_post(body=f"Follow-up note {i}", message_type="comment")
    return lead


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopCopyUiPhone(HttpCase):
    """Issue 15, item 10, at 390 px: Copy → Sent on a task card of the SOP
    panel keeps the scroll position, in English and Simplified Chinese."""

    browser_size = "390x844"
    touch_enabled = True

    def authenticate(self, user, password, browser=None):
        session = super().authenticate(user, password, browser=browser)
        if browser:
            # the clipboard granted and the page focused, as on the desktop
            _grant_clipboard(self, browser)
        return session

    def _run(self, login, lang="en_US"):
        lead = _long_deal(self.env, login, lang)
        self.start_tour(
            f"/odoo/crm/{lead.id}", "crm_sales_sop_copy_keeps_scroll_phone", login=login
        )
        welcome = _tasks(lead)["crm_sop_task_welcome"]
        self.assertEqual(welcome.state, "done")
        send = self.env["crm.sop.script.send"].search([("lead_id", "=", lead.id)])
        self.assertEqual((send.channel, send.user_id.login), ("copy", login))

    def test_copy_then_sent_on_a_phone(self):
        self._run("sop_copy_phone")

    def test_copy_then_sent_on_a_phone_zh(self):
        self._run("sop_copy_phone_zh", "zh_CN")


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopResequence(HttpCase):
    """The web client's drag and drop in the SOP stages' own list goes
    through Odoo's resequence route, which writes each stage apart."""

    def test_stages_dragged_in_their_list_evaluate_their_deals_once(self):
        playbook = self.env.ref("crm_sales_sop.crm_sop_template_default")
        stages = playbook.stage_ids.sorted("sequence")
        lead = self.env["crm.lead"].create(
            {"name": "Dragged stages deal", "type": "opportunity", "team_id": False}
        )
        self.assertEqual(lead.sop_template_id, playbook)
        self.authenticate("admin", "admin")
        with sop_evaluations(self.env) as calls:
            self.make_jsonrpc_request(
                "/web/dataset/resequence",
                {"model": "crm.sop.stage", "ids": stages.ids[::-1], "offset": 1},
            )
        self.assertGreater(len(stages), 2)
        self.assertEqual(len(calls), 1)
        self.assertIn(lead.id, calls[0])
        self.assertEqual(playbook.stage_ids.sorted("sequence"), stages[::-1])

    def test_a_rep_cannot_reorder_the_stages_through_the_route(self):
        """The inherited route writes as the user, as core's does: a rep
        (no right to write playbooks) is refused and nothing moves."""
        playbook = self.env.ref("crm_sales_sop.crm_sop_template_default")
        stages = playbook.stage_ids.sorted("sequence")
        mail_new_test_user(
            self.env,
            login="sop_resequence_rep",
            groups="sales_team.group_sale_salesman",
        )
        self.authenticate("sop_resequence_rep", "sop_resequence_rep")
        with (
            sop_evaluations(self.env) as calls,
            self.assertRaises(JsonRpcException) as refused,
        ):
            self.make_jsonrpc_request(
                "/web/dataset/resequence",
                {"model": "crm.sop.stage", "ids": stages.ids[::-1], "offset": 1},
            )
        self.assertEqual(str(refused.exception), "odoo.exceptions.AccessError")
        self.assertEqual(calls, [])
        playbook.invalidate_recordset()
        self.assertEqual(playbook.stage_ids.sorted("sequence"), stages)

from lxml import etree

from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged, users

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopPanel(TestSopCommon):
    """What the SOP panel tells a rep about each task: its button, where it
    stands (hint), whether it was left behind, and tasks set aside."""

    def _lead(self, **vals):
        return self.env["crm.lead"].create(self._sop_lead_vals(**vals))

    @users("user_sales_salesman")
    def test_next_step_follows_the_pipeline_stage(self):
        lead = self._lead()
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_customer)
        self.assertFalse(self._task(lead, self.tt_visit).left_behind)
        # the deal moved on to Proposition (no gate): the next step is there,
        # the first stage's open tasks are left behind
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_call)
        self.assertEqual(lead.sop_stage_id, self.sop_stage_pitch)
        visit = self._task(lead, self.tt_visit)
        visit.invalidate_recordset(["left_behind", "hint"])
        self.assertTrue(visit.left_behind)
        self.assertIn("Left behind", visit.hint)
        self.assertFalse(self._task(lead, self.tt_call).left_behind)
        # back to New: the first stage's tasks come first again
        lead.write({"stage_id": self.stage_team1_1.id})
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_customer)

    def _set_aside_in_sql(self, lead, task_templates):
        """Tasks set aside as the set-aside wizard leaves them, then the
        summary re-read by the engine."""
        tasks = lead.sop_task_ids.filtered(
            lambda t: t.task_template_id in task_templates
        )
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE crm_sop_task SET state = 'na' WHERE id = ANY(%s)", [tasks.ids]
        )
        self.env.invalidate_all()
        self.env["crm.sop.engine"]._sop_update_summary(lead)
        lead.invalidate_recordset()

    @users("user_sales_salesman")
    def test_nothing_open_ahead_keeps_the_pipeline_stage(self):
        """A deal in Proposition whose Pitch tasks are out of the way shows
        Pitch (its pipeline stage's SOP stage), not the stage of a task left
        behind; a required task left behind is the next step, an optional
        one never."""
        self.tt_visit.sudo().required = False
        lead = self._lead()
        lead.write({"stage_id": self.stage_team1_2.id})
        self._set_aside_in_sql(lead, self.tt_call + self.tt_budget + self.tt_manual)
        self.assertEqual(lead.sop_stage_id, self.sop_stage_pitch)
        self.assertEqual(lead.sop_next_task_id.task_template_id, self.tt_customer)
        self.assertTrue(lead.sop_next_task_id.left_behind)
        self._set_aside_in_sql(lead, self.tt_customer + self.tt_script)
        self.assertEqual(lead.sop_stage_id, self.sop_stage_pitch)
        self.assertEqual(self._task(lead, self.tt_visit).state, "todo")
        self.assertFalse(lead.sop_next_task_id, "an optional task left behind")

    @users("user_sales_salesman")
    def test_set_aside_optional_task(self):
        lead = self._lead()
        task = self._task(lead, self.tt_manual)
        self.assertTrue(task.can_set_aside)
        action = task.action_sop_mark_na()
        self.assertEqual(action["res_model"], "crm.sop.task.na")
        wizard = Form(self.env["crm.sop.task.na"].with_context(**action["context"]))
        wizard.reason = "Customer already agreed by phone"
        wizard.save().action_confirm()
        self.assertEqual(task.state, "na")
        self.assertEqual(task.hint, "Customer already agreed by phone")
        self.assertEqual(task.button, "restore")
        self.assertIn("set aside", lead.message_ids[0].body)
        self.assertIn("Customer already agreed by phone", lead.message_ids[0].body)
        # counted neither as open nor as done: 0 of 5 applicable tasks done
        self.assertEqual(lead.sop_progress, 0)
        lead.write({"x_sop_companions": "A", "x_sop_decision_makers": "B"})
        self.assertEqual(lead.sop_progress, 20)
        self.assertEqual(task.state, "na", "the system leaves it alone")
        # reversible
        task.action_sop_open()
        self.assertEqual(task.state, "todo")
        self.assertIn("applies again", lead.message_ids[0].body)
        self.assertEqual(lead.sop_progress, 17)

    @users("user_sales_salesman")
    def test_required_task_set_aside_by_manager_only(self):
        self.sop_stage_contact.sudo().gate = "block"
        lead = self._lead()
        visit = self._task(lead, self.tt_visit)
        self.assertFalse(visit.can_set_aside)
        with self.assertRaises(AccessError):
            visit._sop_set_aside("no reason")
        with self.assertRaises(AccessError):
            visit.action_sop_mark_na()
        self.assertEqual(visit.state, "todo")
        # a manager sets it aside: the gate no longer waits for it
        manager_visit = visit.with_user(self.user_sales_manager)
        manager_visit._sop_set_aside("Walk-in, nobody came along")
        with self.assertRaises(UserError):
            self.env["crm.sop.task"]._sop_set_aside("")
        for task_template in (self.tt_customer, self.tt_script):
            self._task(lead, task_template).sudo().write({"state": "na"})
        lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.stage_id, self.stage_team1_2)

    @users("user_sales_salesman")
    def test_hints(self):
        lead = self._lead()
        visit = self._task(lead, self.tt_visit)
        self.assertEqual(visit.hint, "Missing: Companions and Decision Makers")
        lead.x_sop_companions = "Husband"
        visit.invalidate_recordset(["hint"])
        self.assertEqual(visit.hint, "Missing: Decision Makers")
        customer = self._task(lead, self.tt_customer)
        self.assertEqual(customer.hint, "Set the customer first.")
        # a condition reads in words, and opens where to act
        budget = self._task(lead, self.tt_budget)
        self.assertEqual(budget.hint, "Expected Revenue is more than 0")
        self.assertEqual(budget.button, "fill_in")
        action = budget.action_sop_open()
        arch = (
            self.env["crm.lead"]
            .with_context(**action["context"])
            .get_view(view_type="form")["arch"]
        )
        self.assertIn('name="expected_revenue"', arch)
        self.assertNotIn('name="x_sop_companions"', arch)
        # an activity booked says when, and its button opens it
        call = self._task(lead, self.tt_call)
        self.assertEqual(call.button, "schedule")
        activity = lead.activity_schedule(
            activity_type_id=self.activity_type_call.id,
            date_deadline="2026-12-01",
            user_id=self.env.uid,
        )
        call.invalidate_recordset(["hint", "button"])
        self.assertEqual(call.button, "view")
        self.assertIn("Planned for", call.hint)
        self.assertIn(self.env.user.name, call.hint)
        action = call.action_sop_open()
        self.assertEqual(
            (action["res_model"], action["res_id"]), ("mail.activity", activity.id)
        )

    def test_condition_in_words(self):
        TaskTemplate = self.env["crm.sop.task.template"]
        cases = {
            "[('priority', '>=', '2')]": "Priority is at least High",
            "[('tag_ids', '!=', False), ('email_from', 'ilike', '@')]": (
                "Tags is set and Email contains @"
            ),
            "['|', ('expected_revenue', '>', 1000), ('partner_id', '=', False)]": (
                "Expected Revenue is more than 1000 or Customer is empty"
            ),
            f"[('user_id', 'in', [{self.user_sales_salesman.id}])]": (
                f"Salesperson is one of {self.user_sales_salesman.name}"
            ),
        }
        for domain, words in cases.items():
            with self.subTest(domain=domain):
                task_template = TaskTemplate.create(
                    {
                        "name": "Cond",
                        "stage_id": self.sop_stage_pitch.id,
                        "kind": "condition",
                        "domain": domain,
                    }
                )
                self.assertEqual(task_template._sop_condition_words(), words)

    def test_column_tooltip_follows_the_pipeline(self):
        """The column tooltip shows the guidance of the playbook of the
        pipeline being looked at, one paragraph per SOP stage."""
        other_team = self.env["crm.team"].create({"name": "Showroom B"})
        other = self.env["crm.sop.template"].create(
            {
                "name": "Showroom playbook",
                "sequence": 0,
                "team_ids": [(6, 0, other_team.ids)],
                "stage_ids": [
                    (
                        0,
                        0,
                        {
                            "name": "Greeting",
                            "crm_stage_id": self.stage_gen_1.id,
                            "guidance": "<p>Greet within a minute.</p>",
                        },
                    )
                ],
            }
        )
        self.assertTrue(other)
        Stage = self.env["crm.stage"]
        own = Stage.with_context(default_team_id=self.sales_team_1.id).browse(
            self.stage_team1_1.id
        )
        self.assertEqual(own.sop_guidance, "Contact: Get to know the customer.")
        showroom = Stage.with_context(default_team_id=other_team.id).browse(
            self.stage_gen_1.id
        )
        self.assertIn("Greeting: Greet within a minute.", showroom.sop_guidance)
        self.assertNotIn("Contact", showroom.sop_guidance)
        # the tooltip's title is in the user's language
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["crm_sales_sop"], ["zh_CN"])
        arch = (
            self.env["crm.lead"]
            .with_context(lang="zh_CN")
            .get_view(self.env.ref("crm.crm_case_kanban_view_leads").id, "kanban")[
                "arch"
            ]
        )
        self.assertIn("销售SOP", arch)

    @users("user_sales_salesman")
    def test_next_step_button(self):
        lead = self._lead(partner_id=self.customer.id)
        action = lead.action_sop_next()
        self.assertEqual(action["res_model"], "res.partner")
        self.assertEqual(action["context"]["sop_fill_view_ref"], self.tt_customer.id)
        for task in lead.sop_task_ids:
            task.sudo().state = "done"
        self.env["crm.sop.engine"]._sop_update_summary(lead)
        with self.assertRaises(UserError):
            lead.action_sop_next()

    def test_sop_filters_are_their_own_group(self):
        """Stalled, SOP Not Started and SOP Complete sit in their own group
        of the pipeline's search view: with My Pipeline on, they narrow it
        (AND) instead of adding every deal (OR)."""
        arch = self.env["crm.lead"].get_views([(False, "search")])["views"]["search"][
            "arch"
        ]
        root = etree.fromstring(arch)
        names = [
            "|" if node.tag == "separator" else node.get("name")
            for node in root.iter("filter", "separator")
        ]
        groups = "/".join(names).split("|")
        mine = next(g for g in groups if "assigned_to_me" in g.split("/"))
        ours = next(g for g in groups if "sop_stalled" in g.split("/"))
        self.assertNotEqual(mine, ours)
        self.assertEqual(
            set(filter(None, ours.split("/"))),
            {"sop_not_started", "sop_complete", "sop_stalled"},
        )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopPanelView(TestSopCommon):
    """Issue 15, item 11: "View" on a done task shows its data, read-only."""

    def _arch(self, action):
        """The form the dialog of ``action`` gets, as the rep's web client
        asks for it (only the *_view_ref keys of the context reach get_views)."""
        record = self.env[action["res_model"]].with_context(**action["context"])
        return etree.fromstring(
            record.get_views([(False, "form")])["views"]["form"]["arch"]
        )

    @users("user_sales_salesman")
    def test_view_opens_read_only(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        task = self._task(lead, self.tt_visit)
        self.assertEqual(task.button, "fill_in")
        form = self._arch(task.action_sop_open())
        self.assertNotEqual(form.get("edit"), "0")
        self.assertFalse(form.xpath("//footer"))
        self.assertTrue(form.xpath("//field[@name='x_sop_companions']"))
        lead.write({"x_sop_companions": "Her sister", "x_sop_decision_makers": "Both"})
        task.invalidate_recordset(["button"])
        self.assertEqual((task.state, task.button), ("done", "view"))
        action = task.action_sop_open()
        self.assertEqual((action["res_model"], action["res_id"]), ("crm.lead", lead.id))
        form = self._arch(action)
        # the same fields, to read: no edit, a Close button
        self.assertEqual(form.get("edit"), "0")
        self.assertTrue(form.xpath("//field[@name='x_sop_companions']"))
        self.assertEqual(
            [b.get("special") for b in form.xpath("//footer/button")], ["cancel"]
        )
        # a customer task too
        lead.partner_id = self.customer
        self.customer.sudo().write(
            {"x_sop_gender": "female", "x_sop_age_range": "35_44"}
        )
        customer_task = self._task(lead, self.tt_customer)
        customer_task.invalidate_recordset(["button"])
        self.assertEqual(customer_task.button, "view")
        form = self._arch(customer_task.action_sop_open())
        self.assertEqual(form.get("edit"), "0")
        self.assertTrue(form.xpath("//field[@name='x_sop_gender']"))

    def test_view_key_is_checked_like_the_fill_in_key(self):
        # another value than "<id>" or "<id>:view": the normal form
        Lead = self.env["crm.lead"].with_user(self.user_sales_salesman)
        for value in (f"{self.tt_visit.id}:edit", f"x{self.tt_visit.id}:view", ":view"):
            with self.subTest(value=value):
                arch = Lead.with_context(sop_fill_view_ref=value).get_views(
                    [(False, "form")]
                )["views"]["form"]["arch"]
                self.assertIn('name="expected_revenue"', arch)

    @users("user_sales_salesman")
    def test_done_on_only_on_done_tasks(self):
        """ "Done On" and "Done By" show on done tasks only: a task set aside
        (or reopened) keeps its first completion's date, which it must not
        show as if it were done (issue 15, item 11)."""
        archs = [
            self.env["crm.sop.task"].get_views([(False, "list"), (False, "form")])[
                "views"
            ],
            self.env["crm.lead"].get_views([(False, "form")])["views"],
        ]
        nodes = [
            node
            for views in archs
            for view in views.values()
            for node in etree.fromstring(view["arch"]).xpath(
                "//field[@name='date_done' or @name='done_user_id']"
            )
        ]
        # the task list and form, the panel's list (the kanban shows neither)
        self.assertGreaterEqual(len(nodes), 6)
        for node in nodes:
            with self.subTest(field=node.get("name")):
                self.assertEqual(node.get("invisible"), "state != 'done'")

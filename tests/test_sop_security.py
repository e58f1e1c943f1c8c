from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged, users

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopSecurity(TestSopCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lead_mine = cls.env["crm.lead"].create(cls._sop_lead_vals(name="Mine"))
        cls.lead_other = cls.env["crm.lead"].create(
            cls._sop_lead_vals(name="Other's", user_id=cls.user_sales_leads.id)
        )
        cls.lead_unassigned = cls.env["crm.lead"].create(
            cls._sop_lead_vals(name="Unassigned", user_id=False)
        )

    @users("user_sales_salesman")
    def test_rep_sees_tasks_of_the_leads_they_see(self):
        Task = self.env["crm.sop.task"]
        visible_leads = self.env["crm.lead"].search(
            [
                (
                    "id",
                    "in",
                    (self.lead_mine + self.lead_other + self.lead_unassigned).ids,
                )
            ]
        )
        self.assertEqual(visible_leads, self.lead_mine + self.lead_unassigned)
        tasks = Task.search(
            [
                (
                    "lead_id",
                    "in",
                    (self.lead_mine + self.lead_other + self.lead_unassigned).ids,
                )
            ]
        )
        self.assertEqual(tasks.lead_id, visible_leads)
        with self.assertRaises(AccessError):
            Task.browse(self.lead_other.sop_task_ids.ids).read(["state"])

    @users("user_sales_salesman")
    def test_rep_cannot_forge_task_state(self):
        task = self._task(self.lead_mine.with_user(self.env.user), self.tt_visit)
        with self.assertRaises(AccessError):
            task.write({"state": "done"})
        with self.assertRaises(AccessError):
            task.unlink()
        with self.assertRaises(AccessError):
            self.env["crm.sop.task"].create(
                {"lead_id": self.lead_mine.id, "task_template_id": self.tt_manual.id}
            )

    @users("user_sales_salesman")
    def test_rep_cannot_reach_the_lead_scoring_increments(self):
        """The increments a close leaves to the job are the engine's: a rep
        can neither read, create, write nor delete one, while the rep's own
        close keeps them (the engine's sudo)."""
        Increment = self.env["crm.sop.scoring.increment"]
        values = {"variable": "stage_id", "value": "1", "won_count": 99, "step": 1}
        with self.assertRaises(AccessError):
            Increment.create(values)
        with self.assertRaises(AccessError):
            Increment.search([])
        Increment._sop_defer(
            {self.sales_team_1.id: {"stage_id": {"1": {"won": 1, "lost": 0}}}}, 1
        )
        kept = Increment.sudo().search([("team_id", "=", self.sales_team_1.id)])
        self.assertEqual(kept.mapped("won_count"), [1.0])
        for method, args in (("write", (values,)), ("unlink", ()), ("read", ())):
            with self.subTest(method=method), self.assertRaises(AccessError):
                getattr(kept.with_user(self.env.user), method)(*args)

    @users("user_sales_salesman")
    def test_rep_cannot_tick_a_task_of_another_rep(self):
        task = self._task(self.lead_other, self.tt_manual).with_user(self.env.user)
        with self.assertRaises(AccessError):
            task.action_sop_mark_done()
        self.assertEqual(task.sudo().state, "todo")
        with self.assertRaises(AccessError):
            task.action_sop_open()

    @users("user_sales_leads")
    def test_all_leads_user_sees_all_tasks(self):
        tasks = self.env["crm.sop.task"].search(
            [("lead_id", "in", (self.lead_mine + self.lead_other).ids)]
        )
        self.assertEqual(tasks.lead_id, self.lead_mine + self.lead_other)
        # and may tick the manual task of a lead they can write
        task = self._task(self.lead_mine.with_user(self.env.user), self.tt_manual)
        task.action_sop_mark_done()
        self.assertEqual(task.state, "done")
        self.assertEqual(task.done_user_id, self.env.user)

    def test_task_follows_lead_reassignment(self):
        self.lead_other.user_id = self.user_sales_salesman
        self.assertEqual(self.lead_other.sop_task_ids.user_id, self.user_sales_salesman)
        tasks = (
            self.env["crm.sop.task"]
            .with_user(self.user_sales_salesman)
            .search([("lead_id", "=", self.lead_other.id)])
        )
        self.assertEqual(len(tasks), 6)

    def test_multi_company(self):
        company_2 = self.env["res.company"].create({"name": "Branch 2"})
        lead_c2 = self.env["crm.lead"].create(
            self._sop_lead_vals(
                name="Branch lead",
                company_id=company_2.id,
                user_id=False,
                team_id=False,
            )
        )
        self.assertTrue(lead_c2.sop_task_ids)
        self.assertEqual(lead_c2.sop_task_ids.company_id, company_2)
        manager = self.user_sales_manager
        self.assertNotIn(company_2, manager.company_ids)
        tasks = (
            self.env["crm.sop.task"]
            .with_user(manager)
            .search([("lead_id", "=", lead_c2.id)])
        )
        self.assertFalse(tasks)
        # a playbook of another company does not apply here
        playbook_c2 = self.env["crm.sop.template"].create(
            {"name": "Branch playbook", "company_id": company_2.id, "sequence": 0}
        )
        self.assertFalse(
            self.env["crm.sop.template"]
            .with_user(manager)
            .search([("id", "=", playbook_c2.id)])
        )
        lead_c1 = self.env["crm.lead"].create(
            self._sop_lead_vals(team_id=False, user_id=False)
        )
        self.assertNotEqual(lead_c1.sop_template_id, playbook_c2)
        lead_c2b = self.env["crm.lead"].create(
            self._sop_lead_vals(
                name="B2", company_id=company_2.id, team_id=False, user_id=False
            )
        )
        self.assertEqual(lead_c2b.sop_template_id, playbook_c2)

    @users("user_sales_salesman")
    def test_rep_reads_panel_and_card_fields(self):
        lead = self.lead_mine.with_user(self.env.user)
        lead.invalidate_recordset()
        data = lead.web_read(
            {
                "sop_progress": {},
                "sop_stage_id": {"fields": {"display_name": {}}},
                "sop_next_task_id": {"fields": {"display_name": {}}},
                "sop_stage_guidance": {},
                "sop_task_ids": {
                    "fields": {
                        "name": {},
                        "state": {},
                        "kind": {},
                        "stage_id": {"fields": {"display_name": {}}},
                    }
                },
            }
        )[0]
        self.assertEqual(len(data["sop_task_ids"]), 6)
        self.assertEqual(data["sop_next_task_id"]["display_name"], "Customer profile")

    @users("user_sales_salesman")
    def test_rep_cannot_set_aside_or_open_tasks_of_another_rep(self):
        """Through the wizard or the buttons, a rep reaches only the tasks of
        the opportunities they may write."""
        task = self._task(self.lead_other, self.tt_manual)
        wizard = self.env["crm.sop.task.na"].create(
            {"task_ids": [(6, 0, task.ids)], "reason": "not mine"}
        )
        # read back, the wizard holds none of them (record rules filter the
        # many2many): confirming changes nothing
        wizard.invalidate_recordset()
        self.assertFalse(wizard.task_ids)
        wizard.action_confirm()
        self.assertEqual(task.sudo().state, "todo")
        for method in ("action_sop_restore", "action_sop_mark_na", "action_sop_open"):
            with self.subTest(method=method), self.assertRaises(AccessError):
                getattr(task.with_user(self.env.user), method)()
        with self.assertRaises(AccessError):
            self.lead_other.with_user(self.env.user).action_sop_next()


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopEngineFields(TestSopCommon):
    """Only the engine sets a lead's playbook, SOP summary and tasks: a rep
    who sends them through the API (to skip a gate, fake progress, or read
    another company's configuration through the lead) is refused."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sop_stage_contact.gate = "block"
        cls.lead = cls.env["crm.lead"].create(cls._sop_lead_vals(name="Gated"))
        cls.company_2 = cls.env["res.company"].create({"name": "Other company"})
        cls.playbook_2 = cls.env["crm.sop.template"].create(
            {
                "name": "Secret playbook",
                "company_id": cls.company_2.id,
                "stage_ids": [
                    (
                        0,
                        0,
                        {
                            "name": "Secret stage",
                            "guidance": "<p>Secret guidance</p>",
                            "task_template_ids": [
                                (0, 0, {"name": "Secret task", "kind": "manual"})
                            ],
                        },
                    )
                ],
            }
        )
        cls.lead_2 = cls.env["crm.lead"].create(
            {
                "name": "Other company's deal",
                "type": "opportunity",
                "company_id": cls.company_2.id,
                "user_id": False,
                "team_id": False,
            }
        )

    def _snapshot(self, lead):
        lead.invalidate_recordset()
        return lead.sudo().read(
            [
                "sop_template_id",
                "sop_stage_id",
                "sop_progress",
                "sop_next_task_id",
                "sop_stage_date",
                "sop_stalled",
                "sop_progress_band",
                "sop_forward_date",
                "sop_gate_held",
            ]
        )

    @users("user_sales_salesman")
    def test_rep_cannot_write_engine_fields(self):
        lead = self.lead.with_user(self.env.user)
        before = self._snapshot(lead)
        forged = [
            {"sop_template_id": False},
            {"sop_template_id": self.playbook_2.id},
            {"sop_progress": 100},
            {"sop_stage_id": self.playbook_2.sudo().stage_ids.id},
            {"sop_next_task_id": self.lead_2.sudo().sop_task_ids.id},
            {"sop_task_ids": [(5, 0, 0)]},
            {"sop_task_ids": [(1, lead.sop_task_ids[0].id, {"state": "done"})]},
            # a stalled flag cleared, a SOP that "moved", a band to feed lead
            # scoring: the engine's too
            {"sop_stalled": True},
            {"sop_stage_date": "2020-01-01 00:00:00"},
            {"sop_progress_band": "100"},
            # the stall clock and the card's gate lock
            {"sop_forward_date": "2030-01-01 00:00:00"},
            {"sop_gate_held": False},
        ]
        for vals in forged:
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                lead.write(vals)
        self.assertEqual(self._snapshot(lead), before)
        # so the gate still holds
        with self.assertRaises(UserError):
            lead.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.stage_id, self.stage_team1_1)

    @users("user_sales_salesman")
    def test_rep_cannot_create_with_engine_fields(self):
        Lead = self.env["crm.lead"]
        for vals in [
            {"sop_template_id": False},
            {"sop_progress": 100},
            {"sop_stage_id": self.playbook_2.sudo().stage_ids.id},
            {"sop_progress_band": "100"},
            {"sop_stalled": True},
            {"sop_stage_date": "2020-01-01 00:00:00"},
        ]:
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                Lead.create(self._sop_lead_vals(**vals))
        # import (load) goes through create
        result = Lead.load(["name", "sop_progress"], [["Imported", "100"]])
        self.assertFalse(result["ids"])
        self.assertTrue(result["messages"])
        # defaults from the context (a kanban grouped by SOP stage) are ignored
        lead = Lead.with_context(
            default_sop_stage_id=self.playbook_2.sudo().stage_ids.id,
            default_sop_progress=100,
            default_sop_template_id=self.playbook_2.id,
            default_sop_progress_band="100",
            default_sop_stalled=True,
        ).create(self._sop_lead_vals(name="Defaults"))
        self.assertEqual(lead.sop_template_id, self.playbook)
        self.assertEqual(lead.sop_stage_id, self.sop_stage_contact)
        self.assertEqual(lead.sop_progress, 0)
        self.assertEqual(lead.sop_progress_band, "0")
        self.assertFalse(lead.sop_stalled)
        # copies take their own tasks, not the original's summary
        self._task(self.lead, self.tt_manual).sudo().action_sop_mark_done()
        copy = self.lead.with_user(self.env.user).copy()
        self.assertEqual(copy.sop_progress, 0)
        self.assertEqual(self._task(copy, self.tt_manual).state, "todo")

    def test_nobody_writes_engine_fields(self):
        """Not managers either, nor code running as superuser."""
        for env in (self.env, self.env(user=self.user_sales_manager)):
            with self.subTest(user=env.user.name), self.assertRaises(AccessError):
                self.lead.with_env(env).write({"sop_progress": 100})
        with self.assertRaises(AccessError):
            self._task(self.lead, self.tt_manual).with_user(
                self.user_sales_manager
            ).write({"state": "done"})
        self.assertEqual(self._task(self.lead, self.tt_manual).state, "todo")


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopFillViewAccess(TestSopCommon):
    """The "Fill in" dialog is built from a task template only for a user who
    may read it; anybody else asking with its id gets the normal form."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_2 = cls.env["res.company"].create({"name": "Other company"})
        cls.tt_secret = cls.env["crm.sop.task.template"].create(
            {
                "name": "Secret visit data",
                "guidance": "<p>Secret guidance</p>",
                "kind": "fields",
                "field_ids": [(6, 0, cls.field_lead_companions.ids)],
                "stage_id": cls.env["crm.sop.stage"]
                .create(
                    {
                        "name": "Secret stage",
                        "template_id": cls.env["crm.sop.template"]
                        .create({"name": "Secret", "company_id": cls.company_2.id})
                        .id,
                    }
                )
                .id,
            }
        )
        cls.user_portal = mail_new_test_user(
            cls.env, login="sop_portal", groups="base.group_portal"
        )
        cls.user_internal = mail_new_test_user(
            cls.env, login="sop_internal", groups="base.group_user"
        )

    def _form(self, user, model, task_template):
        return (
            self.env[model]
            .with_user(user)
            .with_context(sop_fill_view_ref=task_template.id)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )

    def test_fill_view_only_for_readers(self):
        # the rep of the playbook's company gets the dialog
        arch = self._form(self.user_sales_salesman, "crm.lead", self.tt_visit)
        self.assertIn('name="x_sop_companions"', arch)
        self.assertNotIn('name="expected_revenue"', arch)
        # another company's manager, a portal user, an internal user without
        # sales rights: the normal form, nothing of the task
        for user in (self.user_sales_manager, self.user_portal, self.user_internal):
            for model in ("crm.lead", "res.partner"):
                with self.subTest(user=user.login, model=model):
                    try:
                        arch = self._form(user, model, self.tt_secret)
                    except AccessError:
                        continue  # no access to the model's views at all
                    self.assertNotIn("Secret", arch)
        # the dialog of a readable template on the wrong model: normal form
        arch = self._form(self.user_sales_salesman, "res.partner", self.tt_visit)
        self.assertNotIn("Visit data", arch)
        # built for one user, never served from the cache to another
        self.user_sales_manager.company_ids += self.company_2
        arch = self._form(self.user_sales_manager, "crm.lead", self.tt_secret)
        self.assertIn("Secret guidance", arch)
        arch = self._form(self.user_sales_salesman, "crm.lead", self.tt_secret)
        self.assertNotIn("Secret", arch)
        # garbage in the key
        for value in ("abc", "1; DROP", -1, 10**12):
            with self.subTest(value=value):
                arch = (
                    self.env["crm.lead"]
                    .with_user(self.user_sales_salesman)
                    .with_context(sop_fill_view_ref=value)
                    .get_views([(False, "form")])["views"]["form"]["arch"]
                )
                self.assertIn('name="expected_revenue"', arch)


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopOtherCompany(TestSopCommon):
    """A rep of one company reaches nothing of another company's SOP through
    what a client can send: context keys, buttons, the set-aside wizard."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_2 = cls.env["res.company"].create({"name": "Branch B"})
        cls.team_2 = cls.env["crm.team"].create(
            {"name": "Branch B team", "company_id": cls.company_2.id}
        )
        cls.playbook_2 = cls.env["crm.sop.template"].create(
            {
                "name": "Branch B playbook",
                "sequence": 0,
                "company_id": cls.company_2.id,
                "team_ids": [(6, 0, cls.team_2.ids)],
                "stage_ids": [
                    (
                        0,
                        0,
                        {
                            "name": "Branch stage",
                            "crm_stage_id": cls.stage_gen_1.id,
                            "guidance": "<p>Branch secret guidance</p>",
                            "task_template_ids": [
                                (0, 0, {"name": "Branch task", "kind": "manual"})
                            ],
                        },
                    )
                ],
            }
        )
        cls.lead_2 = cls.env["crm.lead"].create(
            {
                "name": "Branch deal",
                "type": "opportunity",
                "company_id": cls.company_2.id,
                "team_id": cls.team_2.id,
                "user_id": False,
            }
        )

    @users("user_sales_salesman", "user_sales_manager")
    def test_evaluation_queue_is_the_engines(self):
        """The deals queued for the engine's evaluation: neither a rep nor a
        sales manager reads them or queues one (another company's deal, or
        their own), as a client could ask over RPC."""
        Queue = self.env["crm.sop.evaluation.queue"].sudo()
        Queue._sop_add([self.lead_2.id])
        queued = Queue.search([("lead_id", "=", self.lead_2.id)])
        own = self.env["crm.lead"].sudo().create(self._sop_lead_vals())
        user_queue = self.env["crm.sop.evaluation.queue"].with_user(self.env.user)
        for call in (
            lambda: user_queue.search([("lead_id", "=", self.lead_2.id)]),
            lambda: queued.with_user(self.env.user).read(["lead_id"]),
            lambda: user_queue.create({"lead_id": own.id}),
            lambda: user_queue.create({"lead_id": self.lead_2.id}),
            lambda: queued.with_user(self.env.user).write({"lead_id": own.id}),
            lambda: queued.with_user(self.env.user).unlink(),
        ):
            with self.subTest(call=call), self.assertRaises(AccessError):
                call()
        self.assertEqual(Queue.search([]).lead_id, self.lead_2)

    @users("user_sales_salesman")
    def test_column_tooltip_of_another_company_team(self):
        stage = (
            self.env["crm.stage"]
            .with_context(default_team_id=self.team_2.id)
            .browse(self.stage_gen_1.id)
        )
        self.assertNotIn("Branch", stage.sop_guidance or "")

    @users("user_sales_salesman")
    def test_tasks_of_another_company(self):
        task = self.lead_2.sop_task_ids.with_user(self.env.user)
        self.assertEqual(len(task), 1)
        for method in ("action_sop_open", "action_sop_mark_na", "action_sop_restore"):
            with self.subTest(method=method), self.assertRaises(AccessError):
                getattr(task, method)()
        wizard = self.env["crm.sop.task.na"].create(
            {"task_ids": [(6, 0, task.ids)], "reason": "not ours"}
        )
        wizard.invalidate_recordset()
        self.assertFalse(wizard.task_ids)
        wizard.action_confirm()
        self.assertEqual(task.sudo().state, "todo")
        with self.assertRaises(AccessError):
            self.lead_2.with_user(self.env.user).action_sop_next()
        # nor write its summary onto an own lead to read it
        own = self.env["crm.lead"].create(self._sop_lead_vals())
        with self.assertRaises(AccessError):
            own.write({"sop_next_task_id": task.id})

    @users("user_sales_salesman")
    def test_scripts_and_prediction_of_another_company(self):
        """The scripts, the uplift and the Scripts menu of another company's
        deal are refused, whatever script id is sent; nothing is recorded."""
        script = self.env.ref("crm_sales_sop.mail_template_sop_welcome")
        lead = self.lead_2.with_user(self.env.user)
        for call in (
            lambda: lead.sop_get_scripts(),
            lambda: lead.sop_render_script(script.id),
            lambda: lead.action_sop_send_script(script.id, channel="copy"),
            lambda: lead.action_sop_copy_script(script.id),
            lambda: lead.action_sop_edit_script(script.id),
            lambda: lead.get_sop_uplift(),
        ):
            with self.subTest(call=call), self.assertRaises(AccessError):
                call()
        self.assertFalse(
            self.env["crm.sop.script.send"]
            .sudo()
            .search_count([("lead_id", "=", self.lead_2.id)])
        )
        # nor the history and analyses of the deals
        for model in ("crm.sop.stage.log", "crm.sop.stage.report"):
            with self.subTest(model=model), self.assertRaises(AccessError):
                self.env[model].search([("lead_id", "=", self.lead_2.id)])

    def _sop_snapshot_b(self):
        """What company B's deal follows: playbook, tasks, summary."""
        lead = self.lead_2.sudo()
        lead.invalidate_recordset()
        return (
            lead.sop_template_id,
            lead.with_context(active_test=False).sop_task_ids.mapped(
                lambda t: (t.task_template_id.id, t.state, t.active)
            ),
            lead.sop_progress,
            lead.sop_next_task_id,
        )

    @users("user_sales_manager")
    def test_manager_cannot_move_configuration_into_another_company(self):
        """A sales manager of company A moves nothing of theirs into company
        B and links nothing of B's: the playbook's company, a SOP stage's
        playbook, a task's SOP stage, a shared playbook's teams. Each write
        is refused and nothing changed, on either side."""
        self.assertNotIn(self.company_2, self.env.user.company_ids)
        playbook = self.playbook.with_user(self.env.user)
        stage = self.sop_stage_contact.with_user(self.env.user)
        task_template = self.tt_visit.with_user(self.env.user)
        stage_b = self.playbook_2.sudo().stage_ids
        before_b = self._sop_snapshot_b()
        shared = self.env["crm.sop.template"].create(
            {
                "name": "Shared",
                "sequence": 50,
                "team_ids": [(6, 0, self.sales_team_1.ids)],
            }
        )
        attempts = [
            (playbook, {"company_id": self.company_2.id}),
            (stage, {"template_id": self.playbook_2.id}),
            (task_template, {"stage_id": stage_b.id}),
            (shared, {"team_ids": [(6, 0, self.team_2.ids)], "sequence": -1}),
            (shared, {"team_ids": [(4, self.team_2.id)]}),
        ]
        for record, vals in attempts:
            before = record.sudo().read(list(vals))
            with self.subTest(model=record._name, vals=vals):
                with self.assertRaises(AccessError):
                    record.write(vals)
                record.invalidate_recordset()
                self.assertEqual(record.sudo().read(list(vals)), before)
        self.assertEqual(self._sop_snapshot_b(), before_b)
        # nor created there
        with self.assertRaises(AccessError):
            self.env["crm.sop.stage"].create(
                {"name": "Planted", "template_id": self.playbook_2.id}
            )
        with self.assertRaises(AccessError):
            self.env["crm.sop.task.template"].create(
                {"name": "Planted", "kind": "manual", "stage_id": stage_b.id}
            )
        self.assertEqual(self._sop_snapshot_b(), before_b)
        # their own configuration stays theirs to edit
        shared.write({"sequence": 40, "team_ids": [(4, self.sales_team_1.id)]})
        stage.write({"name": "Contact (edited)"})

    def test_configuration_keeps_its_company(self):
        """Even for who works in both companies: a playbook of company A
        cannot follow company B's team (core's company consistency)."""
        self.user_sales_manager.write({"company_ids": [(4, self.company_2.id)]})
        playbook = self.playbook.with_user(self.user_sales_manager).with_context(
            allowed_company_ids=[self.company_main.id, self.company_2.id]
        )
        playbook.sudo().company_id = self.company_main
        before_b = self._sop_snapshot_b()
        for command in ((4, self.team_2.id), (6, 0, self.team_2.ids)):
            with self.subTest(command=command), self.assertRaises(UserError):
                playbook.write({"team_ids": [command]})
        self.assertEqual(playbook.sudo().team_ids, self.sales_team_1)
        self.assertEqual(self._sop_snapshot_b(), before_b)


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopActivityForged(TestSopCommon):
    """An activity task completes only when an activity of its type is marked
    done on the deal: a chatter message carrying the activity type (posted by
    the rep, by another rep, on behalf of anybody by a controller, or created
    directly) completes nothing. The ledger of activities done is the
    engine's."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lead = cls.env["crm.lead"].create(cls._sop_lead_vals(name="Forged"))
        cls.user_portal = mail_new_test_user(
            cls.env, login="sop_portal", groups="base.group_portal"
        )

    def _snapshot(self):
        self.env.invalidate_all()
        task = self._task(self.lead, self.tt_call).sudo()
        return (
            task.read(["state", "completion", "date_done", "done_user_id"]),
            self.lead.sudo().sop_progress,
            self.env["crm.sop.activity.done"].sudo().search_count([]),
        )

    def _evaluate(self, user):
        """A change of a watched field: the engine evaluates every task of
        the deal (as the rep would trigger it)."""
        self.lead.with_user(user).write(
            {"x_sop_companions": f"{user.name} {self.lead.x_sop_companions or ''}"}
        )

    def test_messages_do_not_complete_activity_tasks(self):
        call = self.activity_type_call.id
        before = self._snapshot()
        self.assertEqual(before[0][0]["state"], "todo")
        forgeries = {
            "rep posts with the type": (
                self.user_sales_salesman,
                lambda lead: lead.message_post(
                    body="I called", mail_activity_type_id=call
                ),
            ),
            "rep posts as the activities subtype": (
                self.user_sales_salesman,
                lambda lead: lead.message_post(
                    body="Call done",
                    mail_activity_type_id=call,
                    subtype_xmlid="mail.mt_activities",
                ),
            ),
            "rep creates the message": (
                self.user_sales_salesman,
                lambda lead: (
                    self.env["mail.message"]
                    .with_user(lead.env.user)
                    .create(
                        {
                            "model": "crm.lead",
                            "res_id": lead.id,
                            "body": "Call done",
                            "message_type": "comment",
                            "mail_activity_type_id": call,
                            "subtype_id": self.env.ref("mail.mt_activities").id,
                        }
                    )
                ),
            ),
            "another rep posts": (
                self.user_sales_leads,
                lambda lead: lead.message_post(
                    body="Called for you",
                    mail_activity_type_id=call,
                    subtype_xmlid="mail.mt_activities",
                ),
            ),
            # what a controller posting for a portal user or an incoming mail
            # would create: any author, any values
            "posted on behalf of a portal user": (
                self.user_sales_salesman,
                lambda lead: lead.sudo().message_post(
                    body="Call me maybe",
                    author_id=self.user_portal.partner_id.id,
                    mail_activity_type_id=call,
                    subtype_xmlid="mail.mt_activities",
                    message_type="comment",
                ),
            ),
        }
        for label, (user, forge) in forgeries.items():
            with self.subTest(forgery=label):
                forge(self.lead.with_user(user))
                self._evaluate(user)
                self.assertEqual(self._snapshot(), before)
        # the portal user cannot even post on the deal
        with self.assertRaises(AccessError):
            self.lead.with_user(self.user_portal).message_post(
                body="Done", mail_activity_type_id=call
            )
        with self.assertRaises(AccessError):
            self.env["mail.message"].with_user(self.user_portal).create(
                {
                    "model": "crm.lead",
                    "res_id": self.lead.id,
                    "body": "Done",
                    "mail_activity_type_id": call,
                }
            )
        self.assertEqual(self._snapshot(), before)
        # the messages are there: only the product's own record counts
        self.assertEqual(
            self.env["mail.message"].search_count(
                [
                    ("model", "=", "crm.lead"),
                    ("res_id", "=", self.lead.id),
                    ("mail_activity_type_id", "=", call),
                ]
            ),
            len(forgeries),
        )
        # marking a real activity of the type done completes it
        self.lead.with_user(self.user_sales_salesman).activity_schedule(
            activity_type_id=call, user_id=self.user_sales_salesman.id
        ).action_feedback("Called, she comes Saturday")
        task = self._task(self.lead, self.tt_call)
        self.assertEqual(task.state, "done")
        self.assertEqual(task.completion, "auto")
        self.assertEqual(task.done_user_id, self.user_sales_salesman)

    def test_nobody_writes_the_ledger(self):
        """Reps, managers, administrators and superuser code are refused; the
        rows stay as the engine wrote them."""
        self.lead.with_user(self.user_sales_salesman).activity_schedule(
            activity_type_id=self.activity_type_call.id,
            user_id=self.user_sales_salesman.id,
        ).action_feedback("Called")
        Ledger = self.env["crm.sop.activity.done"]
        row = Ledger.search([("lead_id", "=", self.lead.id)])
        self.assertEqual(len(row), 1)
        self.assertEqual(row.activity_type_id, self.activity_type_call)
        self.assertEqual(row.user_id, self.user_sales_salesman)
        before = row.read()
        rows_before = Ledger.search([])
        other = self.env["crm.lead"].create(self._sop_lead_vals(name="Not called"))
        vals = {
            "lead_id": other.id,
            "activity_type_id": self.activity_type_call.id,
            "date": "2026-01-01 00:00:00",
        }
        admin = self.env.ref("base.user_admin")
        for env in (
            self.env(user=self.user_sales_salesman),
            self.env(user=self.user_sales_manager),
            self.env(user=admin),
            self.env(su=True),
        ):
            ledger = Ledger.with_env(env)
            with self.subTest(user=env.user.name, su=env.su):
                with self.assertRaises(AccessError):
                    ledger.create(vals)
                with self.assertRaises(AccessError):
                    ledger.browse(row.id).write({"lead_id": other.id})
                with self.assertRaises(AccessError):
                    ledger.browse(row.id).unlink()
                with self.assertRaises(AccessError):
                    ledger.browse(row.id).copy({"lead_id": other.id})
        # import goes through create
        result = Ledger.with_user(self.user_sales_manager).load(
            ["lead_id/.id", "activity_type_id/.id", "date"],
            [[str(other.id), str(self.activity_type_call.id), "2026-01-01 00:00:00"]],
        )
        self.assertFalse(result["ids"])
        self.env.invalidate_all()
        self.assertEqual(Ledger.search([]), rows_before)
        self.assertEqual(row.read(), before)
        self.assertEqual(self._task(other, self.tt_call).state, "todo")
        # a rep reads the rows of their own deals only
        lead_other = self.env["crm.lead"].create(
            self._sop_lead_vals(name="Other's", user_id=self.user_sales_leads.id)
        )
        lead_other.with_user(self.user_sales_leads).activity_schedule(
            activity_type_id=self.activity_type_call.id,
            user_id=self.user_sales_leads.id,
        ).action_feedback("Called")
        self.assertEqual(
            Ledger.with_user(self.user_sales_salesman).search([]).lead_id, self.lead
        )

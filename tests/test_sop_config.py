from psycopg2 import IntegrityError

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, new_test_user, tagged, users
from odoo.tools import mute_logger

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopConfig(TestSopCommon):
    @users("user_sales_manager")
    def test_bad_domains_refused(self):
        count = self.env["crm.sop.task.template"].search_count([])
        bad_domains = [
            "",
            "not a domain",
            "[('expected_revenue', '>', 0)",
            "__import__('os').system('echo pwned')",
            "[('expected_revenue', '>', 10**10**8)]",
            "{'a': 1}",
            "[]",
            "[('no_such_field', '=', 1)]",
            "[('partner_id.name', '=', 'x')]",
            "[('expected_revenue', 'like like', 0)]",
            "[('expected_revenue', '>')]",
            "['|', ('expected_revenue', '>', 0)]",
            "[('expected_revenue', '>', 'abc')]",
            "[('date_deadline', '>', 'yesterday')]",
            "[(1, 2, 3)]",
            "[('expected_revenue', '>', 0)]" + " " * 5000,
        ]
        for domain in bad_domains:
            with self.subTest(domain=domain[:60]):
                with self.assertRaises(ValidationError):
                    self._condition(domain)
        self.assertEqual(self.env["crm.sop.task.template"].search_count([]), count)

    @users("user_sales_manager")
    def test_good_domains_accepted(self):
        for domain in [
            "[('expected_revenue', '>', 0)]",
            "['|', ('priority', 'in', ['2', '3']), ('tag_ids', '!=', False)]",
            "[('stage_id.is_won', '=', True)]".replace(
                "stage_id.is_won", "probability"
            ),
        ]:
            with self.subTest(domain=domain):
                self.assertTrue(self._condition(domain))

    @users("user_sales_manager")
    def test_bad_write_changes_nothing(self):
        with self.assertRaises(ValidationError):
            self.tt_budget.write({"domain": "[('nope', '=', 1)]"})
        self.tt_budget.invalidate_recordset()
        self.assertEqual(self.tt_budget.domain, "[('expected_revenue', '>', 0)]")

    @users("user_sales_manager")
    def test_fields_of_another_model_refused(self):
        TaskTemplate = self.env["crm.sop.task.template"]
        vals = {"name": "Bad", "stage_id": self.sop_stage_contact.id, "kind": "fields"}
        # a partner field on an opportunity-scope task
        with self.assertRaises(ValidationError):
            TaskTemplate.create(
                {**vals, "field_ids": [(6, 0, self.field_partner_gender.ids)]}
            )
        # a lead field on a customer-scope task
        with self.assertRaises(ValidationError):
            TaskTemplate.create(
                {
                    **vals,
                    "scope": "customer",
                    "field_ids": [(6, 0, self.field_lead_companions.ids)],
                }
            )
        # a field of an unrelated model
        other = self.env["ir.model.fields"].sudo()._get("res.users", "login")
        with self.assertRaises(ValidationError):
            TaskTemplate.create({**vals, "field_ids": [(6, 0, other.ids)]})
        # a computed read-only field cannot be filled
        computed = (
            self.env["ir.model.fields"].sudo()._get("crm.lead", "prorated_revenue")
        )
        with self.assertRaises(ValidationError):
            TaskTemplate.create({**vals, "field_ids": [(6, 0, computed.ids)]})
        # no field at all
        with self.assertRaises(ValidationError):
            TaskTemplate.create(vals)

    @users("user_sales_manager")
    def test_script_needs_a_lead_template(self):
        partner_template = (
            self.env["mail.template"]
            .sudo()
            .create(
                {
                    "name": "Partner template",
                    "model_id": self.env["ir.model"]._get_id("res.partner"),
                }
            )
        )
        vals = {
            "name": "Script",
            "stage_id": self.sop_stage_contact.id,
            "kind": "script",
        }
        with self.assertRaises(ValidationError):
            self.env["crm.sop.task.template"].create(
                {**vals, "mail_template_id": partner_template.id}
            )
        with self.assertRaises(ValidationError):
            self.env["crm.sop.task.template"].create(vals)

    @users("user_sales_manager")
    def test_activity_type_of_another_model_refused(self):
        other_type = (
            self.env["mail.activity.type"]
            .sudo()
            .create({"name": "Partner only", "res_model": "res.partner"})
        )
        vals = {
            "name": "Act",
            "stage_id": self.sop_stage_contact.id,
            "kind": "activity",
        }
        with self.assertRaises(ValidationError):
            self.env["crm.sop.task.template"].create(
                {**vals, "activity_type_id": other_type.id}
            )
        with self.assertRaises(ValidationError):
            self.env["crm.sop.task.template"].create(vals)

    def test_field_used_by_a_task_cannot_be_removed(self):
        field = self._custom_char_field("crm.lead", "x_sop_budget_note", "Budget note")
        self.env["crm.sop.task.template"].create(
            {
                "name": "Budget note",
                "stage_id": self.sop_stage_contact.id,
                "kind": "fields",
                "field_ids": [(6, 0, field.ids)],
            }
        )
        with self.assertRaises(UserError) as error:
            field.unlink()
        self.assertIn("Budget note", str(error.exception))
        self.assertTrue(field.exists())
        self.assertIn("x_sop_budget_note", self.env["crm.lead"]._fields)

    @users("user_sales_salesman")
    def test_salesman_cannot_configure(self):
        with self.assertRaises(AccessError):
            self.env["crm.sop.template"].create({"name": "Mine"})
        with self.assertRaises(AccessError):
            self.tt_budget.with_user(self.env.user).write({"domain": "[]"})
        with self.assertRaises(AccessError):
            self.sop_stage_contact.with_user(self.env.user).write({"gate": "none"})
        # but reads the playbook it works with
        self.assertEqual(self.playbook.with_user(self.env.user).name, "Test Playbook")

    @users("user_sales_manager")
    def test_manager_configures(self):
        playbook = self.env["crm.sop.template"].create(
            {
                "name": "Manager playbook",
                "stage_ids": [
                    (
                        0,
                        0,
                        {
                            "name": "Only stage",
                            "task_template_ids": [
                                (0, 0, {"name": "Tick", "kind": "manual"})
                            ],
                        },
                    )
                ],
            }
        )
        self.assertEqual(playbook.stage_ids.task_template_ids.name, "Tick")
        playbook.unlink()
        self.assertFalse(playbook.exists())


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopConfigHardening(TestSopCommon):
    """Configuration that would walk other records, or that changes under a
    task, is refused or followed by the engine."""

    @users("user_sales_manager")
    def test_conditions_stay_on_the_opportunity(self):
        count = self.env["crm.sop.task.template"].search_count([])
        walking = [
            # the attack: a deal of another company seen through a relation
            "[('partner_id', 'any', [('opportunity_ids', 'any', "
            "[('company_id', '=', 2), ('expected_revenue', '>', 1000)])])]",
            "[('partner_id', 'not any', [('name', '=', 'x')])]",
            "[('partner_id', 'child_of', 1)]",
            "[('partner_id', 'parent_of', 1)]",
            "[('partner_id', '=', 'Wang Fang')]",
            "[('partner_id', 'ilike', 'Wang')]",
            "[('user_id', 'in', ['admin'])]",
            "[('partner_id', '=', True)]",
            "[('tag_ids', 'in', [[1]])]",
            "[('activity_ids', '!=', False)]",
            "[('message_ids', '!=', False)]",
            "[('expected_revenue', '>', [('id', '=', 1)])]",
            "[('lead_properties', '!=', False)]",
        ]
        for domain in walking:
            with self.subTest(domain=domain), self.assertRaises(ValidationError):
                self._condition(domain)
        self.assertEqual(self.env["crm.sop.task.template"].search_count([]), count)
        # ids and emptiness of relational fields are fine
        for domain in [
            "[('partner_id', '!=', False)]",
            f"[('user_id', 'in', [{self.user_sales_salesman.id}])]",
            "[('tag_ids', '=', False)]",
        ]:
            with self.subTest(domain=domain):
                self.assertTrue(self._condition(domain))

    def test_condition_saved_under_older_rules_checks_nothing(self):
        task_template = self._condition("[('expected_revenue', '>', 0)]")
        # written behind the ORM's back, as an older version could have saved it
        self.env.cr.execute(
            "UPDATE crm_sop_task_template SET domain = %s WHERE id = %s",
            ["[('partner_id', 'any', [('name', '!=', False)])]", task_template.id],
        )
        task_template.invalidate_recordset()
        task_template._sop_clear_caches()
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(partner_id=self.customer.id, expected_revenue=10)
        )
        self.assertEqual(self._task(lead, task_template).state, "todo")

    def test_field_used_by_a_condition_cannot_be_removed(self):
        field = self._custom_char_field("crm.lead", "x_sop_channel", "Channel")
        self._condition("[('x_sop_channel', '!=', False)]", name="Channel known")
        with self.assertRaises(UserError) as error:
            field.unlink()
        self.assertIn("Channel known", str(error.exception))
        self.assertIn("x_sop_channel", self.env["crm.lead"]._fields)

    def test_force_unlink_key_is_not_an_uninstall(self):
        """``_force_unlink`` is the uninstall flag: a client sending it on a
        live server does not get past the check."""
        field = self._custom_char_field("crm.lead", "x_sop_note", "Note")
        task_template = self.env["crm.sop.task.template"].create(
            {
                "name": "Note",
                "stage_id": self.sop_stage_contact.id,
                "kind": "fields",
                "field_ids": [(6, 0, field.ids)],
            }
        )
        with self.assertRaises(UserError):
            field.with_context(_force_unlink=True).unlink()
        self.assertTrue(field.exists())
        # and a fields task that has lost all its fields is never done
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        self.env.cr.execute(
            "DELETE FROM crm_sop_task_template_field_rel WHERE task_template_id = %s",
            [task_template.id],
        )
        task_template.invalidate_recordset()
        task_template._sop_clear_caches()
        lead.write({"x_sop_note": "x"})
        self.env["crm.sop.engine"]._sop_evaluate(lead)
        self.assertEqual(self._task(lead, task_template).state, "todo")

    @users("user_sales_manager")
    def test_script_and_activity_type_stay_on_opportunities(self):
        with self.assertRaises(ValidationError):
            self.mail_template.sudo().model_id = self.env["ir.model"]._get(
                "res.partner"
            )
        self.assertEqual(self.mail_template.model, "crm.lead")
        with self.assertRaises(ValidationError):
            self.activity_type_call.sudo().res_model = "res.partner"
        self.assertFalse(self.activity_type_call.res_model)
        # unused ones move freely
        free = self.env["mail.activity.type"].sudo().create({"name": "Free"})
        free.res_model = "res.partner"

    def test_stage_moved_to_another_playbook(self):
        other = self.env["crm.sop.template"].create(
            {"name": "Other playbook", "team_ids": [(6, 0, self.sales_team_1.ids)]}
        )
        self.playbook.sequence = 0  # the team's playbook stays this one
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        self.assertTrue(self._task(lead, self.tt_call))
        self.sop_stage_pitch.template_id = other
        lead.invalidate_recordset(["sop_task_ids"])
        self.assertFalse(self._task(lead, self.tt_call))
        self.assertEqual(len(lead.sop_task_ids), 3)

    def test_stage_of_another_team_refused(self):
        other_team = self.env["crm.team"].create({"name": "Other team"})
        other_stage = self.env["crm.stage"].create(
            {"name": "Their stage", "team_id": other_team.id}
        )
        with self.assertRaises(ValidationError):
            self.sop_stage_pitch.crm_stage_id = other_stage
        with self.assertRaises(ValidationError):
            self.playbook.team_ids = other_team
        # shared pipeline stages fit every playbook
        self.sop_stage_pitch.crm_stage_id = self.env["crm.stage"].create(
            {"name": "Shared stage"}
        )

    @users("user_sales_manager")
    def test_install_module_key_defers_nothing(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals())
        task_template = (
            self.env["crm.sop.task.template"]
            .with_context(install_module="crm_sales_sop")
            .create(
                {"name": "Late", "stage_id": self.sop_stage_pitch.id, "kind": "manual"}
            )
        )
        self.assertTrue(self._task(lead, task_template))


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopConfigTopDown(TestSopCommon):
    """Issue 15, item 9: a manager builds a playbook top-down, in its dialogs."""

    @users("user_sales_manager")
    def test_new_playbook_new_stage_new_task_in_dialogs(self):
        # the views as the web client shows them: the stage and task dialogs
        # do not ask for their parent, which does not exist yet
        with Form(self.env["crm.sop.template"]) as playbook_form:
            playbook_form.name = "Top-down"
            with playbook_form.stage_ids.new() as stage_form:
                stage_form.name = "Greet"
                self.assertTrue(stage_form._get_modifier("template_id", "invisible"))
                with stage_form.task_template_ids.new() as task_form:
                    task_form.name = "Say hello"
                    task_form.kind = "manual"
                    self.assertTrue(task_form._get_modifier("stage_id", "invisible"))
        playbook = playbook_form.record
        self.assertEqual(playbook.stage_ids.mapped("name"), ["Greet"])
        stage = playbook.stage_ids
        self.assertEqual(stage.task_template_ids.mapped("name"), ["Say hello"])
        self.assertEqual(stage.task_template_ids.template_id, playbook)
        # opened on its own, a stage or task still says where it belongs
        with Form(stage) as stage_form:
            self.assertFalse(stage_form._get_modifier("template_id", "invisible"))
        with Form(stage.task_template_ids) as task_form:
            self.assertFalse(task_form._get_modifier("stage_id", "invisible"))

    @users("user_sales_manager")
    def test_parent_is_set_by_the_server(self):
        # what the dialogs send: the new lines without their parent, or with
        # an empty one; the server sets the parent from the one2many
        playbook = self.env["crm.sop.template"].create(
            {
                "name": "Top-down",
                "stage_ids": [
                    Command.create(
                        {
                            "name": "Greet",
                            "template_id": False,
                            "task_template_ids": [
                                Command.create({"name": "Say hello", "kind": "manual"}),
                                Command.create(
                                    {
                                        "name": "Wave",
                                        "kind": "manual",
                                        "stage_id": False,
                                    }
                                ),
                            ],
                        }
                    )
                ],
            }
        )
        self.assertEqual(len(playbook.stage_ids.task_template_ids), 2)
        self.assertEqual(playbook.stage_ids.task_template_ids.template_id, playbook)
        # a stage without a playbook, or a task without a stage, is refused
        # (the database's NOT NULL, which Odoo reports as a missing value)
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError):
            self.env["crm.sop.stage"].create({"name": "Orphan"})
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError):
            self.env["crm.sop.task.template"].create(
                {"name": "Orphan", "kind": "manual"}
            )


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopConditionFields(TestSopCommon):
    """Issue 15, item 9: the condition editor offers the opportunity's
    business fields, and the server refuses what it does not offer."""

    TECHNICAL = (
        "id",
        "write_uid",
        "color",
        "phone_sanitized",
        "email_normalized",
        "email_domain_criterion",
        "email_state",
        "date_automation_last",
        "automated_probability",
        "message_bounce",
        "email_cc",
        "description",
        "sop_progress",
        "sop_stage_id",
        "sop_stalled",
    )

    @users("user_sales_manager")
    def test_editor_offers_business_fields_only(self):
        names = self.env["crm.sop.task.template"].get_sop_condition_field_names()
        for name in (
            "expected_revenue",
            "priority",
            "partner_id",
            "tag_ids",
            "date_deadline",
            "source_id",
            "x_sop_companions",
        ):
            self.assertIn(name, names)
        # searchable but not stored (the picker listed "Blacklisted Phone Is
        # Mobile"), and technical stored ones
        for name in (
            "phone_mobile_search",
            "phone_sanitized_blacklisted",
            "mobile_blacklisted",
            *self.TECHNICAL,
        ):
            self.assertNotIn(name, names)
        # every field offered is accepted by the server
        for name in names:
            with self.subTest(field=name):
                self.env["crm.sop.task.template"]._sop_check_leaf((name, "!=", False))

    def test_editor_fields_not_for_portal(self):
        portal = new_test_user(self.env, login="sop_portal", groups="base.group_portal")
        with self.assertRaises(AccessError):
            self.env["crm.sop.task.template"].with_user(
                portal
            ).get_sop_condition_field_names()
        with self.assertRaises(AccessError):
            self.env["crm.sop.task.template"].with_user(
                portal
            ).get_sop_condition_operators()

    @users("user_sales_manager")
    def test_editor_offers_accepted_operators_only(self):
        """The editor's operators are the server's: each one served is
        accepted, on a number, a text or a record; "child_of" and "any" are
        not served (the server refuses them)."""
        Template = self.env["crm.sop.task.template"]
        served = Template.get_sop_condition_operators()
        for operator in served["operators"]:
            with self.subTest(operator=operator):
                value = ["a"] if "in" in operator.split() else "a"
                Template._sop_check_leaf(("name", operator, value))
        for operator in served["relational_operators"]:
            with self.subTest(operator=operator):
                value = [1] if "in" in operator.split() else 1
                Template._sop_check_leaf(("partner_id", operator, value))
        for operator in ("child_of", "parent_of", "any", "not any"):
            self.assertNotIn(operator, served["operators"])
            with self.assertRaises(ValidationError):
                Template._sop_check_leaf(("partner_id", operator, 1))
        # a relation compared with text is refused, and not served for it
        self.assertNotIn("ilike", served["relational_operators"])
        with self.assertRaises(ValidationError):
            Template._sop_check_leaf(("partner_id", "ilike", "Zhou"))

    @users("user_sales_manager")
    def test_technical_fields_refused(self):
        count = self.env["crm.sop.task.template"].search_count([])
        for name in self.TECHNICAL:
            with self.subTest(field=name):
                with self.assertRaises(ValidationError) as error:
                    self._condition(f"[('{name}', '!=', False)]")
                self.assertIn("business fields", str(error.exception))
        with self.assertRaises(ValidationError) as error:
            self._condition("[('phone_sanitized_blacklisted', '=', True)]")
        self.assertIn("not a stored field", str(error.exception))
        self.assertEqual(self.env["crm.sop.task.template"].search_count([]), count)
        # (a custom field of the opportunity is a business field: see
        # test_field_used_by_a_condition_cannot_be_removed)

    @users("user_sales_manager")
    def test_number_compared_with_a_text_is_said_in_words(self):
        with self.assertRaises(ValidationError) as error:
            self._condition("[('expected_revenue', '>', 'abc')]")
        message = str(error.exception)
        self.assertIn("“abc” is not a number", message)
        self.assertIn("Expected Revenue", message)
        self.assertNotIn("float", message)
        with self.assertRaises(ValidationError) as error:
            self.tt_budget.write({"domain": "[('probability', 'in', [10, 'ten'])]"})
        self.assertIn("“ten” is not a number: “Probability”", str(error.exception))
        self.tt_budget.invalidate_recordset()
        self.assertEqual(self.tt_budget.domain, "[('expected_revenue', '>', 0)]")
        with self.assertRaises(ValidationError) as error:
            self._condition("[('date_deadline', '>', 'yesterday')]")
        self.assertIn("“yesterday” is not a date", str(error.exception))
        # numbers, dates and emptiness are fine
        for domain in (
            "[('expected_revenue', '>', 1000.5)]",
            "[('probability', 'in', [10, 20])]",
            "[('expected_revenue', '!=', False)]",
            "[('date_deadline', '<=', '2026-12-31')]",
            "[('create_date', '>=', '2026-01-01 08:00:00')]",
        ):
            with self.subTest(domain=domain):
                self.assertTrue(self._condition(domain))

    @users("user_sales_manager")
    def test_choice_compared_with_another_value_is_said_in_words(self):
        with self.assertRaises(ValidationError) as error:
            self._condition("[('priority', 'in', ['2', '9'])]")
        message = str(error.exception)
        self.assertIn("“9” is not a choice of “Priority”", message)
        self.assertIn("“3” (Very High)", message)
        self.assertTrue(self._condition("[('priority', 'in', ['2', '3'])]"))
        # an order on the choices' keys is not a choice
        self.assertTrue(self._condition("[('priority', '>=', '2')]"))

    def test_yes_no_compared_with_another_value_is_said_in_words(self):
        self.env["ir.model.fields"].create(
            {
                "name": "x_sop_showroom",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "field_description": "Came to the showroom",
                "ttype": "boolean",
            }
        )
        with self.assertRaises(ValidationError) as error:
            self._condition("[('x_sop_showroom', '=', 'yes')]")
        self.assertIn(
            "“yes” is not True or False: “Came to the showroom”",
            str(error.exception),
        )
        self.assertTrue(self._condition("[('x_sop_showroom', '=', True)]"))

    def test_number_error_in_chinese(self):
        self.env["res.lang"]._activate_lang("zh_CN")
        manager = self.user_sales_manager
        with self.assertRaises(ValidationError) as error:
            self.env["crm.sop.task.template"].with_user(manager).with_context(
                lang="zh_CN"
            ).create(
                {
                    "name": "Condition",
                    "stage_id": self.sop_stage_pitch.id,
                    "kind": "condition",
                    "domain": "[('expected_revenue', '>', 'abc')]",
                }
            )
        self.assertIn("“abc”不是数字", str(error.exception))

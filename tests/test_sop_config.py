from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged, users

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopConfig(TestSopCommon):
    def _condition(self, domain):
        return self.env["crm.sop.task.template"].create(
            {
                "name": "Condition",
                "stage_id": self.sop_stage_pitch.id,
                "kind": "condition",
                "domain": domain,
            }
        )

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

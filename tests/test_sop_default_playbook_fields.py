import json
import re
from pathlib import Path

from odoo.tests import tagged

from .common import TestSopCommon, sop_migration

ROOT = Path(__file__).parent.parent


def _migration():
    return sop_migration("18.0.1.5.0", "pre-default_playbook_fields.py")


@tagged("post_install", "-at_install")
class TestSopDefaultPlaybookFields(TestSopCommon):
    """The fields the default playbook collects (visit data, intent, the
    customer's gender and age range) are its data, not the engine's: custom
    fields shipped by the addon, renamed in place on upgrade with everything
    a customer saved under their former names."""

    def test_shipped_as_data(self):
        migration = _migration()
        for (model, _table), names in migration.RENAMED.items():
            for old in names:
                field = self.env[model]._fields[f"x_{old}"]
                self.assertTrue(field.manual, f"{model}.x_{old} is a custom field")
                self.assertNotIn(old, self.env[model]._fields)
                record = self.env["ir.model.fields"]._get(model, f"x_{old}")
                self.assertEqual(
                    record,
                    self.env.ref(
                        f"crm_sales_sop.field_{model.replace('.', '_')}__x_{old}"
                    ),
                )
        # the engine names none of them: only the default playbook's data,
        # its demo (and the demo generator) do
        word = re.compile(r"\bx_(" + "|".join(migration.OLD_NAMES) + r")\b")
        for path in sorted((ROOT / "models").glob("*.py")):
            if path.name != "crm_sop_demo.py":
                with self.subTest(path=path.name):
                    self.assertIsNone(word.search(path.read_text()))

    def _old_shape(self):
        """The database as 18.0.1.4.0 left it: the six fields in Python."""
        cr = self.env.cr
        for (model, table), names in _migration().RENAMED.items():
            model_ = model.replace(".", "_")
            for old in names:
                cr.execute(f'ALTER TABLE {table} RENAME COLUMN "x_{old}" TO "{old}"')
                cr.execute(
                    """UPDATE ir_model_fields SET name = %s, state = 'base'
                        WHERE model = %s AND name = %s""",
                    (old, model, f"x_{old}"),
                )
                cr.execute(
                    """UPDATE ir_model_data SET name = replace(name, %s, %s)
                        WHERE module = 'crm_sales_sop'
                          AND (name = %s OR name LIKE %s)""",
                    (
                        f"__x_{old}",
                        f"__{old}",
                        f"field_{model_}__x_{old}",
                        f"selection__{model_}__x_{old}__%",
                    ),
                )

    def _xmlids(self):
        self.env.cr.execute(
            """SELECT name, res_id FROM ir_model_data
                WHERE module = 'crm_sales_sop'
                  AND model IN ('ir.model.fields', 'ir.model.fields.selection')
                  AND name ~ 'sop_(companions|decision_makers|intended|gender|age)'"""
        )
        return dict(self.env.cr.fetchall())

    def test_upgrade_renames_in_place(self):
        lead = self.env["crm.lead"].create(
            self._sop_lead_vals(
                x_sop_companions="Her sister", partner_id=self.customer.id
            )
        )
        self.customer.x_sop_gender = "female"
        body = (
            '<p><t t-out="object.sop_intended_category"/> '
            '<t t-out="object.x_sop_intended_style"/> field_res_partner__sop_gender</p>'
        )
        template = self.env["mail.template"].create(
            {
                "name": "Customer's copy",
                "model_id": self.env.ref("crm.model_crm_lead").id,
            }
        )
        self.env.flush_all()
        fields_before = {
            name: self.env["ir.model.fields"]._get(model, name).id
            for model, name in (
                ("crm.lead", "x_sop_companions"),
                ("res.partner", "x_sop_gender"),
            )
        }
        xmlids_before = self._xmlids()
        self.assertEqual(len(xmlids_before), 6 + 8)

        self._old_shape()
        cr = self.env.cr
        # what a customer saved while the fields had their former names
        cr.execute(
            "UPDATE mail_template SET body_html = %s WHERE id = %s",
            (json.dumps({"en_US": body, "zh_CN": body}), template.id),
        )
        cr.execute(
            """INSERT INTO ir_filters (name, model_id, domain, context, sort, active)
               VALUES ('Came with family', 'crm.lead',
                       '[("sop_companions", "ilike", "sister")]',
                       '{"group_by": ["sop_intended_style"]}', '[]', true)
               RETURNING id"""
        )
        filter_id = cr.fetchone()[0]
        cr.execute(
            """UPDATE ir_config_parameter SET value = 'phone_state,sop_companions'
                WHERE key = 'crm.pls_fields'"""
        )
        cr.execute(
            """UPDATE crm_sop_task_template SET domain = %s WHERE id = %s""",
            ("[('sop_intended_style', '!=', False)]", self.tt_budget.id),
        )

        _migration().migrate(cr, "18.0.1.4.0")

        self.env.invalidate_all()
        self.assertEqual(lead.x_sop_companions, "Her sister", "the values stay")
        self.assertEqual(self.customer.x_sop_gender, "female")
        for name, field_id in fields_before.items():
            record = self.env["ir.model.fields"].browse(field_id)
            self.assertEqual((record.name, record.state), (name, "manual"))
        self.assertEqual(self._xmlids(), xmlids_before, "the same records, the addon's")
        cr.execute("SELECT body_html FROM mail_template WHERE id = %s", (template.id,))
        expected = (
            '<p><t t-out="object.x_sop_intended_category"/> '
            '<t t-out="object.x_sop_intended_style"/> field_res_partner__sop_gender</p>'
        )
        self.assertEqual(cr.fetchone()[0], {"en_US": expected, "zh_CN": expected})
        cr.execute("SELECT domain, context FROM ir_filters WHERE id = %s", (filter_id,))
        self.assertEqual(
            cr.fetchone(),
            (
                '[("x_sop_companions", "ilike", "sister")]',
                '{"group_by": ["x_sop_intended_style"]}',
            ),
        )
        cr.execute("SELECT value FROM ir_config_parameter WHERE key = 'crm.pls_fields'")
        self.assertEqual(cr.fetchone()[0], "phone_state,x_sop_companions")
        self.assertEqual(
            self.tt_budget.domain, "[('x_sop_intended_style', '!=', False)]"
        )
        # once is enough: a second run finds nothing to rename
        self.assertEqual(_migration().rewrite_texts(cr), 0)

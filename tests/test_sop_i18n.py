import polib

from odoo.tests import TransactionCase, tagged
from odoo.tools.misc import file_path
from odoo.tools.translate import TranslationModuleReader


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopI18n(TransactionCase):
    def test_every_term_has_a_chinese_translation(self):
        """Every term Odoo exports for the addon (code, views, fields,
        selections, data) has a Simplified Chinese translation."""
        reader = TranslationModuleReader(self.env.cr, modules=["crm_sales_sop"])
        sources = {row[4] for row in reader if row[0] == "crm_sales_sop" and row[4]}
        self.assertGreater(len(sources), 150)
        catalog = polib.pofile(file_path("crm_sales_sop/i18n/zh_CN.po"))
        translated = {entry.msgid for entry in catalog if entry.msgstr}
        missing = sorted(sources - translated)
        self.assertFalse(missing, f"{len(missing)} terms without zh_CN: {missing[:10]}")

    def test_chinese_is_served(self):
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["crm_sales_sop"], ["zh_CN"])
        env = self.env(context={"lang": "zh_CN"})
        # the task's button (sop_task_button) is labelled by its selection
        labels = dict(env["crm.sop.task"].fields_get(["button"])["button"]["selection"])
        self.assertEqual(labels["fill_in"], "去填写")
        self.assertEqual(labels["view"], "去查看")
        arch = env["crm.lead"].get_view(
            self.env.ref("crm.crm_lead_view_form").id, "form"
        )["arch"]
        self.assertIn("不适用", arch)
        stage = env.ref("crm_sales_sop.crm_sop_stage_first_contact")
        self.assertEqual(stage.name, "初次接洽")

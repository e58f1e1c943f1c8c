from odoo.tests import TransactionCase, tagged

from odoo.addons.base.models.ir_model import MODULE_UNINSTALL_FLAG

from .. import _crm_sop_uninstall


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopUninstall(TransactionCase):
    """What the uninstall_hook undoes before Odoo's own uninstall (the whole
    uninstall, core crm's tests after it and the reinstall: make
    test-uninstall)."""

    def test_uninstall_hook_cleans_scoring_and_script_sends(self):
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("crm.pls_fields", "phone_state,sop_progress_band,email_state")
        team = self.env["crm.team"].search([], limit=1)
        Frequency = self.env["crm.lead.scoring.frequency"]
        Frequency.create(
            [
                {"variable": "sop_progress_band", "value": "50", "team_id": team.id},
                {"variable": "phone_state", "value": "correct", "team_id": team.id},
            ]
        )
        lead = self.env["crm.lead"].create(
            {"name": "Sent a script", "type": "opportunity"}
        )
        script = self.env["mail.template"].create(
            {
                "name": "A script",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "sop_is_script": True,
            }
        )
        self.env["crm.sop.script.send"]._sop_record(lead, script, "email")
        self.assertTrue(self.env["crm.sop.script.send"].search_count([]))

        _crm_sop_uninstall(self.env)

        self.assertEqual(params.get_param("crm.pls_fields"), "phone_state,email_state")
        variables = Frequency.search([("team_id", "=", team.id)]).mapped("variable")
        self.assertNotIn("sop_progress_band", variables)
        self.assertIn("phone_state", variables)
        self.assertFalse(self.env["crm.sop.script.send"].search_count([]))
        # the scripts the addon ships can go now (Odoo deletes them next)
        script.unlink()

    def test_uninstall_hook_makes_the_increments_left_to_the_job(self):
        """A close's lead scoring increments its job had yet to make are
        made before its table goes."""
        team = self.env["crm.team"].create({"name": "Closing at once"})
        frequency = self.env["crm.lead.scoring.frequency"].create(
            {"variable": "phone_state", "value": "correct", "team_id": team.id}
        )
        self.env["crm.sop.scoring.increment"]._sop_defer(
            {team.id: {"phone_state": {"correct": {"won": 1, "lost": 0}}}}, 1
        )
        _crm_sop_uninstall(self.env)
        self.assertEqual(frequency.won_count, 1)
        self.assertFalse(self.env["crm.sop.scoring.increment"].search_count([]))

    def test_uninstall_hook_leaves_core_scoring_alone(self):
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("crm.pls_fields", "phone_state,email_state")
        _crm_sop_uninstall(self.env)
        self.assertEqual(params.get_param("crm.pls_fields"), "phone_state,email_state")

    def test_uninstall_deletes_configuration_with_history(self):
        """Live, a task template with done tasks is archived to keep its
        history; under Odoo's uninstall it goes (its tables go anyway), so
        that the scripts it names can be deleted after it."""
        lead = self.env["crm.lead"].create(
            {"name": "With history", "type": "opportunity"}
        )
        task = lead.sop_task_ids.filtered(
            lambda t: t.task_template_id.kind == "manual"
        )[:1]
        self.assertTrue(task, "the default playbook has a task ticked by hand")
        task.action_sop_mark_done()
        task_template = task.task_template_id
        task_template.unlink()
        self.assertTrue(task_template.exists())
        self.assertFalse(task_template.active, "archived with its history")
        task_template.with_context(**{MODULE_UNINSTALL_FLAG: True}).unlink()
        self.assertFalse(task_template.exists())
        self.assertFalse(task.exists())

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """Cards say which deals a blocking gate holds (``sop_gate_held``): the
    deals of the playbooks that have one are evaluated once."""
    env = api.Environment(cr, SUPERUSER_ID, {})
    stages = env["crm.sop.stage"].search([("gate", "=", "block")])
    if stages:
        env["crm.sop.engine"]._sop_evaluate_templates(stages.task_template_ids)

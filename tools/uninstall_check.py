"""Use the addon in a database, then uninstall it (``make test-uninstall``).

    python3 tools/uninstall_check.py use DB --addons-path=...
    python3 tools/uninstall_check.py uninstall DB --addons-path=...
    python3 tools/uninstall_check.py reinstalled DB --addons-path=...

``use`` does what a sales team does with the demo: a deal moved through its
stages, tasks ticked by hand, a script sent, a deal won and one lost, the
reminder cron and the honor-roll refresh run, the SOP progress band switched
on in predictive lead scoring. ``uninstall`` removes the addon the way the
Apps menu does (``button_immediate_uninstall``) and checks what it must leave:
no SOP table, column, parameter or record that core crm would trip on.
Core crm's own tests and the reinstall run after it (Makefile);
``reinstalled`` checks the addon works again. Any ERROR logged fails a step.
"""

import argparse
import logging
import sys

import odoo
from odoo.tools import config


def _env(db):
    registry = odoo.modules.registry.Registry(db)
    return registry


def _module(env):
    return env["ir.module.module"].search([("name", "=", "crm_sales_sop")])


def use(db):
    registry = _env(db)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        rep = env.ref("base.user_admin")
        env = env(user=rep.id, context={"tracking_disable": False})
        domain = [
            ("type", "=", "opportunity"),
            ("user_id", "=", rep.id),
            ("sop_template_id", "!=", False),
            ("probability", "<", 100),
        ]
        # the deal a script is sent on needs a customer with an email
        deal = env["crm.lead"].search(
            [*domain, ("partner_id.email", "!=", False)], order="id", limit=1
        )
        leads = env["crm.lead"].search(
            [*domain, ("id", "!=", deal.id)], order="id", limit=2
        )
        assert deal and len(leads) == 2, "the demo has no opportunities to use"
        won, lost = leads
        stages = env["crm.stage"].search([], order="sequence")
        # tasks ticked by hand, then the deal moved on
        manual = deal.sop_task_ids.filtered(
            lambda t: t.kind == "manual" and t.state == "todo"
        )
        assert manual, "the deal has no task to tick by hand"
        manual[:2].action_sop_mark_done()
        deal.stage_id = stages.filtered(lambda s: s.sequence > deal.stage_id.sequence)[
            :1
        ]
        # a script sent by email
        scripts = env["mail.template"].search(
            [("sop_is_script", "=", True), ("model", "=", "crm.lead")], limit=1
        )
        assert scripts and deal.email_from, "no script or no email to send it to"
        deal.action_sop_send_script(scripts.id, channel="email")
        won.action_set_won()
        lost.action_set_lost()
        admin_env = env(user=odoo.SUPERUSER_ID)
        # the honor roll started: goals computed by the addon's code
        admin_env.ref("crm_sales_sop.challenge_sop_honor_roll").action_start()
        # the SOP band as a variable of predictive lead scoring
        params = admin_env["ir.config_parameter"]
        pls = params.get_param("crm.pls_fields", "")
        names = [f for f in pls.split(",") if f]
        params.set_param("crm.pls_fields", ",".join([*names, "sop_progress_band"]))
        cr.commit()
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        env["crm.lead"]._cron_update_automated_probabilities()
        env["crm.sop.reminder"]._cron_sop_reminder()
        env["gamification.challenge"]._cron_sop_refresh_honor_roll()
        counts = {
            "tasks done": env["crm.sop.task"].search_count([("state", "=", "done")]),
            "script sends": env["crm.sop.script.send"].search_count([]),
            "goals": env["gamification.goal"].search_count([]),
        }
        cr.commit()
    print(f"used {db}: {counts}")


def uninstall(db):
    registry = _env(db)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        module = _module(env)
        assert module.state == "installed", module.state
        module.button_immediate_uninstall()
    registry = odoo.modules.registry.Registry(db)
    problems = []
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        module = _module(env)
        if module.state != "uninstalled":
            problems.append(f"module state {module.state}")
        cr.execute(
            """SELECT table_name FROM information_schema.tables
                WHERE table_schema = 'public' AND table_name LIKE 'crm_sop%%'"""
        )
        problems += [f"table or view left: {t}" for (t,) in cr.fetchall()]
        cr.execute(
            """SELECT table_name, column_name FROM information_schema.columns
                WHERE table_schema = 'public' AND column_name LIKE 'sop\\_%%'"""
        )
        problems += [f"column left: {t}.{c}" for t, c in cr.fetchall()]
        cr.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%sop%%'")
        problems += [f"index left: {i}" for (i,) in cr.fetchall()]
        pls = env["ir.config_parameter"].get_param("crm.pls_fields", "")
        if "sop_" in pls:
            problems.append(f"crm.pls_fields still names the addon: {pls}")
        cr.execute(
            """SELECT variable FROM crm_lead_scoring_frequency
                WHERE variable LIKE 'sop\\_%%' LIMIT 1"""
        )
        problems += [f"scoring frequencies left: {v}" for (v,) in cr.fetchall()]
        for model, field in (
            ("gamification.goal.definition", "compute_code"),
            ("ir.cron", "code"),
            ("ir.actions.server", "code"),
        ):
            found = (
                env[model]
                .with_context(active_test=False)
                .search([(field, "ilike", "sop")])
            )
            problems += [f"{model} left: {r.display_name}" for r in found]
        cr.execute("SELECT count(*) FROM ir_model_data WHERE module = 'crm_sales_sop'")
        left = cr.fetchone()[0]
        if left:
            problems.append(f"{left} ir.model.data rows of crm_sales_sop left")
        # core crm still computes probabilities and moves a deal
        lead = env["crm.lead"].create(
            {"name": "after uninstall", "type": "opportunity"}
        )
        lead.stage_id = env["crm.stage"].search([], order="sequence desc", limit=1)
        env["crm.lead"]._cron_update_automated_probabilities()
        lead.action_set_won()
        cr.rollback()
    if problems:
        print("\n".join(["uninstall left:", *problems]))
        sys.exit(1)
    print(f"uninstalled from {db}: nothing of the addon left")


def reinstalled(db):
    registry = _env(db)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        module = _module(env)
        assert module.state == "installed", module.state
        leads = env["crm.lead"].search(
            [("type", "=", "opportunity"), ("sop_template_id", "!=", False)]
        )
        assert leads, "no opportunity got a playbook"
        missing = leads.filtered(lambda lead: not lead.sop_task_ids)
        assert not missing, f"opportunities without tasks: {missing.ids}"
        # the engine works again: a task ticked by hand completes
        task = env["crm.sop.task"].search(
            [("kind", "=", "manual"), ("state", "=", "todo")], limit=1
        )
        task.action_sop_mark_done()
        assert task.state == "done", task.state
        cr.rollback()
    print(f"reinstalled in {db}: {len(leads)} opportunities with their tasks")


class _Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["use", "uninstall", "reinstalled"])
    parser.add_argument("db")
    parser.add_argument("--addons-path", required=True)
    args = parser.parse_args()
    config.parse_config([f"--addons-path={args.addons_path}", "--log-level=warn"])
    odoo.netsvc.init_logger()
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    {"use": use, "uninstall": uninstall, "reinstalled": reinstalled}[args.step](args.db)
    if errors.records:
        print(f"{len(errors.records)} error(s) logged (see above)")
        sys.exit(1)


if __name__ == "__main__":
    main()

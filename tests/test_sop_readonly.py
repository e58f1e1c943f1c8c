import inspect
import json
from contextlib import contextmanager

import psycopg2

from odoo.sql_db import Savepoint
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from .common import TestSopCommon

# What a client calls that Odoo may run on a read-only cursor, on the
# replica when there is one (@api.readonly, web's call_kw routing): the
# addon's own entry points. The report views' grouped reads are core's
# web_read_group / read_group (already read-only in core). Nothing that
# writes belongs here: the stall pass, the reminder job, sends and marks.
READONLY = {
    ("crm.lead", "get_sop_uplift"),
    ("crm.lead", "sop_get_scripts"),
    ("crm.sop.board", "get_board"),
    ("crm.sop.coaching", "get_queue"),
    ("crm.sop.playbook.report", "compare"),
    ("crm.sop.task.template", "get_sop_condition_field_names"),
    ("crm.sop.task.template", "get_sop_condition_operators"),
}
REPORTS = (
    "crm.sop.task.report",
    "crm.sop.stage.report",
    "crm.sop.script.report",
    "crm.sop.playbook.report",
    "crm.sop.feedback.report",
)


def addon_readonly_methods(registry):
    """(model, method) of every method of this addon marked @api.readonly,
    found as web's ``_call_kw_readonly`` finds them (first in the MRO)."""
    found = set()
    for name, model in registry.items():
        for cls in model.mro():
            if not cls.__module__.startswith("odoo.addons.crm_sales_sop."):
                continue
            for attr, value in vars(cls).items():
                if inspect.isfunction(value) and getattr(value, "_readonly", False):
                    found.add((name, attr))
    return found


class SopReadonlyCase(TestSopCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._sop_close_history(3, won=True, visited=2)
        cls._sop_close_history(2, won=False, visited=0)
        cls.lead = cls.env["crm.lead"].create(
            cls._sop_lead_vals(partner_id=cls.customer.id, expected_revenue=5000)
        )

    @contextmanager
    def readonly_cursor(self):
        """Run the body as on a replica: the transaction is read-only, so
        any write (and any write it left to flush) fails; rolled back."""
        self.env.flush_all()
        savepoint = Savepoint(self.env.cr)
        try:
            self.env.cr.execute("SET TRANSACTION READ ONLY")
            yield
            self.env.flush_all()
        finally:
            savepoint.close(rollback=True)
            self.env.invalidate_all()


@tagged("post_install", "-at_install")
class TestSopReadonly(SopReadonlyCase):
    def test_marked_entry_points_are_the_read_only_ones(self):
        self.assertEqual(addon_readonly_methods(self.registry), READONLY)

    def test_the_read_only_cursor_refuses_a_write(self):
        """The helper is strict: a write, even one left to flush, fails."""
        with (
            mute_logger("odoo.sql_db"),
            self.assertRaises(psycopg2.errors.ReadOnlySqlTransaction),
            self.readonly_cursor(),
        ):
            self.lead.with_user(self.user_sales_salesman).name = "Renamed"

    def test_entry_points_write_nothing(self):
        rep = self.user_sales_salesman
        manager = self.user_sales_manager
        lead = self.lead.with_user(rep)
        cases = {
            ("crm.lead", "get_sop_uplift"): lambda: lead.get_sop_uplift(),
            ("crm.lead", "sop_get_scripts"): lambda: lead.sop_get_scripts(),
            ("crm.sop.board", "get_board"): lambda: [
                self.env["crm.sop.board"]
                .with_user(user)
                .get_board(metric, "month", group_by=group_by)
                for user in (rep, manager)
                for metric in ("won_revenue", "adherence")
                for group_by in ("user", "team")
            ],
            ("crm.sop.coaching", "get_queue"): lambda: (
                self.env["crm.sop.coaching"]
                .with_user(manager)
                .get_queue(self.sales_team_1.id)
            ),
            ("crm.sop.playbook.report", "compare"): lambda: (
                self.env["crm.sop.playbook.report"]
                .with_user(manager)
                .compare([self.playbook.id])
            ),
            ("crm.sop.task.template", "get_sop_condition_field_names"): lambda: (
                self.env["crm.sop.task.template"]
                .with_user(manager)
                .get_sop_condition_field_names()
            ),
            ("crm.sop.task.template", "get_sop_condition_operators"): lambda: (
                self.env["crm.sop.task.template"]
                .with_user(manager)
                .get_sop_condition_operators()
            ),
        }
        self.assertEqual(set(cases), READONLY, "every entry point is exercised")
        for key, call in cases.items():
            with self.subTest(entry_point=key), self.readonly_cursor():
                self.assertTrue(call())

    def test_report_grouped_reads_write_nothing(self):
        for model in REPORTS:
            Report = self.env[model].with_user(self.user_sales_manager)
            groupby = next(
                name
                for name in ("user_id", "template_id", "stage_id", "task_template_id")
                if name in Report._fields
            )
            with self.subTest(report=model), self.readonly_cursor():
                Report.web_read_group([], ["__count"], [groupby])
                Report.read_group([], [], [groupby], lazy=False)


@tagged("post_install", "-at_install")
class TestSopReadonlyRpc(HttpCase):
    """Through JSON-RPC as the web client calls them, on the read-only
    cursor Odoo's test mode gives read-only routes: no entry point falls
    back to a read/write cursor ("retrying with a read/write cursor")."""

    def _call(self, model, method, args, kwargs=None):
        response = self.url_open(
            f"/web/dataset/call_kw/{model}/{method}",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {
                        "model": model,
                        "method": method,
                        "args": args,
                        "kwargs": kwargs or {},
                    },
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        body = response.json()
        self.assertNotIn("error", body, body.get("error"))
        return body["result"]

    def test_entry_points_stay_on_the_read_only_cursor(self):
        lead = self.env["crm.lead"].search(
            [("type", "=", "opportunity"), ("sop_template_id", "!=", False)],
            limit=1,
        )
        team = lead.team_id
        self.assertTrue(lead and team, "the demo data has a deal with a playbook")
        self.authenticate("admin", "admin")
        with self.assertNoLogs("odoo.http", "WARNING"):
            self._call("crm.lead", "get_sop_uplift", [lead.ids])
            self._call("crm.lead", "sop_get_scripts", [lead.ids])
            self._call("crm.sop.board", "get_board", ["won_revenue", "month"])
            self._call("crm.sop.coaching", "get_queue", [team.id])
            self._call(
                "crm.sop.playbook.report", "compare", [[lead.sop_template_id.id]]
            )
            self._call("crm.sop.task.template", "get_sop_condition_field_names", [])
            self._call("crm.sop.task.template", "get_sop_condition_operators", [])
            for model in REPORTS:
                fields_ = self.env[model]._fields
                groupby = "user_id" if "user_id" in fields_ else "template_id"
                self._call(
                    model,
                    "web_read_group",
                    [],
                    {"domain": [], "fields": ["__count"], "groupby": [groupby]},
                )

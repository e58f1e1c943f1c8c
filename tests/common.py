from contextlib import contextmanager
from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.modules.migration import load_script

from odoo.addons.crm.tests.common import TestCrmCommon


def sop_migration(version, script):
    """The module of the addon's migration script ``script`` of ``version``
    (migrations/<version>/<script>), loaded as Odoo's upgrade loads it, for a
    test to run its ``migrate``."""
    return load_script(
        f"crm_sales_sop/migrations/{version}/{script}",
        f"crm_sales_sop_migration_{version.replace('.', '_')}_{script[:-3]}",
    )


@contextmanager
def sop_evaluations(env):
    """The engine's evaluations of deals after a manager's change
    (``_sop_evaluate_soon``) made inside the block: a list of the sets of
    lead ids, one per call, the calls going through as usual."""
    Engine = type(env["crm.sop.engine"])
    original = Engine._sop_evaluate_soon
    calls = []

    def counted(engine, lead_ids, later=()):
        calls.append(set(lead_ids))
        return original(engine, lead_ids, later=later)

    with patch.object(Engine, "_sop_evaluate_soon", counted):
        yield calls


class SopTransactionsMixin:
    """For tests whose point is real transactions seeing each other's
    commits (REPEATABLE READ, as the server's workers): a rep's save, a
    manager's, a job's batch, each on a cursor of its own."""

    def _sop_transactions(self, count=2):
        """``count`` environments (superuser), each on a cursor of its own,
        rolled back and closed at clean-up, before what the test registered
        earlier (its data removed, committed)."""
        envs = [
            api.Environment(self.env.registry.cursor(), SUPERUSER_ID, {})
            for _i in range(count)
        ]

        def close():
            for env in envs:
                env.cr.rollback()
                env.cr.close()

        self.addCleanup(close)
        return envs


class TestSopCommon(TestCrmCommon):
    """A playbook for sales_team_1 with one task of each kind.

    Pipeline of sales_team_1 (crm tests): New (1) < Proposition (5) < Won (70).
    SOP stages: "Contact" belongs to New, "Pitch" to Proposition.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Field = cls.env["ir.model.fields"]
        cls.field_lead_companions = Field._get("crm.lead", "x_sop_companions")
        cls.field_lead_decision = Field._get("crm.lead", "x_sop_decision_makers")
        cls.field_partner_gender = Field._get("res.partner", "x_sop_gender")
        cls.field_partner_age = Field._get("res.partner", "x_sop_age_range")
        cls.mail_template = cls.env["mail.template"].create(
            {
                "name": "SOP test welcome",
                "model_id": cls.env["ir.model"]._get_id("crm.lead"),
                "subject": "Welcome {{ object.name }}",
                "body_html": "<p>Hello <t t-out='object.partner_id.name or \"\"'/></p>",
                "partner_to": "{{ object.partner_id.id }}",
            }
        )
        cls.activity_type_call = cls.env.ref("mail.mail_activity_data_call")

        cls.playbook = cls.env["crm.sop.template"].create(
            {
                "name": "Test Playbook",
                "sequence": 1,
                "team_ids": [(6, 0, cls.sales_team_1.ids)],
            }
        )
        cls.sop_stage_contact = cls.env["crm.sop.stage"].create(
            {
                "name": "Contact",
                "sequence": 10,
                "template_id": cls.playbook.id,
                "crm_stage_id": cls.stage_team1_1.id,
                "guidance": "<p>Get to know the customer.</p>",
            }
        )
        cls.sop_stage_pitch = cls.env["crm.sop.stage"].create(
            {
                "name": "Pitch",
                "sequence": 20,
                "template_id": cls.playbook.id,
                "crm_stage_id": cls.stage_team1_2.id,
            }
        )
        TaskTemplate = cls.env["crm.sop.task.template"]
        cls.tt_customer = TaskTemplate.create(
            {
                "name": "Customer profile",
                "sequence": 10,
                "stage_id": cls.sop_stage_contact.id,
                "kind": "fields",
                "scope": "customer",
                "field_ids": [
                    (6, 0, (cls.field_partner_gender + cls.field_partner_age).ids)
                ],
                "guidance": "<p>Ask <b>politely</b>.</p>",
            }
        )
        cls.tt_visit = TaskTemplate.create(
            {
                "name": "Visit data",
                "sequence": 20,
                "stage_id": cls.sop_stage_contact.id,
                "kind": "fields",
                "scope": "opportunity",
                "field_ids": [
                    (6, 0, (cls.field_lead_companions + cls.field_lead_decision).ids)
                ],
            }
        )
        cls.tt_script = TaskTemplate.create(
            {
                "name": "Welcome script",
                "sequence": 30,
                "stage_id": cls.sop_stage_contact.id,
                "kind": "script",
                "mail_template_id": cls.mail_template.id,
            }
        )
        cls.tt_call = TaskTemplate.create(
            {
                "name": "Call",
                "sequence": 10,
                "stage_id": cls.sop_stage_pitch.id,
                "kind": "activity",
                "activity_type_id": cls.activity_type_call.id,
            }
        )
        cls.tt_budget = TaskTemplate.create(
            {
                "name": "Budget",
                "sequence": 20,
                "stage_id": cls.sop_stage_pitch.id,
                "kind": "condition",
                "domain": "[('expected_revenue', '>', 0)]",
            }
        )
        cls.tt_manual = TaskTemplate.create(
            {
                "name": "Needs agreed",
                "sequence": 30,
                "stage_id": cls.sop_stage_pitch.id,
                "kind": "manual",
                "required": False,
            }
        )
        cls.customer = cls.env["res.partner"].create(
            {"name": "Wang Fang", "email": "wang.fang@test.example.com"}
        )

    @classmethod
    def _sop_lead_vals(cls, **vals):
        return {
            "name": "SOP Opportunity",
            "type": "opportunity",
            "team_id": cls.sales_team_1.id,
            "user_id": cls.user_sales_salesman.id,
            "stage_id": cls.stage_team1_1.id,
            **vals,
        }

    @classmethod
    def _sop_close_history(cls, count, won, visited, **vals):
        """``count`` closed opportunities of sales_team_1 (won or lost), the
        first ``visited`` of them with their "Visit data" filled; ``vals``:
        more values of each (company, salesperson...)."""
        visit = {"x_sop_companions": "Spouse", "x_sop_decision_makers": "Both"}
        leads = cls.env["crm.lead"].create(
            [
                cls._sop_lead_vals(
                    name=f"History {'won' if won else 'lost'} {index}",
                    **vals,
                    **(visit if index < visited else {}),
                )
                for index in range(count)
            ]
        )
        if won:
            leads.write({"stage_id": cls.stage_team1_won.id})
        else:
            leads.action_set_lost()
        return leads

    def _custom_char_field(self, model, name, label):
        return self.env["ir.model.fields"].create(
            {
                "name": name,
                "model_id": self.env["ir.model"]._get_id(model),
                "field_description": label,
                "ttype": "char",
            }
        )

    def _condition(self, domain, **vals):
        """A condition task of the Pitch stage (raises what the server says)."""
        return self.env["crm.sop.task.template"].create(
            {
                "name": "Condition",
                "stage_id": self.sop_stage_pitch.id,
                "kind": "condition",
                "domain": domain,
                **vals,
            }
        )

    def _task(self, lead, task_template):
        return lead.sop_task_ids.filtered(lambda t: t.task_template_id == task_template)

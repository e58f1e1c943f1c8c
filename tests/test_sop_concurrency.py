from odoo import SUPERUSER_ID, api
from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopConcurrency(TransactionCase):
    """Two transactions: one creates an opportunity while the other adds a
    task to its playbook. Neither sees the other's rows (REPEATABLE READ), so
    the opportunity is created without the new task; the engine heals it on
    the opportunity's next evaluation, and a gate counts the missing task as
    not done until then."""

    def setUp(self):
        super().setUp()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            team = env["crm.team"].create({"name": "SOP concurrency team"})
            stage_1 = env["crm.stage"].create(
                {"name": "SOP concurrency 1", "sequence": 1, "team_id": team.id}
            )
            stage_2 = env["crm.stage"].create(
                {"name": "SOP concurrency 2", "sequence": 2, "team_id": team.id}
            )
            playbook = env["crm.sop.template"].create(
                {
                    "name": "SOP concurrency playbook",
                    "sequence": 0,
                    "team_ids": [(6, 0, team.ids)],
                    "stage_ids": [
                        (
                            0,
                            0,
                            {
                                "name": "Contact",
                                "crm_stage_id": stage_1.id,
                                "gate": "block",
                                "task_template_ids": [
                                    (0, 0, {"name": "Say hello", "kind": "manual"})
                                ],
                            },
                        )
                    ],
                }
            )
            rep = env["res.users"].create(
                {
                    "name": "SOP concurrency rep",
                    "login": "sop_concurrency_rep",
                    "groups_id": [
                        (6, 0, env.ref("sales_team.group_sale_salesman").ids)
                    ],
                }
            )
            self.ids = {
                "rep": rep.id,
                "team": team.id,
                "stages": (stage_1.id, stage_2.id),
                "playbook": playbook.id,
                "sop_stage": playbook.stage_ids.id,
            }
            self.envs = []
            self.addCleanup(self._clean_up)
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        self.envs = [
            api.Environment(self.env.registry.cursor(), SUPERUSER_ID, {})
            for _i in range(2)
        ]

    def _clean_up(self):
        for env in self.envs:
            env.cr.rollback()
            env.cr.close()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["crm.lead"].with_context(active_test=False).search(
                [("team_id", "=", self.ids["team"])]
            ).unlink()
            playbook = env["crm.sop.template"].browse(self.ids["playbook"])
            # not the engine's history rules: remove every trace of the test
            env.cr.execute(
                "DELETE FROM crm_sop_task_template WHERE template_id = %s",
                [playbook.id],
            )
            env.cr.execute(
                "DELETE FROM crm_sop_stage WHERE template_id = %s", [playbook.id]
            )
            env.cr.execute("DELETE FROM crm_sop_template WHERE id = %s", [playbook.id])
            env["crm.stage"].browse(self.ids["stages"]).unlink()
            env["crm.team"].browse(self.ids["team"]).unlink()
            rep = env["res.users"].browse(self.ids["rep"])
            partner = rep.partner_id
            rep.unlink()
            partner.unlink()
            env["crm.sop.task.template"]._sop_clear_caches()
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit

    def test_task_added_while_a_lead_is_created(self):
        env_lead, env_config = self.envs
        stage_1, stage_2 = self.ids["stages"]
        env_lead.cr.execute("SELECT 1")  # the lead's transaction starts first
        lead = env_lead["crm.lead"].create(
            {
                "name": "Created meanwhile",
                "type": "opportunity",
                "team_id": self.ids["team"],
                "user_id": self.ids["rep"],
                "stage_id": stage_1,
            }
        )
        companions = env_config["ir.model.fields"]._get("crm.lead", "x_sop_companions")
        new_task = env_config["crm.sop.task.template"].create(
            {
                "name": "Who came along",
                "stage_id": self.ids["sop_stage"],
                "kind": "fields",
                "field_ids": [(6, 0, companions.ids)],
            }
        )
        env_config.cr.commit()
        env_lead.cr.commit()

        env = env_lead
        env.invalidate_all()
        env.registry.clear_cache("default")
        lead = env["crm.lead"].browse(lead.id)
        self.assertNotIn(
            new_task.id,
            lead.sop_task_ids.task_template_id.ids,
            "the race happened: the new task could not reach the new lead",
        )
        # the gate counts the missing task as not done (and gives it)
        env["crm.sop.task"].search([("lead_id", "=", lead.id)]).sudo().write(
            {"state": "done"}
        )
        with self.assertRaises(UserError) as error:
            lead.with_user(self.ids["rep"]).write({"stage_id": stage_2})
        self.assertIn("Who came along", str(error.exception))
        # the next evaluation heals it
        lead.write({"x_sop_companions": "Her sister"})
        task = lead.sop_task_ids.filtered(
            lambda t: t.task_template_id.id == new_task.id
        )
        self.assertEqual(task.state, "done")
        env.cr.commit()


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopUndoRace(TransactionCase):
    """The mail queue takes a queued script email (it writes the mail before
    handing it to the mail server) while its rep taps Undo: the Undo is too
    late and changes nothing; once the queue let go, Undo takes it back."""

    def setUp(self):
        super().setUp()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            rep = env["res.users"].create(
                {
                    "name": "SOP undo rep",
                    "login": "sop_undo_rep",
                    "email": "sop.undo.rep@example.com",
                    "groups_id": [
                        (6, 0, env.ref("sales_team.group_sale_salesman").ids)
                    ],
                }
            )
            customer = env["res.partner"].create(
                {"name": "SOP undo customer", "email": "undo.customer@example.com"}
            )
            lead = env["crm.lead"].create(
                {
                    "name": "SOP undo deal",
                    "type": "opportunity",
                    "user_id": rep.id,
                    "partner_id": customer.id,
                    "stage_id": env.ref("crm.stage_lead1").id,
                }
            )
            welcome = env.ref("crm_sales_sop.crm_sop_task_welcome")
            task = lead.sop_task_ids.filtered(lambda t: t.task_template_id == welcome)
            notice = task.with_user(rep).action_sop_send_script()
            self.ids = {
                "rep": rep.id,
                "customer": customer.id,
                "lead": lead.id,
                "task": task.id,
                "send": notice["params"]["send_id"],
            }
            self.envs = []
            self.addCleanup(self._clean_up)
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit
        self.envs = [
            api.Environment(self.env.registry.cursor(), SUPERUSER_ID, {})
            for _i in range(2)
        ]

    def _clean_up(self):
        for env in self.envs:
            env.cr.rollback()
            env.cr.close()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            lead = env["crm.lead"].browse(self.ids["lead"])
            env["mail.mail"].search(
                [("model", "=", "crm.lead"), ("res_id", "=", lead.id)]
            ).unlink()
            lead.unlink()
            env["res.partner"].browse(self.ids["customer"]).unlink()
            rep = env["res.users"].browse(self.ids["rep"])
            partner = rep.partner_id
            rep.unlink()
            partner.unlink()
            # two real transactions are the point of this test
            cr.commit()  # pylint: disable=invalid-commit

    def test_undo_while_the_queue_sends(self):
        env_queue, env_rep = self.envs
        env_rep = env_rep(user=self.ids["rep"])
        mail = env_queue["mail.mail"].search(
            [
                ("model", "=", "crm.lead"),
                ("res_id", "=", self.ids["lead"]),
                ("recipient_ids", "in", self.ids["customer"]),
            ]
        )
        self.assertEqual(mail.state, "outgoing")
        # the queue's first write on the mail, before the SMTP session
        mail.write({"state": "exception"})
        env_queue.flush_all()
        send = env_rep["crm.sop.script.send"].browse(self.ids["send"])
        with self.assertRaisesRegex(UserError, "Too late to undo"):
            send.action_sop_undo()
        task = env_rep["crm.sop.task"].browse(self.ids["task"])
        self.assertEqual(task.state, "done")
        self.assertTrue(send.exists())
        # the queue let it go (its attempt rolled back): Undo takes it back
        env_queue.cr.rollback()
        send.action_sop_undo()
        env_rep.invalidate_all()
        self.assertFalse(send.exists())
        self.assertEqual(task.state, "todo")
        self.assertFalse(mail.with_env(env_rep).sudo().exists())

from contextlib import contextmanager

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import tagged, users

from .common import TestSopCommon, sop_migration


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopStageMove(TestSopCommon):
    """The pipeline stage moves the product records itself
    (crm.sop.stage.move): on create in a stage and on every stage write,
    whatever tracking_disable says; nobody else writes them."""

    def _moves(self, lead):
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT stage_from_id, stage_id, user_id, company_id, date
                 FROM crm_sop_stage_move WHERE lead_id = %s ORDER BY date, id""",
            (lead.id,),
        )
        return self.env.cr.fetchall()

    @contextmanager
    def _capture(self):
        """The statements run on the test cursor (Odoo's own capture of
        assertQueries)."""
        queries = []
        with contextmanager(self._patchExecute)(queries, True):
            yield queries

    @users("user_sales_salesman")
    def test_moves_recorded_without_tracking(self):
        """Created in New, moved to Proposition, then to Won, all with
        tracking_disable: three moves, by the rep, in the lead's company; a
        write of the same stage is no move."""
        Lead = self.env["crm.lead"].with_context(tracking_disable=True)
        new, proposition = self.stage_team1_1, self.stage_team1_2
        lead = Lead.create(self._sop_lead_vals(name="Silent"))
        lead.write({"stage_id": proposition.id})
        lead.write({"stage_id": proposition.id})
        lead.write({"stage_id": self.stage_team1_won.id})
        uid, company = self.env.uid, self.env.company.id
        self.assertEqual(
            [row[:4] for row in self._moves(lead)],
            [
                (None, new.id, uid, company),
                (new.id, proposition.id, uid, company),
                (proposition.id, self.stage_team1_won.id, uid, company),
            ],
        )
        # and no tracking message says so
        self.assertFalse(lead.message_ids.tracking_value_ids)

    @users("user_sales_salesman")
    def test_nobody_writes_the_log(self):
        lead = self.env["crm.lead"].create(self._sop_lead_vals(name="Mine"))
        before = self._moves(lead)
        Move = self.env["crm.sop.stage.move"]
        vals = {
            "lead_id": lead.id,
            "stage_id": self.stage_team1_won.id,
            "date": fields.Datetime.now(),
        }
        # a rep, the manager, even the superuser through the ORM
        for env in (self.env, Move.with_user(self.user_sales_manager).env):
            with self.assertRaises(AccessError):
                env["crm.sop.stage.move"].create(vals)
        move = Move.sudo().search([("lead_id", "=", lead.id)])
        self.assertEqual(len(move), 1)
        with self.assertRaises(AccessError):
            Move.sudo().create(vals)
        with self.assertRaises(AccessError):
            move.sudo().write({"stage_id": self.stage_team1_won.id})
        with self.assertRaises(AccessError):
            move.sudo().unlink()
        # a rep has no read access either; a manager reads
        with self.assertRaises(AccessError):
            Move.search([])
        self.assertEqual(
            Move.with_user(self.user_sales_manager)
            .search([("lead_id", "=", lead.id)])
            .stage_id,
            self.stage_team1_1,
        )
        self.assertEqual(self._moves(lead), before)

    @users("user_sales_manager")
    def test_one_insert_per_batch(self):
        """A create of 1 or 30 leads, a stage write of 1 or 30: one INSERT
        into the log each, whatever the batch."""
        Lead = self.env["crm.lead"]
        for size in (1, 30):
            with self._capture() as queries:
                leads = Lead.create(
                    [self._sop_lead_vals(name=f"Batch {i}") for i in range(size)]
                )
            inserts = [q for q in queries if "INSERT INTO crm_sop_stage_move" in q]
            self.assertEqual(len(inserts), 1, size)
            with self._capture() as queries:
                leads.write({"stage_id": self.stage_team1_2.id})
            inserts = [q for q in queries if "INSERT INTO crm_sop_stage_move" in q]
            self.assertEqual(len(inserts), 1, size)
            self.assertEqual(
                self.env["crm.sop.stage.move"].search_count(
                    [("lead_id", "in", leads.ids)]
                ),
                2 * size,
            )

    def test_migration_fills_the_log_from_tracking(self):
        """The one-off backfill of 18.0.1.2.0: the creation stage, then each
        tracked stage_id move, with its date and author."""
        lead = self.env["crm.lead"].create(self._sop_lead_vals(name="Old"))
        # a stage_id tracking message, as the chatter of a deal moved before
        # the upgrade holds one
        message = lead.with_user(self.user_sales_salesman).message_post(
            body="Stage changed",
            date="2031-01-06 10:00:00",
            tracking_value_ids=[
                (
                    0,
                    0,
                    {
                        "field_id": self.env["ir.model.fields"]
                        ._get("crm.lead", "stage_id")
                        .id,
                        "old_value_integer": self.stage_team1_1.id,
                        "new_value_integer": self.stage_team1_2.id,
                    },
                )
            ],
        )
        # as before the upgrade: an empty log
        self.env.flush_all()
        self.env.cr.execute("DELETE FROM crm_sop_stage_move")
        module = sop_migration("18.0.1.2.0", "post-migration.py")
        module.migrate(self.env.cr, "18.0.1.1.0")
        self.assertEqual(
            self._moves(lead),
            [
                (
                    None,
                    self.stage_team1_1.id,
                    lead.create_uid.id,
                    lead.company_id.id,
                    lead.create_date,
                ),
                (
                    self.stage_team1_1.id,
                    self.stage_team1_2.id,
                    self.user_sales_salesman.id,
                    lead.company_id.id,
                    message.date,
                ),
            ],
        )
        # once: run again, nothing more
        module.migrate(self.env.cr, "18.0.1.1.0")
        self.assertEqual(len(self._moves(lead)), 2)

    def test_install_seeds_the_deals_without_moves(self):
        """Deals that existed before the addon get their moves from tracking
        at install; deals already logged are left alone."""
        old = self.env["crm.lead"].create(self._sop_lead_vals(name="Before"))
        logged = self.env["crm.lead"].create(self._sop_lead_vals(name="Logged"))
        self.env.flush_all()
        self.env.cr.execute(
            "DELETE FROM crm_sop_stage_move WHERE lead_id = %s", [old.id]
        )
        before = self._moves(logged)
        from .. import _crm_sop_post_init

        _crm_sop_post_init(self.env)
        self.assertEqual(
            [move[:2] for move in self._moves(old)], [(None, self.stage_team1_1.id)]
        )
        self.assertEqual(self._moves(logged), before)

from odoo import api, fields, models
from odoo.tools import SQL

from .crm_sop_engine import sop_id_array


class CrmSopEvaluationQueue(models.Model):
    """Deals whose tasks wait for the engine's evaluation: a manager's
    playbook change (a task added to a live playbook, a task's condition or
    fields changed, a SOP stage moved) reached more deals than one request
    evaluates, or a rep's transaction held some of them meanwhile. The
    setup job evaluates them batch by batch (``_cron_sop_setup``).

    Queued without writing the deals: a manager's change over a large
    pipeline then neither waits for the reps' saves nor meets them (a rep's
    deal saved after the manager's transaction began, then written by it,
    is a serialization failure). Written by the engine only, in SQL."""

    _name = "crm.sop.evaluation.queue"
    _description = "Sales SOP Deals Waiting for Evaluation"
    _log_access = False
    _rec_name = "lead_id"

    lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        required=True,
        readonly=True,
        ondelete="cascade",
    )

    _sql_constraints = [
        ("lead_uniq", "UNIQUE (lead_id)", "A deal waits for evaluation once."),
    ]

    @api.model
    def _sop_add(self, lead_ids):
        """Queue the deals ``lead_ids`` (those already queued stay once)."""
        if lead_ids:
            self.env.cr.execute(
                SQL(
                    """INSERT INTO crm_sop_evaluation_queue (lead_id)
                       SELECT unnest(%s::integer[])
                       ON CONFLICT (lead_id) DO NOTHING""",
                    sop_id_array(sorted(lead_ids)),
                )
            )

    @api.model
    def _sop_next(self, limit):
        """(ids, count): the ``limit`` newest deals queued, and how many
        wait in all."""
        self.env.cr.execute("SELECT COUNT(*) FROM crm_sop_evaluation_queue")
        count = self.env.cr.fetchone()[0]
        if not (count and limit):
            return [], count
        self.env.cr.execute(
            SQL(
                """SELECT lead_id FROM crm_sop_evaluation_queue
                 ORDER BY lead_id DESC LIMIT %s""",
                limit,
            )
        )
        return [row[0] for row in self.env.cr.fetchall()], count

    @api.model
    def _sop_remove(self, lead_ids):
        """The deals ``lead_ids`` were evaluated: out of the queue."""
        if lead_ids:
            self.env.cr.execute(
                SQL(
                    "DELETE FROM crm_sop_evaluation_queue WHERE lead_id = ANY(%s)",
                    list(lead_ids),
                )
            )

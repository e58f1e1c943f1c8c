import logging
from collections import defaultdict
from datetime import timedelta

from odoo import api, fields, models
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

# minutes before the job tries again when it met a close itself
SOP_SCORING_RETRY_MINUTES = 1


# the deal's close, here with the job that finishes it: one file for the
# concept, as the prediction's (crm_sop_prediction.py)
# pylint: disable=consider-merging-classes-inherited
class CrmLead(models.Model):
    _inherit = "crm.lead"

    def _pls_increment_frequencies(self, from_state=None, to_state=None):
        """Core's live increment of predictive lead scoring's frequency
        table when deals close or reopen, which a close that meets another
        one of its team leaves to a job instead of failing.

        A won deal adds to the row of every pipeline stage of its team (and
        to those of its other scoring fields): any two closes of one team at
        once update the same rows. The second to commit cannot, in
        REPEATABLE READ, update what the first committed after it began (a
        serialization failure): Odoo retries the whole request, up to five
        times, waiting up to 2, 4, 8 and 16 s between tries. In the load
        bench (16 reps of one team on 4 workers, core crm alone) about one
        close in six was retried, its p95 1.6-1.9 s, and a few in a
        thousand failed after the fifth try.

        Here the team's rows are locked first (``_sop_lock_frequencies``, in
        a savepoint), then core's update runs. When the lock meets such a
        close, committed since this transaction began or still in progress
        (not waited for), the savepoint is undone, the increments are kept
        (``crm.sop.scoring.increment``) and the job adds them in a moment,
        in a transaction that sees the other close: the counts end as they
        would have, a few seconds later. Without a concurrent close, nothing
        changes but the lock: core's update, in this transaction, as before.

        The frequencies only weigh on the automated probability of the deals
        computed afterwards; core's daily job makes the whole table anew
        from the closed deals anyway."""
        if not self:
            return super()._pls_increment_frequencies(
                from_state=from_state, to_state=to_state
            )
        try:
            # not a flushing savepoint: that would run the precommit hooks
            # (the deal's tracking message, its log message) in the middle
            # of its write; the lock is plain SQL, nothing of the ORM to undo
            with self.env.cr.savepoint(flush=False):
                self._sop_lock_frequencies()
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as error:
            _logger.info(
                "Sales SOP: lead scoring's frequencies of %s deal(s) met a "
                "concurrent close (%s), left to the job",
                len(self),
                error.pgcode,
            )
        else:
            # the rows are this transaction's until it ends: core's update
            # cannot meet another close
            return super()._pls_increment_frequencies(
                from_state=from_state, to_state=to_state
            )
        new_frequencies_by_team, _existing = self._pls_prepare_update_frequency_table(
            target_state=from_state or to_state
        )
        self.env["crm.sop.scoring.increment"]._sop_defer(
            new_frequencies_by_team, 1 if to_state else -1
        )
        return None

    def _sop_lock_frequencies(self):
        """Lock the frequency rows these deals' close may update: their
        teams' (and those of no team, for a deal without one), in order.
        A row another close updated since this transaction began, or holds,
        is a conflict here, where it is expected (not logged as a bad query),
        rather than in core's update; once locked, no other
        close changes them before this transaction ends, and two closes of a
        team no longer deadlock on rows updated in different orders."""
        self.env["crm.sop.scoring.increment"]._sop_lock(
            self.team_id, any(not lead.team_id for lead in self)
        )


class CrmSopScoringIncrement(models.Model):
    """Increments of predictive lead scoring's frequency table
    (``crm.lead.scoring.frequency``) that a deal's close could not make
    because another close of its team had just made them: added by a job
    moments later (``crm.lead._pls_increment_frequencies``). Written and
    read by the engine only; a row is deleted once added."""

    _name = "crm.sop.scoring.increment"
    _description = "Sales SOP Lead Scoring Increments Left to a Job"
    _order = "id"
    _log_access = False

    team_id = fields.Many2one("crm.team", readonly=True, ondelete="cascade")
    variable = fields.Char(readonly=True, required=True)
    value = fields.Char(readonly=True, required=True)
    won_count = fields.Float(readonly=True)
    lost_count = fields.Float(readonly=True)
    # +1: a deal won or lost; -1: a deal reopened from won or lost
    step = fields.Integer(readonly=True, required=True)

    @api.model
    def _sop_defer(self, new_frequencies_by_team, step):
        """Keep core's increments ``{team id or 0: {variable: {value:
        {'won': n, 'lost': n}}}}`` by ``step``, and trigger the job."""
        rows = [
            {
                "team_id": team_id or False,
                "variable": variable,
                "value": value,
                "won_count": counts["won"],
                "lost_count": counts["lost"],
                "step": step,
            }
            for team_id, variables in new_frequencies_by_team.items()
            for variable, values in variables.items()
            for value, counts in values.items()
        ]
        if not rows:
            return
        # sudo: the engine's own queue and job, whoever closed the deal;
        # what is kept was computed by core from the deal's own values
        self.sudo().create(rows)
        self.env.ref("crm_sales_sop.ir_cron_sop_scoring_increment").sudo()._trigger()

    @api.model
    def _sop_lock(self, teams, no_team):
        """Lock the frequency rows of ``teams`` (and of no team if
        ``no_team``) in order, a conflict raised without a bad query
        logged. A row another transaction holds is a conflict at once
        (NOWAIT), not waited for: that transaction is a close (or the job)
        that updates the row, so that once it commits this one could not
        update it anyway (REPEATABLE READ), and meanwhile the request would
        hold one of the server's workers, waiting, while the other reps'
        requests queue for it."""
        self.env.cr.execute(
            SQL(
                """SELECT id FROM crm_lead_scoring_frequency
                    WHERE team_id = ANY(%s) OR (%s AND team_id IS NULL)
                    ORDER BY id FOR UPDATE NOWAIT""",
                teams.ids,
                no_team,
            ),
            log_exceptions=False,
        )

    @api.model
    def _cron_sop_add(self):
        """The job: add the increments kept to the frequency table, as core
        would have (``_pls_update_frequency_table``: a count that would
        fall to 0 is 0.1, a value not there yet is created with its counts
        + 0.1), increments first, then decrements, oldest first within
        each. Reps' closes meeting it are left to it again. It locks the
        rows first; a close it meets there leaves the increments kept, and
        the job comes back a minute later."""
        self.env.cr.execute(
            """SELECT id FROM crm_sop_scoring_increment
                ORDER BY id FOR UPDATE SKIP LOCKED"""
        )
        increments = self.browse(row[0] for row in self.env.cr.fetchall())
        if not increments:
            return
        try:
            with self.env.cr.savepoint(flush=False):
                self._sop_lock(
                    increments.team_id, any(not row.team_id for row in increments)
                )
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as error:
            _logger.info(
                "Sales SOP: adding lead scoring's frequencies met a close "
                "(%s), undone and tried again shortly",
                error.pgcode,
            )
            self.env.ref("crm_sales_sop.ir_cron_sop_scoring_increment").sudo()._trigger(
                at=self.env.cr.now() + timedelta(minutes=SOP_SCORING_RETRY_MINUTES)
            )
            return
        for step in (1, -1):
            increments.filtered(lambda row, s=step: row.step == s)._sop_add(step)
        increments.unlink()

    def _sop_add(self, step):
        """Add these increments by ``step`` through core's update of the
        table, with the frequencies as they are now."""
        if not self:
            return
        new_frequencies_by_team = defaultdict(
            lambda: defaultdict(lambda: defaultdict(lambda: {"won": 0, "lost": 0}))
        )
        for row in self:
            counts = new_frequencies_by_team[row.team_id.id or 0][row.variable][
                row.value
            ]
            counts["won"] += row.won_count
            counts["lost"] += row.lost_count
        variables = sorted(set(self.mapped("variable")))
        teams = self.team_id
        domain = [("variable", "in", variables)]
        domain += (
            ["|", ("team_id", "in", teams.ids), ("team_id", "=", False)]
            if teams
            else [("team_id", "=", False)]
        )
        # core's own reading of the rows to update
        # (crm.lead._pls_prepare_update_frequency_table)
        existing_frequencies_by_team = {}
        for frequency in self.env["crm.lead.scoring.frequency"].search_read(
            domain, ["team_id", "variable", "value", "won_count", "lost_count"]
        ):
            team_id = frequency["team_id"][0] if frequency["team_id"] else 0
            by_variable = existing_frequencies_by_team.setdefault(
                team_id, {variable: {} for variable in variables}
            )
            by_variable[frequency["variable"]][frequency["value"]] = {
                "frequency_id": frequency["id"],
                "won": frequency["won_count"],
                "lost": frequency["lost_count"],
            }
        self.env["crm.lead"]._pls_update_frequency_table(
            new_frequencies_by_team,
            step,
            existing_frequencies_by_team=existing_frequencies_by_team,
        )

from datetime import timedelta

from odoo import api, fields, models

from odoo.addons.gamification.models.gamification_challenge import (
    start_end_date_for_period,
)


class GamificationChallenge(models.Model):
    _inherit = "gamification.challenge"

    def _sop_generate_goals(self):
        """The goals of the running period each participant lacks, created
        in one batch (core creates them one by one). Goals of the period of
        users who no longer take part are removed, as core does."""
        Goal = self.env["gamification.goal"]
        vals_list = []
        for challenge in self:
            start, end = start_end_date_for_period(
                challenge.period, challenge.start_date, challenge.end_date
            )
            domain = [("challenge_id", "=", challenge.id)]
            if start:
                domain.append(("start_date", "=", start))
            if end:
                domain.append(("end_date", "=", end))
            goals = Goal.search_fetch(domain, ["line_id", "user_id"])
            goals.filtered(lambda g, c=challenge: g.user_id not in c.user_ids).unlink()
            existing = {(goal.line_id.id, goal.user_id.id) for goal in goals}
            for line in challenge.line_ids:
                values = {
                    "definition_id": line.definition_id.id,
                    "line_id": line.id,
                    "target_goal": line.target_goal,
                    "state": "inprogress",
                    # as core: start over the limit, so the first update writes
                    "current": min(line.target_goal - 1, 0)
                    if line.condition == "higher"
                    else max(line.target_goal + 1, 0),
                }
                if start:
                    values["start_date"] = start
                if end:
                    values["end_date"] = end
                if challenge.remind_update_delay:
                    values["remind_update_delay"] = challenge.remind_update_delay
                vals_list += [
                    {**values, "user_id": user.id}
                    for user in challenge.user_ids
                    if (line.id, user.id) not in existing
                ]
        return Goal.create(vals_list)

    def _get_topN_users(self, n):
        """As core, but on a challenge of Sales SOP metrics a participant
        who scored nothing (every goal of the period at 0) earns no place:
        the honor roll rewards work, not a tie at zero. With
        ``reward_failure`` core would rank them all. One goal read."""
        top = super()._get_topN_users(n)
        if not self.line_ids or not all(
            self.line_ids.definition_id.mapped("sop_board_metric")
        ):
            return top
        users = [user for user in top if user]
        start, end = start_end_date_for_period(
            self.period, self.start_date, self.end_date
        )
        scored = {
            user.id
            for user in self.env["gamification.goal"]
            .search(
                [
                    ("challenge_id", "=", self.id),
                    ("user_id", "in", [user.id for user in users]),
                    ("start_date", "=", start),
                    ("end_date", "=", end),
                    ("current", ">", 0),
                ]
            )
            .user_id
        }
        kept = [user for user in users if user.id in scored]
        return tuple(kept + [False] * (n - len(kept)))

    def _sop_refresh_goals(self):
        """Recompute the goals of every participant of running challenges, in
        batch, whether or not they were seen online: core's ``_update_all``
        recomputes only users with a recent ``bus_presence``. Same goals as
        core's: open, or reached and ended yesterday at the latest."""
        running = self.filtered(lambda c: c.state == "inprogress")
        if not running:
            return self.env["gamification.goal"]
        running._recompute_challenge_users()
        running._sop_generate_goals()
        yesterday = fields.Date.today() - timedelta(days=1)
        goals = self.env["gamification.goal"].search(
            [
                ("challenge_id", "in", running.ids),
                ("closed", "=", False),
                "|",
                ("state", "=", "inprogress"),
                "&",
                ("state", "=", "reached"),
                ("end_date", ">=", yesterday),
            ]
        )
        goals.update_goal()
        return goals

    @api.model
    def _cron_sop_refresh_honor_roll(self):
        """Scheduled: the honor roll's goals of all participants, in batch.
        Starting, closing and rewarding stay with core's daily cron."""
        challenge = self.env.ref(
            "crm_sales_sop.challenge_sop_honor_roll", raise_if_not_found=False
        )
        if challenge:
            challenge._sop_refresh_goals()

import bisect
import statistics
from datetime import timedelta

import pytz

from odoo import api, fields, models
from odoo.tools import SQL

from .crm_sop_deal import (
    SOP_LOST_SQL,
    SOP_PROGRESS_BANDS,
    SOP_WON_SQL,
    sop_won_in_stages_sql,
)

# Below this many won AND lost deals in the team's history, a rate says more
# about luck than about the SOP: the floor Microsoft's predictive opportunity
# scoring asks before it scores.
UPLIFT_MIN_WON = 40
UPLIFT_MIN_LOST = 40
# how many of the deal's next open tasks the panel explains
UPLIFT_MAX_TASKS = 5
# the won deals whose time in a SOP stage the deal is compared with: the
# last ones closed, in the last year at most (the procedure and the market
# change); a median of 200 says what a median of 20,000 says, and reading
# them costs the same whatever the history (through the closing dates'
# index, crm_lead_sop_date_closed_index: crm_lead.py's init)
STAGE_DAYS_HISTORY_DAYS = 365
STAGE_DAYS_WON_DEALS = 200


def _odds(probability):
    probability = min(max(probability, 0.01), 0.99)
    return probability / (1 - probability)


def sop_odds_ratio(won_with, lost_with, won_without, lost_without):
    """The odds ratio of a task over the team's closed deals that had it
    (done and won / lost, not done and won / lost): (won_with x
    lost_without) / (won_without x lost_with), each count + 0.5 (Haldane's
    correction, so that an empty cell does not make it 0 or infinite).
    1 (no effect) when no closed deal had the task done, or none left it
    open: there is nothing to compare."""
    if not sop_comparable(won_with, lost_with, won_without, lost_without):
        return 1.0
    return ((won_with + 0.5) * (lost_without + 0.5)) / (
        (won_without + 0.5) * (lost_with + 0.5)
    )


def sop_comparable(won_with, lost_with, won_without, lost_without):
    """Closed deals on both sides: some had the task done, some did not."""
    return bool((won_with + lost_with) and (won_without + lost_without))


def sop_probability_if_done(
    probability, won_with, lost_with, won_without, lost_without
):
    """The chance (0-100, one decimal) of a deal at ``probability`` (0-100)
    once a task is done: the task's odds ratio (``sop_odds_ratio``) moves the
    deal's odds as one more naive-Bayes variable would. The one formula of
    the uplift panel (get_sop_uplift) and of the coaching queue
    (crm.sop.coaching)."""
    ratio = sop_odds_ratio(won_with, lost_with, won_without, lost_without)
    odds = _odds((probability or 0.0) / 100) * ratio
    return round(100 * odds / (1 + odds), 1)


class CrmLead(models.Model):
    _inherit = "crm.lead"

    # written by the engine with the SOP summary (_sop_update_summary) while
    # the deal is open, then frozen: won and lost deals keep the band they
    # closed with, which predictive lead scoring learns from (crm.pls_fields)
    sop_progress_band = fields.Selection(
        SOP_PROGRESS_BANDS,
        string="SOP Progress Band",
        readonly=True,
        copy=False,
        help="The SOP progress in quarters, frozen when the deal is won or lost: "
        "a variable of predictive lead scoring.",
    )

    # ------------------------------------------------------------
    # UPLIFT: what completing the next tasks is expected to do to the chance
    # ------------------------------------------------------------

    def _sop_closed_sql(self):
        """SQL fragments (won, lost) on crm_lead ``l`` and crm_stage ``s``, as
        predictive lead scoring counts them: won in a won stage, lost
        archived at probability 0."""
        return SQL(SOP_WON_SQL), SQL(SOP_LOST_SQL)

    def _sop_history_domain_sql(self):
        """The deals the lead's history is read from: the closed
        opportunities of its team (of no team when it has none) and of its
        company, never another company's, even in a team two companies
        share. A deal without company reads the deals without company (of
        its team): shared as it is, they belong to no company. And only of
        the companies the user works in (crm.sop.history.count's
        ``_sop_companies_sql``)."""
        team = (
            SQL("l.team_id = %s", self.team_id.id)
            if self.team_id
            else SQL("l.team_id IS NULL")
        )
        return SQL(
            "%s AND l.company_id IS NOT DISTINCT FROM %s AND %s",
            team,
            self.company_id.id or None,
            self.env["crm.sop.history.count"]._sop_companies_sql(),
        )

    @api.readonly
    def get_sop_uplift(self):
        """How much completing each of the deal's next open SOP tasks is
        expected to raise its chance to close, with the evidence.

        ``probability`` is the deal's chance now (Odoo's, learnt by predictive
        lead scoring). For a task, the closed deals of the team that had it
        are split by whether it was done: ``won_with`` / ``lost_with`` (done),
        ``won_without`` / ``lost_without`` (left open). The task's odds ratio,
        (won_with x lost_without) / (won_without x lost_with), each count + 0.5
        (Haldane's correction, so that an empty cell does not make it 0 or
        infinite), moves the deal's odds as one more naive-Bayes variable
        would: ``probability_if_done``. Below 40 won and 40 lost deals in the
        team's history, ``enough_history`` is False and no figure is given
        but the counts; nor for a task no closed deal had done (or left
        open). The history is the deal's company's (``_sop_history_domain_sql``).
        Also the days in the SOP stage (``_sop_stage_days``).
        """
        self.ensure_one()
        self.check_access("read")
        history = self._sop_history_domain_sql()
        # the team's history is aggregated, never shown deal by deal; the rep
        # may read this deal (checked above)
        company = self.company_id.id or None
        History = self.env["crm.sop.history.count"]
        won, lost = History._sop_totals(history).get(company, (0, 0))
        enough = won >= UPLIFT_MIN_WON and lost >= UPLIFT_MIN_LOST
        probability = self.probability or 0.0
        result = {
            "enough_history": enough,
            "won": won,
            "lost": lost,
            # the floor, served to the panel rather than copied into it
            "min_won": UPLIFT_MIN_WON,
            "min_lost": UPLIFT_MIN_LOST,
            "probability": probability,
            "expected_revenue": self.expected_revenue,
            "currency_id": self.company_currency.id,
            "tasks": [],
        }
        # sudo: the deal's own tasks, read as the engine orders them
        open_tasks = self.sudo().sop_task_ids.filtered(
            lambda task: task.state == "todo"
        )
        if not open_tasks:
            result.update(self._sop_stage_days())
            return result
        next_task = self.sudo().sop_next_task_id
        # the next step first, then in SOP order, from the engine's cached
        # configuration (the SOP stages are not read for it)
        config = self.env["crm.sop.task.template"]._sop_config()
        ordered = open_tasks.sorted(
            lambda t: (
                t != next_task,
                config[t.task_template_id.id].order
                if t.task_template_id.id in config
                else (float("inf"),),
            )
        )[:UPLIFT_MAX_TASKS]
        counts = History._sop_task_counts(history, ordered.task_template_id.ids)
        result.update(self._sop_stage_days())
        for task in ordered:
            won_with, lost_with, won_without, lost_without = counts.get(
                (company, task.task_template_id.id), (0, 0, 0, 0)
            )
            row = {
                "task_id": task.id,
                "name": task.name,
                "probability_if_done": False,
                "won_with": won_with,
                "lost_with": lost_with,
                "won_without": won_without,
                "lost_without": lost_without,
            }
            # no comparison without closed deals on both sides: a task never
            # (or always) done in the team's history says nothing yet
            if enough and sop_comparable(
                won_with, lost_with, won_without, lost_without
            ):
                row["probability_if_done"] = sop_probability_if_done(
                    probability, won_with, lost_with, won_without, lost_without
                )
            result["tasks"].append(row)
        return result

    # ------------------------------------------------------------
    # DAYS IN THE SOP STAGE, against the won deals of the playbook
    # ------------------------------------------------------------

    def _sop_stage_days(self):
        """{'stage_days': whole working days the deal has been in its SOP
        stage, 'won_median_days': the median of the last won deals
        (``STAGE_DAYS_WON_DEALS``, closed in the last year) that stood in
        that SOP stage (the same playbook's stage), of the deal's company (as
        the uplift's history), 'won_stage_deals': how many stints}, in
        working days of the company's calendar (public holidays
        excluded), from the SOP stage history."""
        stage = self.sudo().sop_stage_id
        empty = {"stage_days": False, "won_median_days": False, "won_stage_deals": 0}
        if not stage:
            return empty
        company = self.company_id or self.env.company
        calendar = company.resource_calendar_id
        if not calendar:
            return empty
        tz_name = calendar.tz or "UTC"
        now = self.env.cr.now()
        # sudo: the history is aggregated into one median, never shown deal
        # by deal; the rep may read this deal (checked by the caller). The
        # last won deals are found from the newest closing date back (the
        # partial index of the closed deals' dates), so that the read does
        # not grow with the history; won as predictive lead scoring counts
        # them (active in a won stage), the won stages' ids given: joined to
        # the stages, PostgreSQL misjudged how many deals it would read and
        # aggregated every stint of the stage instead (load test: 3.7 ->
        # 1.4 ms run, 1.7 -> 1.4 ms planned, the same rows); their stints
        # are read by the deals' ids (the index on deal and stage): joined
        # to the deals found, PostgreSQL read every stint of the stage
        # instead, a scan that grew with the history (load test, 21,600
        # stints: 2.1 -> 0.9 ms); each stint's first and last day in the
        # calendar's time zone, from PostgreSQL
        self.env.cr.execute(
            SQL(
                """WITH won AS (
                       SELECT l.id, l.date_closed
                         FROM crm_lead l
                        WHERE l.active AND l.date_closed IS NOT NULL
                          AND l.date_closed >= %(since)s AND %(won)s
                          AND l.company_id IS NOT DISTINCT FROM %(company)s
                          AND %(companies)s
                          AND EXISTS (SELECT 1 FROM crm_sop_stage_log g
                                       WHERE g.lead_id = l.id
                                         AND g.sop_stage_id = %(stage)s)
                     ORDER BY l.date_closed DESC, l.id DESC
                        LIMIT %(limit)s
                   )
                   SELECT FALSE, g.date_start,
                          (timezone(%(tz)s, timezone('UTC', g.date_start)))::date,
                          (timezone(%(tz)s, timezone('UTC',
                              COALESCE(g.date_end, w.date_closed))))::date
                     FROM crm_sop_stage_log g
                     JOIN won w ON w.id = g.lead_id
                    WHERE g.lead_id = ANY(ARRAY(SELECT id FROM won))
                      AND g.sop_stage_id = %(stage)s
                      AND NOT (g.lead_id = %(lead)s AND g.date_end IS NULL)
                    UNION ALL
                   SELECT TRUE, g.date_start,
                          (timezone(%(tz)s, timezone('UTC', g.date_start)))::date,
                          NULL
                     FROM crm_sop_stage_log g
                    WHERE g.lead_id = %(lead)s AND g.sop_stage_id = %(stage)s
                      AND g.date_end IS NULL""",
                lead=self.id,
                company=self.company_id.id or None,
                companies=self.env["crm.sop.history.count"]._sop_companies_sql(),
                tz=tz_name,
                stage=stage.id,
                won=sop_won_in_stages_sql(self.env["crm.stage"]._sop_won_ids()),
                since=now - timedelta(days=STAGE_DAYS_HISTORY_DAYS),
                limit=STAGE_DAYS_WON_DEALS,
            )
        )
        rows = self.env.cr.fetchall()
        if not rows:
            return empty
        work_days = self.env["crm.sop.engine"]._sop_work_days(
            calendar,
            company,
            min(start for _mine, start, _first, _last in rows),
            STAGE_DAYS_HISTORY_DAYS // 7 + 1,
            now + timedelta(days=1),
        )
        today = pytz.utc.localize(now).astimezone(pytz.timezone(tz_name)).date()

        def working_days(start_day, end_day):
            return max(
                bisect.bisect_left(work_days, end_day)
                - bisect.bisect_right(work_days, start_day),
                0,
            )

        mine = [
            working_days(first, today) for is_mine, _s, first, _l in rows if is_mine
        ]
        won = [
            working_days(first, last)
            for is_mine, _s, first, last in rows
            if not is_mine
        ]
        return {
            "stage_days": mine[0] if mine else False,
            "won_median_days": statistics.median(won) if won else False,
            "won_stage_deals": len(won),
        }

import bisect
import logging
from collections import defaultdict
from datetime import datetime, time, timedelta

import psycopg2
import pytz

from odoo import api, models
from odoo.tools import SQL

from .crm_sop_stage import SOP_STALL_DAYS_MAX

_logger = logging.getLogger(__name__)

# how far back the stall pass reads a calendar's working days, beyond the
# largest stall days: a deal that has not moved for longer is counted on this
# window only (enough for any calendar with one working day a week and a
# month of holidays)
STALL_WINDOW_WEEKS_PER_DAY = 1
STALL_WINDOW_MARGIN_DAYS = 31


class CrmSopTask(models.Model):
    """The engine, stalled deals: an open opportunity whose SOP has not moved
    (``crm.lead.sop_stage_date``, set by the summary update) for the
    ``stall_days`` of its SOP stage, counted in working days of its company's
    calendar, is flagged ``sop_stalled``. Moving the SOP clears the flag (in
    ``_sop_update_summary``); this pass, run by the reminder cron, sets it."""

    _inherit = "crm.sop.task"

    @api.model
    def _sop_flag_stalled(self, now=None):
        """Flag the stalled opportunities and clear the flag of those that no
        longer are (closed, stage without stall days, calendar changed), in
        one pass: one SELECT of the candidates, the working days of each
        company calendar once, two UPDATEs. Returns the ids now stalled.

        Each company is counted in a savepoint: a company whose calendar
        cannot be read (a time zone the server does not know, ...) is logged
        and skipped, its deals keep their flag, the other companies' deals
        are flagged. Stall days past the bound (a database that held them
        before it existed) never overflow: the candidates are read on at
        most the bound, the exact count still compares with the stage's days.

        A deal is stalled once ``stall_days`` whole working days have passed
        between the day its SOP last moved and today (both in the calendar's
        time zone): moved on a Monday with 2 stall days, it is stalled from
        Thursday on (Tuesday and Wednesday passed)."""
        now = now or self.env.cr.now()
        Lead = self.env["crm.lead"]
        Lead.flush_model(
            [
                "sop_stage_id",
                "sop_stage_date",
                "sop_stalled",
                "sop_next_task_id",
                "active",
                "probability",
                "company_id",
            ]
        )
        self.env["crm.sop.stage"].flush_model(["stall_days"])
        # calendar days bound working days from above: only leads still for
        # stall_days calendar days (one more for time zones) can be stalled
        self.env.cr.execute(
            SQL(
                """SELECT l.id, l.company_id, l.sop_stage_date, s.stall_days
                     FROM crm_lead l
                     JOIN crm_sop_stage s ON s.id = l.sop_stage_id
                    WHERE l.active AND COALESCE(l.probability, 0) < 100
                      AND l.sop_next_task_id IS NOT NULL
                      AND s.stall_days > 0
                      AND l.sop_stage_date < %s - make_interval(
                              days => LEAST(s.stall_days, %s) - 1)""",
                now,
                SOP_STALL_DAYS_MAX,
            )
        )
        by_company = defaultdict(list)
        for lead_id, company_id, stage_date, stall_days in self.env.cr.fetchall():
            by_company[company_id or self.env.company.id].append(
                (lead_id, stage_date, stall_days)
            )
        stalled = []
        skipped = []  # the deals of a company that failed keep their flag
        companies = self.env["res.company"].browse(list(by_company))
        companies.fetch(["name", "resource_calendar_id"])
        for company in companies:
            rows = by_company[company.id]
            try:
                # no write inside: nothing to flush, only the reads to undo
                with self.env.cr.savepoint(flush=False):
                    stalled += self._sop_stalled_of_company(company, rows, now)
            except psycopg2.OperationalError:
                raise  # the server or the connection failed, not the company
            except Exception:
                _logger.exception(
                    "Sales SOP: stalled deals of company %s (id %s) not "
                    "counted, its %s deals keep their flag; other companies "
                    "go on",
                    company.name,
                    company.id,
                    len(rows),
                )
                skipped += [lead_id for lead_id, _date, _days in rows]
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead SET sop_stalled = FALSE
                    WHERE sop_stalled AND NOT id = ANY(%s)""",
                stalled + skipped,
            )
        )
        cleared = self.env.cr.rowcount
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead SET sop_stalled = TRUE
                    WHERE id = ANY(%s) AND sop_stalled IS NOT TRUE""",
                stalled,
            )
        )
        if cleared or self.env.cr.rowcount:
            _logger.info(
                "Sales SOP: %s opportunities stalled (%s newly), %s cleared",
                len(stalled),
                self.env.cr.rowcount,
                cleared,
            )
        Lead.invalidate_model(["sop_stalled"])
        return stalled

    @api.model
    def _sop_stalled_of_company(self, company, rows, now):
        """Ids of the deals of ``company`` stalled at ``now``, of ``rows``
        [(lead id, SOP stage date, stall days)]: one read of its calendar."""
        calendar = company.resource_calendar_id
        if not calendar:
            return []  # no working days to count
        work_days = self._sop_work_days(
            calendar,
            company,
            min(stage_date for _id, stage_date, _days in rows),
            max(days for _id, _date, days in rows),
            now,
        )
        tz = pytz.timezone(calendar.tz or "UTC")
        today = pytz.utc.localize(now).astimezone(tz).date()
        today_index = bisect.bisect_left(work_days, today)
        stalled = []
        for lead_id, stage_date, stall_days in rows:
            moved_day = pytz.utc.localize(stage_date).astimezone(tz).date()
            passed = today_index - bisect.bisect_right(work_days, moved_day)
            if passed >= stall_days:
                stalled.append(lead_id)
        return stalled

    @api.model
    def _sop_work_days(self, calendar, company, since, max_stall_days, now):
        """The sorted working days of ``calendar`` (its attendances less the
        company's public holidays) from the day after ``since`` to today
        excluded, in the calendar's time zone, reading back at most
        ``max_stall_days`` weeks (bounded) and a month."""
        tz = pytz.timezone(calendar.tz or "UTC")
        today = pytz.utc.localize(now).astimezone(tz).date()
        start_day = max(
            pytz.utc.localize(since).astimezone(tz).date() + timedelta(days=1),
            today
            - timedelta(
                weeks=min(max_stall_days, SOP_STALL_DAYS_MAX)
                * STALL_WINDOW_WEEKS_PER_DAY,
                days=STALL_WINDOW_MARGIN_DAYS,
            ),
        )
        if start_day >= today:
            return []
        intervals = calendar._work_intervals_batch(
            tz.localize(datetime.combine(start_day, time.min)),
            tz.localize(datetime.combine(today, time.min)),
            tz=tz,
            domain=[
                ("time_type", "=", "leave"),
                ("company_id", "in", [False, company.id]),
            ],
        )[False]
        return sorted({start.date() for start, _stop, _meta in intervals})

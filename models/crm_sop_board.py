import datetime
from collections import defaultdict

import pytz
from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from .crm_sop_deal import SOP_WON_SQL

METRICS = ("won_revenue", "high_value_won", "tasks_done", "adherence")
GROUP_BYS = ("user", "team", "company")
PERIODS = {
    "week": relativedelta(weeks=1),
    "month": relativedelta(months=1),
    "quarter": relativedelta(months=3),
}
# additive metrics: a team's or a company's value is divided by its head count;
# adherence is a share, pooled over the team's or company's tasks
PER_HEAD = ("won_revenue", "high_value_won", "tasks_done")
# goals with no start or end date: the whole history
DATE_MIN = datetime.datetime(1970, 1, 1)
DATE_MAX = datetime.datetime(9999, 1, 1)


class CrmSopBoard(models.AbstractModel):
    """The achievement board (成就榜): rankings of salespeople, teams and
    companies by won revenue, high-value customers won, SOP tasks completed
    and SOP adherence, for the current week, month or quarter.

    The same aggregates compute the goals of the honor-roll challenge
    (``_sop_update_goals``), so the board and the goals agree.

    The board is a ranking reps are meant to see: it reads the figures of
    their colleagues, which a rep under "own documents only" may not read as
    records. It aggregates in SQL (record rules do not apply), restricted
    explicitly to the companies the user has selected and may access
    (``self.env.companies``), and returns aggregates only, never records.
    """

    _name = "crm.sop.board"
    _description = "Sales SOP Achievement Board"

    # ------------------------------------------------------------
    # PUBLIC (called by the board's client action)
    # ------------------------------------------------------------

    @api.model
    @api.readonly
    def get_board(
        self,
        metric,
        period,
        group_by="user",
        team_id=False,
        company_id=False,
        top=10,
    ):
        """The ranking of ``group_by`` (user, team, company) by ``metric``
        over the current ``period`` (week, month, quarter, in the user's
        time zone).

        :return: ``{'rows': [{'rank', 'id', 'name', 'value'}] (top N),
            'me': {'rank', 'id', 'name', 'value', 'previous_rank'} or False,
            (previous_rank: the rank over the previous period, False when
            the value then was 0),
            'monetary', 'currency_id', 'date_from', 'date_to',
            'labels': the board's choices and their labels, see
            ``_sop_board_labels``}``.
            Ties share a rank (1, 2, 2, 4); only who scored (a value above
            0) is ranked and listed. ``me`` is the user's row (their
            team's, their company's), even outside the top N; False when it
            is not ranked (nothing scored, no team, filtered out).
        """
        company_ids = self._sop_board_scope(
            metric, period, group_by, team_id, company_id
        )
        top = max(1, min(int(top or 10), 100))
        start, end, prev_start, date_from, date_to = self._sop_period_bounds(period)
        entities = self._sop_entities(group_by, company_ids, team_id)
        aggregates = self._sop_aggregate(
            metric,
            group_by,
            start,
            end,
            prev_start=prev_start,
            company_ids=company_ids,
            team_id=team_id,
        )
        current, previous = self._sop_board_values(metric, entities, aggregates)
        ordered, ranks = self._sop_rank(current)
        _ordered, previous_ranks = self._sop_rank(previous)

        def row(key):
            return {
                "rank": ranks[key],
                "id": key,
                "name": entities[key][0],
                "value": current[key],
            }

        me_key = self._sop_me_key(group_by, company_id)
        me = False
        if me_key in ranks:
            # nothing last period: not ranked then (not "tied first")
            me = dict(row(me_key), previous_rank=previous_ranks.get(me_key, False))
        currency = (
            self.env["res.company"].browse(company_id).currency_id
            if company_id
            else self.env.company.currency_id
        )
        date_from = fields.Date.to_string(date_from)
        celebration_key = self._sop_celebration_key(
            metric, period, group_by, team_id, company_id
        )
        return {
            "rows": [row(key) for key in ordered[:top]],
            "me": me,
            "monetary": metric == "won_revenue",
            "currency_id": currency.id,
            "date_from": date_from,
            "date_to": fields.Date.to_string(date_to),
            # this ranking's entry into the top three was celebrated already
            "celebrated": self._sop_celebrated_on(celebration_key) == date_from,
            "labels": self._sop_board_labels(),
        }

    @api.model
    def _sop_board_scope(self, metric, period, group_by, team_id, company_id):
        """The companies a ranking reads, once its arguments are checked: a
        salesperson only, a company and a team they may see (an unknown
        choice is a client's error, not the user's)."""
        if metric not in METRICS or group_by not in GROUP_BYS:
            raise ValueError(f"Unknown metric or grouping: {metric}, {group_by}")
        if period not in PERIODS:
            raise ValueError(f"Unknown period: {period}")
        if not self.env.user.has_group("sales_team.group_sale_salesman"):
            raise AccessError(self.env._("The achievement board is for salespeople."))
        company_ids = self.env.companies.ids
        if company_id:
            if company_id not in company_ids:
                raise AccessError(
                    self.env._("You may not see the figures of this company.")
                )
            company_ids = [company_id]
        if team_id:
            # as the user: the multi-company rule of crm.team hides the teams
            # of companies they may not see
            if not self.env["crm.team"].search_count([("id", "=", team_id)], limit=1):
                raise AccessError(
                    self.env._("You may not see the figures of this team.")
                )
        return company_ids

    @api.model
    def _sop_board_values(self, metric, entities, aggregates):
        """({key: value} this period, {key: value} the previous one) of
        every entity; additive metrics per head of a team or company."""
        current, previous = {}, {}
        for key, (_name, heads) in entities.items():
            cur, prev = aggregates.get(key, (None, None))
            divisor = heads if metric in PER_HEAD else 1
            current[key] = self._sop_value(metric, cur) / divisor
            previous[key] = self._sop_value(metric, prev) / divisor
        return current, previous

    @api.model
    def _sop_celebrated_on(self, key):
        """The period start of the ranking ``key`` whose top three the user
        entered and saw celebrated, or None. Read only: the user's own
        settings row, when they have one."""
        settings = self.env["res.users.settings"].search_fetch(
            [("user_id", "=", self.env.uid)], ["sop_board_celebrated"], limit=1
        )
        return (settings.sop_board_celebrated or {}).get(key)

    @api.model
    def sop_board_celebrate(
        self, metric, period, group_by="user", team_id=False, company_id=False
    ):
        """Remember whether the user (their team, their company) is in the top
        three of this ranking: the board's rainbow man is shown once per entry
        into the top three, per ranking and period. Called by the board after
        ``get_board`` (which stays read-only) when what it shows and what was
        remembered differ; the rank is computed here again, not taken from
        the client.

        :return: True when the user has just entered the top three (the board
            celebrates), False otherwise (already celebrated, or out of the
            top three, which is then forgotten so that coming back is
            celebrated again).
        """
        board = self.get_board(
            metric, period, group_by=group_by, team_id=team_id, company_id=company_id
        )
        me = board["me"]
        in_top = bool(me and me["value"] > 0 and me["rank"] <= 3)
        if in_top == board["celebrated"]:
            return False
        # as the user: their own settings row (base's rule), no sudo needed
        settings = (
            self.env["res.users.settings"]
            ._find_or_create_for_user(self.env.user)
            .with_env(self.env)
        )
        celebrated = dict(settings.sop_board_celebrated or {})
        key = self._sop_celebration_key(metric, period, group_by, team_id, company_id)
        if in_top:
            celebrated[key] = board["date_from"]
        else:
            celebrated.pop(key, None)
        settings.sop_board_celebrated = celebrated
        return in_top

    # ------------------------------------------------------------
    # HELPERS
    # ------------------------------------------------------------

    @api.model
    def _sop_board_labels(self):
        """The board's metrics, periods and groupings with their labels in
        the user's language, in the order of the board's tabs: served with
        the board, so that the client holds no copy of them.

        :return: ``{'metrics', 'periods', 'group_bys'}``, each a list of
            ``[key, label]``
        """
        return {
            "metrics": [
                ["won_revenue", self.env._("Won revenue")],
                ["high_value_won", self.env._("High-value customers")],
                ["tasks_done", self.env._("SOP tasks completed")],
                ["adherence", self.env._("SOP adherence")],
            ],
            "periods": [
                ["week", self.env._("This week")],
                ["month", self.env._("This month")],
                ["quarter", self.env._("This quarter")],
            ],
            "group_bys": [
                ["user", self.env._("Salespeople")],
                ["team", self.env._("Teams")],
                ["company", self.env._("Companies")],
            ],
        }

    @api.model
    def _sop_period_bounds(self, period):
        """The current and previous periods in the user's time zone: (start,
        end, previous start) as naive UTC datetimes, and the current period's
        first and last local days."""
        tz_name = self.env.context.get("tz") or self.env.user.tz
        tz = pytz.timezone(tz_name if tz_name in pytz.all_timezones_set else "UTC")
        today = pytz.utc.localize(fields.Datetime.now()).astimezone(tz).date()
        if period == "week":
            first = today - datetime.timedelta(days=today.weekday())
        elif period == "month":
            first = today.replace(day=1)
        else:
            first = today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
        step = PERIODS[period]

        def utc(day):
            local = tz.localize(datetime.datetime.combine(day, datetime.time.min))
            return local.astimezone(pytz.utc).replace(tzinfo=None)

        last = first + step - datetime.timedelta(days=1)
        return utc(first), utc(first + step), utc(first - step), first, last

    @api.model
    def _sop_celebration_key(self, metric, period, group_by, team_id, company_id):
        return f"{metric}/{period}/{group_by}/{team_id or 0}/{company_id or 0}"

    @api.model
    def _sop_me_key(self, group_by, company_id):
        if group_by == "user":
            return self.env.uid
        if group_by == "team":
            return self.env.user.sale_team_id.id
        return company_id or self.env.company.id

    @api.model
    def _sop_rank(self, values):
        """Standard competition ranking (1, 2, 2, 4) of {key: value}, best
        first; equal values (to the cent) share a rank. Only who scored is
        ranked: a 0 (nothing won, nothing done) is no first place."""
        rounded = {
            key: round(value, 2) for key, value in values.items() if round(value, 2) > 0
        }
        ordered = sorted(rounded, key=lambda key: (-rounded[key], key))
        ranks = {}
        for index, key in enumerate(ordered):
            if index and rounded[key] == rounded[ordered[index - 1]]:
                ranks[key] = ranks[ordered[index - 1]]
            else:
                ranks[key] = index + 1
        return ordered, ranks

    @api.model
    def _sop_value(self, metric, aggregate):
        """The number shown for an aggregate: adherence is a percentage of
        (adhered, counted) tasks, 0 when nothing was counted."""
        if metric == "adherence":
            adhered, counted = aggregate or (0, 0)
            return 100.0 * adhered / counted if counted else 0.0
        return float(aggregate or 0.0)

    @api.model
    def _sop_salesman_users(self):
        """SQL: the ids of active internal users with sales rights."""
        # ormcached, no query (env.ref would check that the group exists)
        group_id = self.env["ir.model.data"]._xmlid_to_res_id(
            "sales_team.group_sale_salesman"
        )
        return SQL(
            """SELECT u.id FROM res_users u
                 JOIN res_groups_users_rel g ON g.uid = u.id AND g.gid = %s
                WHERE u.active AND NOT u.share""",
            group_id,
        )

    @api.model
    def _sop_entities(self, group_by, company_ids, team_id=False):
        """{id: (name, head count)} of what is ranked, in one query:
        - user: the salespeople whose main company is among ``company_ids``
          (members of ``team_id`` when given), one head each;
        - team: the active teams of those companies (or shared), with their
          salespeople as heads;
        - company: ``company_ids``, with the salespeople whose main company
          it is as heads.
        Teams and companies with no salesperson are not ranked."""
        salesmen = self._sop_salesman_users()
        companies = tuple(company_ids)
        if group_by == "user":
            team_clause = (
                SQL(
                    """AND u.id IN (SELECT m.user_id FROM crm_team_member m
                                  WHERE m.active AND m.crm_team_id = %s)""",
                    team_id,
                )
                if team_id
                else SQL()
            )
            query = SQL(
                """SELECT u.id, p.name, 1
                     FROM res_users u
                     JOIN res_partner p ON p.id = u.partner_id
                    WHERE u.id IN (%s) AND u.company_id IN %s %s""",
                salesmen,
                companies,
                team_clause,
            )
        elif group_by == "team":
            lang = self.env.lang or "en_US"
            query = SQL(
                """SELECT t.id, COALESCE(t.name->>%s, t.name->>'en_US'),
                          COUNT(DISTINCT m.user_id)
                     FROM crm_team t
                     JOIN crm_team_member m ON m.crm_team_id = t.id AND m.active
                    WHERE t.active
                      AND (t.company_id IS NULL OR t.company_id IN %s)
                      AND m.user_id IN (%s) %s
                 GROUP BY t.id""",
                lang,
                companies,
                salesmen,
                SQL("AND t.id = %s", team_id) if team_id else SQL(),
            )
        else:
            query = SQL(
                """SELECT c.id, c.name, COUNT(u.id)
                     FROM res_company c
                     JOIN res_users u ON u.company_id = c.id
                    WHERE c.id IN %s AND u.id IN (%s)
                 GROUP BY c.id""",
                companies,
                salesmen,
            )
        self.env.cr.execute(query)
        return {key: (name, heads) for key, name, heads in self.env.cr.fetchall()}

    @api.model
    def _sop_aggregate(
        self,
        metric,
        group_by,
        start,
        end,
        prev_start=None,
        company_ids=None,
        team_id=False,
        user_ids=None,
    ):
        """{key: (current, previous)} of ``metric`` grouped by ``group_by``
        over [start, end) and [prev_start, start), in one query; adherence
        gives (adhered, counted) pairs. Restricted to opportunities of
        ``company_ids`` (None: every company), of ``team_id``, and to
        ``user_ids`` (None: everyone).

        The four metrics, precisely:
        - won_revenue: sum of the expected revenue of active opportunities in
          a won stage, closed (``date_closed``) in the period, by salesperson;
        - high_value_won: their number whose expected revenue is at least
          the ``sop_high_value_amount`` of the opportunity's company (of the
          salesperson's company when it has none);
        - tasks_done: SOP tasks done in the period (``date_done``) by whoever
          completed them (``done_user_id``), by the system or by hand, even
          archived since (history of a former playbook);
        - adherence: required SOP tasks (not set aside, active) of
          opportunities whose pipeline stage first moved past the task's SOP
          stage (into a stage ordered after it) in the period: adhered when
          done no later than that move; by the opportunity's salesperson.
          Moves and adherence are those of crm.sop.stage.move
          (``_sop_adherence_sql``), which the task analysis reads too.
        """
        if company_ids is not None and not company_ids:
            return {}
        env = self.env
        # SQL reads the database: flush what the ORM holds first
        env.flush_all()
        lower = prev_start or start
        method = getattr(self, f"_sop_query_{metric}")
        user_column, query = method(group_by, lower, end)

        def period(column):
            cur = SQL("%s >= %s AND %s < %s", column, start, column, end)
            prev = (
                SQL("%s >= %s AND %s < %s", column, prev_start, column, start)
                if prev_start
                else SQL("FALSE")
            )
            return cur, prev

        filters = [SQL("TRUE")]
        if company_ids is not None:
            filters.append(SQL("l.company_id IN %s", tuple(company_ids)))
        if team_id:
            filters.append(SQL("l.team_id = %s", team_id))
        if user_ids is not None:
            if not user_ids:
                return {}
            filters.append(SQL("%s IN %s", user_column, tuple(user_ids)))
        env.cr.execute(query(period, SQL(" AND ").join(filters)))
        if metric == "adherence":
            return {
                key: ((cur_ok, cur_all), (prev_ok, prev_all))
                for key, cur_ok, cur_all, prev_ok, prev_all in env.cr.fetchall()
            }
        return {key: (cur, prev) for key, cur, prev in env.cr.fetchall()}

    def _sop_won_key(self, group_by):
        return {
            "user": SQL("l.user_id"),
            "team": SQL("l.team_id"),
            "company": SQL("l.company_id"),
        }[group_by]

    def _sop_query_won_revenue(self, group_by, lower, end):
        key = self._sop_won_key(group_by)

        def query(period, filters):
            cur, prev = period(SQL("l.date_closed"))
            return SQL(
                """SELECT %(key)s,
                          COALESCE(SUM(l.expected_revenue) FILTER (WHERE %(cur)s), 0),
                          COALESCE(SUM(l.expected_revenue) FILTER (WHERE %(prev)s), 0)
                     FROM crm_lead l
                     JOIN crm_stage s ON s.id = l.stage_id
                    WHERE %(won)s AND %(key)s IS NOT NULL
                      AND l.date_closed >= %(lower)s AND l.date_closed < %(end)s
                      AND %(filters)s
                 GROUP BY 1""",
                won=SQL(SOP_WON_SQL),
                key=key,
                cur=cur,
                prev=prev,
                lower=lower,
                end=end,
                filters=filters,
            )

        return SQL("l.user_id"), query

    def _sop_query_high_value_won(self, group_by, lower, end):
        key = self._sop_won_key(group_by)

        def query(period, filters):
            cur, prev = period(SQL("l.date_closed"))
            return SQL(
                """SELECT %(key)s,
                          COUNT(*) FILTER (WHERE %(cur)s),
                          COUNT(*) FILTER (WHERE %(prev)s)
                     FROM crm_lead l
                     JOIN crm_stage s ON s.id = l.stage_id
                LEFT JOIN res_users u ON u.id = l.user_id
                     JOIN res_company c ON c.id = COALESCE(l.company_id, u.company_id)
                    WHERE %(won)s AND %(key)s IS NOT NULL
                      AND l.expected_revenue >= c.sop_high_value_amount
                      AND l.date_closed >= %(lower)s AND l.date_closed < %(end)s
                      AND %(filters)s
                 GROUP BY 1""",
                won=SQL(SOP_WON_SQL),
                key=key,
                cur=cur,
                prev=prev,
                lower=lower,
                end=end,
                filters=filters,
            )

        return SQL("l.user_id"), query

    def _sop_query_tasks_done(self, group_by, lower, end):
        key = (
            SQL("t.done_user_id") if group_by == "user" else self._sop_won_key(group_by)
        )

        def query(period, filters):
            cur, prev = period(SQL("t.date_done"))
            return SQL(
                """SELECT %(key)s,
                          COUNT(*) FILTER (WHERE %(cur)s),
                          COUNT(*) FILTER (WHERE %(prev)s)
                     FROM crm_sop_task t
                     JOIN crm_lead l ON l.id = t.lead_id
                    WHERE t.state = 'done' AND t.completion IS NOT NULL
                      AND %(key)s IS NOT NULL
                      AND t.date_done >= %(lower)s AND t.date_done < %(end)s
                      AND %(filters)s
                 GROUP BY 1""",
                key=key,
                cur=cur,
                prev=prev,
                lower=lower,
                end=end,
                filters=filters,
            )

        return SQL("t.done_user_id"), query

    def _sop_query_adherence(self, group_by, lower, end):
        key = self._sop_won_key(group_by)
        Move = self.env["crm.sop.stage.move"]

        def query(period, filters):
            cur, prev = period(SQL("a.date_left"))
            # the one definition of adherence, shared with the task analysis
            adherence = Move._sop_adherence_sql(
                where=SQL("%s IS NOT NULL AND %s", key, filters), until=end
            )
            return SQL(
                """SELECT %(key)s,
                          COUNT(*) FILTER (WHERE %(cur)s AND a.adhered),
                          COUNT(*) FILTER (WHERE %(cur)s),
                          COUNT(*) FILTER (WHERE %(prev)s AND a.adhered),
                          COUNT(*) FILTER (WHERE %(prev)s)
                     FROM (%(adherence)s) a
                     JOIN crm_lead l ON l.id = a.lead_id
                    WHERE a.date_left >= %(lower)s
                 GROUP BY 1""",
                key=key,
                cur=cur,
                prev=prev,
                adherence=adherence,
                lower=lower,
            )

        return SQL("l.user_id"), query

    # ------------------------------------------------------------
    # GOALS (gamification)
    # ------------------------------------------------------------

    @api.model
    def _sop_goal_values(self, goals):
        """{goal id: value} of goals of the board's definitions: one query
        per metric and period, over the goals' users, every company. A goal's
        dates are days in UTC, both included, as core's batch goals."""
        batches = defaultdict(lambda: self.env["gamification.goal"])
        for goal in goals:
            key = (goal.definition_id.sop_board_metric, goal.start_date, goal.end_date)
            batches[key] |= goal
        values = {}
        for (metric, start, end), batch in batches.items():
            start_dt = (
                datetime.datetime.combine(start, datetime.time.min)
                if start
                else DATE_MIN
            )
            end_dt = (
                datetime.datetime.combine(
                    end + datetime.timedelta(days=1), datetime.time.min
                )
                if end
                else DATE_MAX
            )
            aggregates = self._sop_aggregate(
                metric, "user", start_dt, end_dt, user_ids=batch.user_id.ids
            )
            for goal in batch:
                current = aggregates.get(goal.user_id.id, (None, None))[0]
                values[goal.id] = self._sop_value(metric, current)
        return values

    @api.model
    def _sop_update_goals(self, goals):
        """Write the goals' values and states, as core's update_goal."""
        values = self._sop_goal_values(goals)
        for goal in goals:
            for record, vals in goal._get_write_values(values[goal.id]).items():
                if vals:
                    record.write(vals)
        return True

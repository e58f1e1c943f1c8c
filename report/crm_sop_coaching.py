from odoo import api, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from ..models.crm_sop_deal import SOP_OPEN_SQL
from ..models.crm_sop_prediction import (
    UPLIFT_MIN_LOST,
    UPLIFT_MIN_WON,
    sop_odds_ratio,
    sop_probability_if_done,
)


class CrmSopCoaching(models.AbstractModel):
    """The coaching queue (辅导清单): a team's open deals ranked by what
    pushing one SOP task is expected to be worth, so a manager knows which
    deal to look at with which rep, and which task to push.

    For every open task of a deal, its chance once done is the uplift
    panel's (``sop_probability_if_done`` over the team's closed deals of the
    deal's company, ``crm.lead.get_sop_uplift``); the task to push is the one with the best
    gain (chance once done minus the deal's chance now); the deal's score is
    its expected revenue times that gain. Below the history floor (40 won and
    40 lost deals in the team) there is no gain: deals are ranked by
    expected revenue and the task to push is their next step.

    Computed in batch for the whole team: one query for the team's history,
    one for the history of every task template, one for its open deals each
    with its task to push (chosen in SQL: the best gain is the highest odds
    ratio, whatever the deal's chance).
    """

    _name = "crm.sop.coaching"
    _description = "Sales SOP Coaching Queue"

    @api.model
    @api.readonly
    def get_queue(self, team_id, limit=50):
        """The coaching queue of ``team_id``, best first.

        :return: ``{'team_id', 'team_name', 'enough_history', 'won', 'lost',
            'min_won', 'min_lost', 'count' (open deals), 'currency_id',
            'rows': [{'lead_id', 'name', 'user_id', 'user_name',
            'expected_revenue', 'probability', 'task_id', 'task_name',
            'probability_if_done', 'gain', 'score'}]}`` (the first ``limit``
            rows; the last four False below the history floor).
        """
        team = self._sop_queue_team(team_id)
        limit = max(1, min(int(limit or 50), 500))
        # the figures shown above the queue: the team in the company the
        # user works in now (the team's own company when it has one)
        company = team.company_id or self.env.company
        totals, enough_companies, counts = self._sop_queue_history(team)
        won, lost = totals.get(company.id, (0, 0))
        deals = self._sop_queue_deals(team, enough_companies, counts)
        ranked = self._sop_queue_rank(deals, enough_companies, counts)
        return {
            "team_id": team.id,
            "team_name": team.name,
            "enough_history": company.id in enough_companies,
            "won": won,
            "lost": lost,
            "min_won": UPLIFT_MIN_WON,
            "min_lost": UPLIFT_MIN_LOST,
            "count": len(ranked),
            "currency_id": company.currency_id.id,
            "rows": [self._sop_queue_row(*entry) for entry in ranked[:limit]],
        }

    @api.model
    def _sop_queue_team(self, team_id):
        """The team, if the user is a sales manager who may read it."""
        if not self.env.user.has_group("sales_team.group_sale_manager"):
            raise AccessError(self.env._("The coaching queue is for sales managers."))
        # as the user: the multi-company rule of crm.team hides the teams of
        # companies they may not see
        team = self.env["crm.team"].search_fetch(
            [("id", "=", int(team_id))], ["name", "company_id"], limit=1
        )
        if not team:
            raise AccessError(self.env._("You may not see this team."))
        return team

    @api.model
    def _sop_queue_history(self, team):
        """({company: (won, lost)}, the companies whose history passes the
        floor, {(company, task template): the four counts} of those): the
        team's closed deals of each company, of the companies the user works
        in (a team may serve two companies), from the history counts."""
        History = self.env["crm.sop.history.count"]
        history = SQL("l.team_id = %s AND %s", team.id, History._sop_companies_sql())
        totals = History._sop_totals(history)
        enough_companies = {
            company
            for company, (won, lost) in totals.items()
            if won >= UPLIFT_MIN_WON and lost >= UPLIFT_MIN_LOST
        }
        counts = {}
        if enough_companies:
            counts = {
                key: four
                for key, four in History._sop_task_counts(history).items()
                if key[0] in enough_companies
            }
        return totals, enough_companies, counts

    @api.model
    def _sop_queue_order(self, enough_companies, counts):
        """(the join of each task's odds ratio, the order of a deal's open
        tasks: best first). The task that gains the most is the one of the
        highest odds ratio in the deal's company, whatever the deal's chance
        now (the odds are multiplied by it); task templates with no history
        have a ratio of 1; deals of a company below the history floor push
        their next step, else their first open task."""
        if not enough_companies:
            return SQL(), SQL("t.id = l.sop_next_task_id DESC, tt.sequence, t.id")
        best_order = SQL(
            "COALESCE(r.ratio, 1.0) DESC, "
            "(t.id = l.sop_next_task_id AND NOT %s) DESC, tt.sequence, t.id",
            self._sop_in_companies(enough_companies),
        )
        if not counts:
            return (
                SQL(
                    "LEFT JOIN (SELECT NULL::int AS template_id, "
                    "1.0 AS ratio) AS r ON FALSE"
                ),
                best_order,
            )
        ratios = SQL(", ").join(
            SQL("(%s::integer, %s, %s)", company_id, tpl, sop_odds_ratio(*four))
            for (company_id, tpl), four in counts.items()
        )
        ratio_join = SQL(
            "LEFT JOIN (VALUES %s) AS r (company_id, template_id, ratio) "
            "ON r.template_id = t.task_template_id "
            "AND r.company_id IS NOT DISTINCT FROM l.company_id",
            ratios,
        )
        return ratio_join, best_order

    @api.model
    def _sop_queue_deals(self, team, enough_companies, counts):
        """[(lead id, name, user id, user name, expected revenue,
        probability, task id, task template id, task name, company id)]:
        the team's open deals in the companies the user works in (a manager
        reads every deal of them), each with its task to push, in one
        query."""
        Lead = self.env["crm.lead"]
        Lead.flush_model(
            ["name", "user_id", "expected_revenue", "probability", "sop_next_task_id"]
        )
        self.env["crm.sop.task.template"].flush_model(["name", "sequence"])
        ratio_join, best_order = self._sop_queue_order(enough_companies, counts)
        self.env.cr.execute(
            SQL(
                """SELECT l.id, l.name, l.user_id, up.name,
                          COALESCE(l.expected_revenue, 0), COALESCE(l.probability, 0),
                          best.id, best.task_template_id, best.name, l.company_id
                     FROM crm_lead l
                LEFT JOIN crm_stage s ON s.id = l.stage_id
                LEFT JOIN res_users u ON u.id = l.user_id
                LEFT JOIN res_partner up ON up.id = u.partner_id
                LEFT JOIN LATERAL (
                          SELECT t.id, t.task_template_id,
                                 COALESCE(tt.name->>%(lang)s, tt.name->>'en_US') AS name
                            FROM crm_sop_task t
                            JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
                            %(ratio_join)s
                           WHERE t.lead_id = l.id AND t.active AND t.state = 'todo'
                        ORDER BY %(best_order)s
                           LIMIT 1
                     ) best ON TRUE
                    WHERE l.team_id = %(team)s AND %(open)s AND NOT COALESCE(s.is_won, FALSE)
                      AND l.type = 'opportunity'
                      AND (l.company_id IS NULL OR l.company_id IN %(companies)s)""",
                lang=self.env.lang or "en_US",
                ratio_join=ratio_join,
                best_order=best_order,
                team=team.id,
                open=SQL(SOP_OPEN_SQL),
                companies=tuple(self.env.companies.ids),
            )
        )
        return self.env.cr.fetchall()

    @api.model
    def _sop_queue_rank(self, deals, enough_companies, counts):
        """[(deal row, chance once done, gain, score)], best first: by score
        (expected revenue times the gain) above the history floor, else by
        expected revenue."""
        ranked = []
        if_done_of = {}  # (chance, company, task template): chance once done
        for row in deals:
            probability, task_id, tpl, lead_company = row[5], row[6], row[7], row[9]
            if_done = gain = score = False
            if lead_company in enough_companies and task_id:
                key = (probability, lead_company, tpl)
                if key not in if_done_of:
                    if_done_of[key] = sop_probability_if_done(
                        probability, *counts.get((lead_company, tpl), (0, 0, 0, 0))
                    )
                if_done = if_done_of[key]
                gain = round(if_done - probability, 1)
                score = round(row[4] * gain / 100, 2)
            ranked.append((row, if_done, gain, score))
        if enough_companies:
            ranked.sort(key=lambda r: (r[3] is False, -(r[3] or 0), -r[0][4], r[0][0]))
        else:
            ranked.sort(key=lambda r: (-r[0][4], r[0][0]))
        return ranked

    @api.model
    def _sop_queue_row(self, deal, if_done, gain, score):
        """A row of the queue as the client shows it."""
        (lead_id, name, user_id, user_name, revenue, probability) = deal[:6]
        task_id, _tpl, task_name, _company = deal[6:]
        return {
            "lead_id": lead_id,
            "name": name,
            "user_id": user_id or False,
            "user_name": user_name or False,
            "expected_revenue": revenue,
            "probability": probability,
            "task_id": task_id or False,
            "task_name": task_name or False,
            "probability_if_done": if_done,
            "gain": gain,
            "score": score,
        }

    @api.model
    def _sop_in_companies(self, company_ids):
        """SQL: the deal ``l`` is of one of ``company_ids`` (None: of no
        company)."""
        ids = tuple(company for company in company_ids if company)
        clauses = [SQL("l.company_id IN %s", ids)] if ids else []
        if None in company_ids:
            clauses.append(SQL("l.company_id IS NULL"))
        return SQL("(%s)", SQL(" OR ").join(clauses)) if clauses else SQL("FALSE")

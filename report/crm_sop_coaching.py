from odoo import api, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from odoo.addons.crm_sales_sop.models.crm_sop_prediction import (
    UPLIFT_MIN_LOST,
    UPLIFT_MIN_WON,
    sop_probability_if_done,
)


class CrmSopCoaching(models.AbstractModel):
    """The coaching queue (辅导清单): a team's open deals ranked by what
    pushing one SOP task is expected to be worth, so a manager knows which
    deal to look at with which rep, and which task to push.

    For every open task of a deal, its chance once done is the uplift
    panel's (``sop_probability_if_done`` over the team's closed deals,
    ``crm.lead.get_sop_uplift``); the task to push is the one with the best
    gain (chance once done minus the deal's chance now); the deal's score is
    its expected revenue times that gain. Below the history floor (40 won and
    40 lost deals in the team) there is no gain: deals are ranked by
    expected revenue and the task to push is their next step.

    Computed in batch for the whole team: one query for the team's history,
    one for its open deals and their open tasks, one for the history of
    every task template involved.
    """

    _name = "crm.sop.coaching"
    _description = "Sales SOP Coaching Queue"

    @api.model
    def get_queue(self, team_id, limit=50):
        """The coaching queue of ``team_id``, best first.

        :return: ``{'team_id', 'team_name', 'enough_history', 'won', 'lost',
            'min_won', 'min_lost', 'count' (open deals), 'currency_id',
            'rows': [{'lead_id', 'name', 'user_id', 'user_name',
            'expected_revenue', 'probability', 'task_id', 'task_name',
            'probability_if_done', 'gain', 'score'}]}`` (the first ``limit``
            rows; the last four False below the history floor).
        """
        if not self.env.user.has_group("sales_team.group_sale_manager"):
            raise AccessError(self.env._("The coaching queue is for sales managers."))
        # as the user: the multi-company rule of crm.team hides the teams of
        # companies they may not see
        team = self.env["crm.team"].search_fetch(
            [("id", "=", int(team_id))], ["name", "company_id"], limit=1
        )
        if not team:
            raise AccessError(self.env._("You may not see this team."))
        limit = max(1, min(int(limit or 50), 500))
        Lead = self.env["crm.lead"]
        history = SQL("l.team_id = %s", team.id)
        won, lost = Lead._sop_history_totals(history)
        enough = won >= UPLIFT_MIN_WON and lost >= UPLIFT_MIN_LOST

        Lead.flush_model(["name", "user_id", "expected_revenue", "sop_next_task_id"])
        self.env["crm.sop.task.template"].flush_model(["name"])
        lang = self.env.lang or "en_US"
        # the team's open deals in the companies the user works in (a
        # manager reads every deal of them), with their open tasks
        self.env.cr.execute(
            SQL(
                """SELECT l.id, l.name, l.user_id, up.name,
                          COALESCE(l.expected_revenue, 0), COALESCE(l.probability, 0),
                          l.sop_next_task_id, t.id, t.task_template_id,
                          COALESCE(tt.name->>%(lang)s, tt.name->>'en_US')
                     FROM crm_lead l
                LEFT JOIN crm_stage s ON s.id = l.stage_id
                LEFT JOIN res_users u ON u.id = l.user_id
                LEFT JOIN res_partner up ON up.id = u.partner_id
                LEFT JOIN crm_sop_task t
                       ON t.lead_id = l.id AND t.active AND t.state = 'todo'
                LEFT JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
                    WHERE l.team_id = %(team)s AND l.active
                      AND l.type = 'opportunity' AND NOT COALESCE(s.is_won, FALSE)
                      AND (l.company_id IS NULL OR l.company_id IN %(companies)s)
                 ORDER BY l.id, tt.sequence, t.id""",
                lang=lang,
                team=team.id,
                companies=tuple(self.env.companies.ids),
            )
        )
        deals = {}
        for (
            lead_id,
            name,
            user_id,
            user_name,
            revenue,
            probability,
            next_task_id,
            task_id,
            task_template_id,
            task_name,
        ) in self.env.cr.fetchall():
            deal = deals.setdefault(
                lead_id,
                {
                    "lead_id": lead_id,
                    "name": name,
                    "user_id": user_id or False,
                    "user_name": user_name or False,
                    "expected_revenue": revenue,
                    "probability": probability,
                    "next_task_id": next_task_id,
                    "tasks": [],
                },
            )
            if task_id:
                deal["tasks"].append((task_id, task_template_id, task_name))
        counts = {}
        if enough:
            counts = Lead._sop_history_task_counts(
                history,
                list({tpl for deal in deals.values() for _t, tpl, _n in deal["tasks"]}),
            )
        rows = []
        for deal in deals.values():
            tasks = deal.pop("tasks")
            next_task_id = deal.pop("next_task_id")
            row = dict(
                deal,
                task_id=False,
                task_name=False,
                probability_if_done=False,
                gain=False,
                score=False,
            )
            if enough and tasks:
                best = max(
                    (
                        sop_probability_if_done(
                            deal["probability"], *counts.get(tpl, (0, 0, 0, 0))
                        ),
                        -index,
                        task_id,
                        task_name,
                    )
                    for index, (task_id, tpl, task_name) in enumerate(tasks)
                )
                if_done, _index, task_id, task_name = best
                gain = round(if_done - deal["probability"], 1)
                row.update(
                    task_id=task_id,
                    task_name=task_name,
                    probability_if_done=if_done,
                    gain=gain,
                    score=round(deal["expected_revenue"] * gain / 100, 2),
                )
            elif tasks:
                # the next step, else the first open task
                task_id, _tpl, task_name = next(
                    (task for task in tasks if task[0] == next_task_id), tasks[0]
                )
                row.update(task_id=task_id, task_name=task_name)
            rows.append(row)
        if enough:
            rows.sort(
                key=lambda r: (
                    r["score"] is False,
                    -(r["score"] or 0),
                    -r["expected_revenue"],
                    r["lead_id"],
                )
            )
        else:
            rows.sort(key=lambda r: (-r["expected_revenue"], r["lead_id"]))
        return {
            "team_id": team.id,
            "team_name": team.name,
            "enough_history": enough,
            "won": won,
            "lost": lost,
            "min_won": UPLIFT_MIN_WON,
            "min_lost": UPLIFT_MIN_LOST,
            "count": len(rows),
            "currency_id": (team.company_id or self.env.company).currency_id.id,
            "rows": rows[:limit],
        }

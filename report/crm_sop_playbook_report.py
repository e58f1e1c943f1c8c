import math
from datetime import timedelta

from odoo import api, fields, models, tools
from odoo.exceptions import AccessError
from odoo.tools import SQL

from ..models.crm_sop_deal import SOP_LOST_SQL, SOP_WON_SQL
from .crm_sop_task_report import LEAD_DEPENDS

# the 97.5th percentile of the normal distribution: 95 % two-sided intervals
Z95 = 1.959963984540054


def wilson_interval(won, deals, z=Z95):
    """The Wilson score interval of a won rate ``won`` / ``deals``, in
    percent: (low, high), (False, False) with no deal. Unlike the normal
    approximation it stays in [0, 100] and holds for small samples and
    rates near 0 or 100 %."""
    if not deals:
        return False, False
    rate = won / deals
    z2 = z * z
    center = (rate + z2 / (2 * deals)) / (1 + z2 / deals)
    half = (
        z
        * math.sqrt(rate * (1 - rate) / deals + z2 / (4 * deals * deals))
        / (1 + z2 / deals)
    )
    return 100 * (center - half), 100 * (center + half)


def two_proportion_p_value(won_1, deals_1, won_2, deals_2):
    """Two-sided p-value of the two-proportion z-test (pooled) that two won
    rates are equal; False when a side has no deal."""
    if not deals_1 or not deals_2:
        return False
    pooled = (won_1 + won_2) / (deals_1 + deals_2)
    error = math.sqrt(pooled * (1 - pooled) * (1 / deals_1 + 1 / deals_2))
    if not error:
        return 1.0  # both all won or all lost: no difference
    z = (won_1 / deals_1 - won_2 / deals_2) / error
    return math.erfc(abs(z) / math.sqrt(2))


class CrmSopPlaybookReport(models.Model):
    """Which playbook wins? One row per closed opportunity (won: active in a
    won stage; lost: archived at probability 0) that follows a playbook
    (``sop_template_id``). A group's won rate is the average of a 0 / 100
    column; its 95 % Wilson interval is computed per group from its counts
    in ``_read_group_select``; cycle days are the days from creation to
    closing of its won deals (NULL on lost ones, which AVG skips)."""

    _name = "crm.sop.playbook.report"
    _description = "Sales SOP Playbook Analysis"
    _auto = False
    _rec_name = "template_id"
    _order = "date_closed desc, id desc"
    # what the view reads: flushed before a search or read_group on it
    _depends = {"crm.lead": LEAD_DEPENDS, "crm.stage": ["is_won"]}

    template_id = fields.Many2one("crm.sop.template", string="Playbook", readonly=True)
    lead_id = fields.Many2one("crm.lead", string="Opportunity", readonly=True)
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    date_closed = fields.Datetime(string="Closed On", readonly=True)
    lead_create_date = fields.Datetime(string="Opportunity Created On", readonly=True)
    won = fields.Boolean(readonly=True)
    deal_count = fields.Integer(string="Closed Deals", readonly=True)
    won_count = fields.Integer(string="Won Deals", readonly=True)
    won_rate = fields.Float(string="Won Rate (%)", aggregator="avg", readonly=True)
    ci_low = fields.Float(
        string="Won Rate, 95% Low (%)",
        aggregator="avg",
        readonly=True,
        help="Lower bound of the 95% Wilson score interval of the won rate.",
    )
    ci_high = fields.Float(
        string="Won Rate, 95% High (%)",
        aggregator="avg",
        readonly=True,
        help="Upper bound of the 95% Wilson score interval of the won rate.",
    )
    cycle_days = fields.Float(
        string="Cycle (days)",
        aggregator="avg",
        readonly=True,
        help="Days from the creation of a won deal to its closing.",
    )

    def _read_group_select(self, aggregate_spec, query):
        """The Wilson interval of a group, from its won and closed counts."""
        fname = aggregate_spec.split(":")[0]
        if fname not in ("ci_low", "ci_high"):
            return super()._read_group_select(aggregate_spec, query)
        won = SQL(
            "SUM(%s)::double precision",
            self._field_to_sql(self._table, "won_count", query),
        )
        deals = SQL(
            "NULLIF(SUM(%s), 0)::double precision",
            self._field_to_sql(self._table, "deal_count", query),
        )
        return SQL(
            """100 * ((%(won)s / %(deals)s + %(z2)s / (2 * %(deals)s))
                      %(sign)s %(z)s * SQRT(
                          (%(won)s / %(deals)s) * (1 - %(won)s / %(deals)s) / %(deals)s
                          + %(z2)s / (4 * %(deals)s * %(deals)s)))
               / (1 + %(z2)s / %(deals)s)""",
            won=won,
            deals=deals,
            z=Z95,
            z2=Z95 * Z95,
            sign=SQL("-" if fname == "ci_low" else "+"),
        )

    def _select(self):
        return SQL(
            """SELECT l.id, l.id AS lead_id, l.sop_template_id AS template_id,
                      l.user_id, l.team_id, l.company_id, l.date_closed,
                      l.create_date AS lead_create_date,
                      %(won)s AS won,
                      1 AS deal_count,
                      CASE WHEN %(won)s THEN 1 ELSE 0 END AS won_count,
                      CASE WHEN %(won)s THEN 100.0 ELSE 0.0 END AS won_rate,
                      NULL::double precision AS ci_low,
                      NULL::double precision AS ci_high,
                      CASE WHEN %(won)s THEN
                          EXTRACT(EPOCH FROM l.date_closed - l.create_date) / 86400.0
                      END AS cycle_days""",
            won=SQL(SOP_WON_SQL),
        )

    def _from(self):
        return SQL(
            """FROM crm_lead l
          LEFT JOIN crm_stage s ON s.id = l.stage_id"""
        )

    def _where(self):
        # the closed opportunities run on a playbook
        return SQL(
            """WHERE l.type = 'opportunity' AND l.sop_template_id IS NOT NULL
                 AND (%(won)s OR %(lost)s)""",
            won=SQL(SOP_WON_SQL),
            lost=SQL(SOP_LOST_SQL),
        )

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                "CREATE OR REPLACE VIEW %s AS (%s %s %s)",
                SQL.identifier(self._table),
                self._select(),
                self._from(),
                self._where(),
            )
        )

    # ------------------------------------------------------------
    # PLAYBOOKS COMPARED
    # ------------------------------------------------------------

    @api.model
    @api.readonly
    def compare(self, playbook_ids, date_from=False, date_to=False, team_id=False):
        """Playbooks side by side over the deals closed from ``date_from`` to
        ``date_to`` (days, both included; False: no bound), of ``team_id``.

        :return: ``{'playbooks': [{'id', 'name', 'deals', 'won', 'won_rate',
            'ci_low', 'ci_high', 'avg_cycle_days'}] (in the order asked,
            playbooks the user may not read left out), 'overlap', 'p_value',
            'significant'}``; the last three compare the first two playbooks
            (their 95 % intervals overlap; the two-proportion z-test's
            p-value; p < 0.05), False with fewer than two or with no deal.
            Two queries, whatever the number of deals.
        """
        if not self.env.user.has_group("sales_team.group_sale_manager"):
            raise AccessError(self.env._("Only sales managers compare playbooks."))
        ids = [int(pid) for pid in playbook_ids or []]
        # as the user: the multi-company rule of playbooks applies
        playbooks = self.env["crm.sop.template"].search_fetch(
            [("id", "in", ids)], ["name"]
        )
        domain = [("template_id", "in", playbooks.ids)]
        if date_from:
            domain.append(("date_closed", ">=", fields.Date.to_date(date_from)))
        if date_to:
            end = fields.Date.to_date(date_to) + timedelta(days=1)
            domain.append(("date_closed", "<", end))
        if team_id:
            domain.append(("team_id", "=", int(team_id)))
        # record rules apply (the report's multi-company rule)
        groups = self._read_group(
            domain,
            ["template_id"],
            ["deal_count:sum", "won_count:sum", "cycle_days:avg"],
        )
        figures = {
            template.id: (deals, won, cycle) for template, deals, won, cycle in groups
        }
        rows = []
        by_id = {playbook.id: playbook for playbook in playbooks}
        for pid in ids:
            if pid not in by_id:
                continue
            deals, won, cycle = figures.get(pid, (0, 0, None))
            low, high = wilson_interval(won, deals)
            rows.append(
                {
                    "id": pid,
                    "name": by_id[pid].name,
                    "deals": deals,
                    "won": won,
                    "won_rate": deals and 100.0 * won / deals or False,
                    "ci_low": low,
                    "ci_high": high,
                    "avg_cycle_days": cycle if cycle is not None else False,
                }
            )
        result = {
            "playbooks": rows,
            "overlap": False,
            "p_value": False,
            "significant": False,
        }
        if len(rows) >= 2 and rows[0]["deals"] and rows[1]["deals"]:
            first, second = rows[:2]
            result["overlap"] = (
                first["ci_low"] <= second["ci_high"]
                and second["ci_low"] <= first["ci_high"]
            )
            p_value = two_proportion_p_value(
                first["won"], first["deals"], second["won"], second["deals"]
            )
            result["p_value"] = p_value
            result["significant"] = p_value < 0.05
        return result

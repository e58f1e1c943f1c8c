from odoo import fields, models, tools
from odoo.tools import SQL

from ..models.crm_sop_deal import SOP_LOST_SQL, SOP_WON_SQL
from .crm_sop_task_report import CrmSopTaskReport

# the row of a SOP stage (suggestions about the stage itself) and of a task
# template are numbered apart; a row per company: id = key * 10^6 + company
FEEDBACK_ID_SQL = """
    (CASE WHEN k.task_key > 0 THEN k.task_key::bigint * 2
          ELSE k.sop_stage_id::bigint * 2 + 1 END) * 1000000 + k.company_key
"""


class CrmSopFeedbackReport(models.Model):
    """What the reps say about a SOP task or stage, beside what it does: one
    row per task template (and per SOP stage, for the suggestions about the
    stage itself) and company of the deals (of the suggestions):

    - **set aside**: the deals' tasks of the template marked not applicable
      (``crm.sop.task`` in state ``na``, the product's own record of the
      rep's reason), their count, share and reasons (each with its count);
      the closed deals' tasks are counted by ``crm.sop.history.count``, kept
      as they change, so that a read counts only the other deals' tasks (the
      pipeline, not the history) and the set-aside ones' reasons;
    - **suggestions** (``crm.sop.suggestion``): how many, how many say the
      step does not help, how many the managers have not reviewed yet;
    - the task's **lift**, as the task analysis computes it
      (``crm.sop.task.report``, read here as a sub-query, not copied): won
      rate when done minus when not done over the closed deals that reached
      its stage. Per group it is computed from the group's summed counts
      (``_read_group_select``), so a pivot by task reads the task analysis'
      own figure; by SOP stage or playbook it pools the tasks' deals.
    """

    _name = "crm.sop.feedback.report"
    _description = "Sales SOP Task Feedback"
    _auto = False
    _rec_name = "task_template_id"
    _order = "suggestion_count desc, set_aside_count desc, id"
    # what the view reads: its own tables, and what the task analysis'
    # query it runs reads
    _depends = {
        model: sorted(set(fnames) | set(CrmSopTaskReport._depends.get(model, ())))
        for model, fnames in {
            **CrmSopTaskReport._depends,
            "crm.sop.task": [
                "lead_id",
                "task_template_id",
                "stage_id",
                "state",
                "na_reason",
                "active",
            ],
            "crm.sop.suggestion": [
                "task_template_id",
                "stage_id",
                "company_id",
                "not_helpful",
                "state",
            ],
            "crm.sop.stage": ["template_id"],
            # the closed deals' tasks, counted (in SQL, with the changes
            # themselves: nothing of theirs waits to be flushed)
            "crm.sop.history.count": [
                "task_template_id",
                "company_id",
                "won_with",
                "lost_with",
                "won_without",
                "lost_without",
                "set_aside",
            ],
            # what decides whether a deal's tasks are in those counts
            "crm.lead": ["company_id", "type", "active", "probability", "stage_id"],
            "crm.stage": ["is_won"],
            "crm.sop.task.template": ["stage_id"],
        }.items()
    }

    scope = fields.Selection(
        [("task", "SOP Task"), ("stage", "SOP Stage")],
        string="About",
        readonly=True,
        help="SOP Stage: the suggestions about the stage itself, not one of its tasks.",
    )
    task_template_id = fields.Many2one(
        "crm.sop.task.template", string="SOP Task", readonly=True
    )
    sop_stage_id = fields.Many2one("crm.sop.stage", string="SOP Stage", readonly=True)
    template_id = fields.Many2one("crm.sop.template", string="Playbook", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)

    task_count = fields.Integer(string="Deals' Tasks", readonly=True)
    set_aside_count = fields.Integer(string="Set Aside", readonly=True)
    set_aside_rate = fields.Float(
        string="Set Aside (%)",
        aggregator="avg",
        readonly=True,
        help="Tasks set aside as not applicable, of the deals' tasks of the template.",
    )
    na_reasons = fields.Text(
        string="Reasons Set Aside",
        readonly=True,
        help="Each reason given when the task was set aside, with how often.",
    )
    suggestion_count = fields.Integer(string="Suggestions", readonly=True)
    not_helpful_count = fields.Integer(string="Does Not Help", readonly=True)
    new_suggestion_count = fields.Integer(string="To Review", readonly=True)
    closed_count = fields.Integer(string="Closed Deals", readonly=True)
    done_count = fields.Integer(string="Closed Deals, Done", readonly=True)
    won_done_count = fields.Integer(string="Won Deals, Done", readonly=True)
    not_done_count = fields.Integer(string="Closed Deals, Not Done", readonly=True)
    won_not_done_count = fields.Integer(string="Won Deals, Not Done", readonly=True)
    lift = fields.Float(
        string="Lift (points)",
        aggregator="avg",
        readonly=True,
        help="Won rate when done minus won rate when not done, in points, over "
        "the closed deals that reached the task's stage (SOP Task Analysis).",
    )

    def _read_group_select(self, aggregate_spec, query):
        """Rates of a group from its summed counts."""
        fname = aggregate_spec.split(":")[0]

        def total(name):
            return SQL("SUM(%s)", self._field_to_sql(self._table, name, query))

        if fname == "lift":
            return SQL(
                "100.0 * %s / NULLIF(%s, 0) - 100.0 * %s / NULLIF(%s, 0)",
                total("won_done_count"),
                total("done_count"),
                total("won_not_done_count"),
                total("not_done_count"),
            )
        if fname == "set_aside_rate":
            return SQL(
                "100.0 * %s / NULLIF(%s, 0)",
                total("set_aside_count"),
                total("task_count"),
            )
        return super()._read_group_select(aggregate_spec, query)

    def _with(self):
        """The task analysis' rows (its lift), the tasks and set-aside
        counts, the reasons, the suggestions, and their keys."""
        return SQL(
            """
            WITH task_report AS (
                %(task_report)s
            ), lift AS (
                SELECT task_template_id AS task_key,
                       COALESCE(company_id, 0) AS company_key,
                       SUM(done_count) AS done_count,
                       SUM(won_done_count) AS won_done_count,
                       SUM(not_done_count) AS not_done_count,
                       SUM(won_not_done_count) AS won_not_done_count
                  FROM task_report
                 WHERE reached
              GROUP BY 1, 2
            ), tasks AS (
                SELECT c.task_key, tt.stage_id AS sop_stage_id, c.company_key,
                       SUM(c.task_count) AS task_count,
                       SUM(c.set_aside_count) AS set_aside_count
                  FROM (
                      -- the closed opportunities' tasks: as the history
                      -- counts keep them, not read again on each call
                      SELECT h.task_template_id AS task_key,
                             COALESCE(h.company_id, 0) AS company_key,
                             h.won_with + h.lost_with + h.won_without
                             + h.lost_without + h.set_aside AS task_count,
                             h.set_aside AS set_aside_count
                        FROM crm_sop_history_count h
                       WHERE h.task_template_id IS NOT NULL
                   UNION ALL
                      -- the other deals' tasks (open, leads, archived not
                      -- lost): what the history counts leave out, exactly
                      SELECT t.task_template_id, COALESCE(l.company_id, 0),
                             1, (t.state = 'na')::int
                        FROM crm_lead l
                   LEFT JOIN crm_stage s ON s.id = l.stage_id
                        JOIN crm_sop_task t ON t.lead_id = l.id
                       WHERE t.active
                         AND (l.type = 'opportunity' AND (%(won)s OR %(lost)s))
                             IS NOT TRUE
                  ) c
                  JOIN crm_sop_task_template tt ON tt.id = c.task_key
              GROUP BY 1, 2, 3
                HAVING SUM(c.task_count) != 0
            ), reasons AS (
                SELECT task_key, company_key,
                       STRING_AGG(reason || ' (' || n || ')', E'\n'
                                  ORDER BY n DESC, reason) AS na_reasons
                  FROM (
                      SELECT t.task_template_id AS task_key,
                             COALESCE(l.company_id, 0) AS company_key,
                             COALESCE(NULLIF(TRIM(t.na_reason), ''), '?') AS reason,
                             COUNT(*) AS n
                        FROM crm_sop_task t
                        JOIN crm_lead l ON l.id = t.lead_id
                       WHERE t.active AND t.state = 'na'
                    GROUP BY 1, 2, 3
                  ) r
              GROUP BY 1, 2
            ), suggestions AS (
                SELECT COALESCE(task_template_id, 0) AS task_key,
                       stage_id AS sop_stage_id,
                       COALESCE(company_id, 0) AS company_key,
                       COUNT(*) AS suggestion_count,
                       COUNT(*) FILTER (WHERE not_helpful) AS not_helpful_count,
                       COUNT(*) FILTER (WHERE state = 'new') AS new_suggestion_count
                  FROM crm_sop_suggestion
              GROUP BY 1, 2, 3
            ), k AS (
                SELECT task_key, sop_stage_id, company_key FROM tasks
                 UNION
                SELECT task_key, sop_stage_id, company_key FROM suggestions
            )
            """,
            # the task analysis' own rows: the lift cannot drift from it
            task_report=self.env["crm.sop.task.report"]._sop_query(),
            won=SQL(SOP_WON_SQL),
            lost=SQL(SOP_LOST_SQL),
        )

    def _select(self):
        return SQL(
            """
            SELECT %(id)s AS id,
                   CASE WHEN k.task_key > 0 THEN 'task' ELSE 'stage' END AS scope,
                   NULLIF(k.task_key, 0) AS task_template_id,
                   k.sop_stage_id, ss.template_id,
                   NULLIF(k.company_key, 0) AS company_id,
                   COALESCE(t.task_count, 0) AS task_count,
                   COALESCE(t.set_aside_count, 0) AS set_aside_count,
                   100.0 * t.set_aside_count / NULLIF(t.task_count, 0)
                       AS set_aside_rate,
                   r.na_reasons,
                   COALESCE(s.suggestion_count, 0) AS suggestion_count,
                   COALESCE(s.not_helpful_count, 0) AS not_helpful_count,
                   COALESCE(s.new_suggestion_count, 0) AS new_suggestion_count,
                   COALESCE(lf.done_count + lf.not_done_count, 0) AS closed_count,
                   COALESCE(lf.done_count, 0) AS done_count,
                   COALESCE(lf.won_done_count, 0) AS won_done_count,
                   COALESCE(lf.not_done_count, 0) AS not_done_count,
                   COALESCE(lf.won_not_done_count, 0) AS won_not_done_count,
                   100.0 * lf.won_done_count / NULLIF(lf.done_count, 0)
                   - 100.0 * lf.won_not_done_count / NULLIF(lf.not_done_count, 0)
                       AS lift
            """,
            id=SQL(FEEDBACK_ID_SQL),
        )

    def _from(self):
        return SQL(
            """
              FROM k
              JOIN crm_sop_stage ss ON ss.id = k.sop_stage_id
         LEFT JOIN tasks t
                ON t.task_key = k.task_key AND t.company_key = k.company_key
         LEFT JOIN reasons r
                ON r.task_key = k.task_key AND r.company_key = k.company_key
         LEFT JOIN suggestions s
                ON s.task_key = k.task_key AND s.sop_stage_id = k.sop_stage_id
               AND s.company_key = k.company_key
         LEFT JOIN lift lf
                ON lf.task_key = k.task_key AND lf.company_key = k.company_key
            """
        )

    def _sop_query(self):
        return SQL("%s %s %s", self._with(), self._select(), self._from())

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                "CREATE OR REPLACE VIEW %s AS (%s)",
                SQL.identifier(self._table),
                self._sop_query(),
            )
        )

    # ------------------------------------------------------------
    # ACTIONS (drill-down)
    # ------------------------------------------------------------

    def _sop_company_domain(self, fname):
        return [(fname, "=", self.company_id.id or False)]

    def action_sop_view_suggestions(self):
        """The suggestions behind the row."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_sales_sop.crm_sop_suggestion_action"
        )
        action["domain"] = [
            ("stage_id", "=", self.sop_stage_id.id),
            ("task_template_id", "=", self.task_template_id.id or False),
            *self._sop_company_domain("company_id"),
        ]
        action["context"] = {}
        action["display_name"] = self.env._(
            "Suggestions: %(subject)s",
            subject=(self.task_template_id or self.sop_stage_id).display_name,
        )
        return action

    def action_sop_view_set_aside(self):
        """The deals' tasks of the row set aside, with their reasons."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._(
                "Set aside: %(task)s", task=self.task_template_id.display_name
            ),
            "res_model": "crm.sop.task",
            "view_mode": "list",
            "views": [
                (
                    self.env.ref("crm_sales_sop.crm_sop_task_view_list_set_aside").id,
                    "list",
                )
            ],
            "domain": [
                ("task_template_id", "=", self.task_template_id.id),
                ("state", "=", "na"),
                *self._sop_company_domain("lead_id.company_id"),
            ],
            "context": {"create": False},
        }

import logging
from collections import defaultdict

from odoo import api, models
from odoo.tools import SQL, split_every

from .crm_sop_config import SopTaskRow

_logger = logging.getLogger(__name__)

# leads evaluated per pass when a whole playbook or the install reaches them
EVALUATE_CHUNK = 5000


class CrmSopTask(models.Model):
    """The engine, instantiation: which playbook each opportunity follows,
    its task rows inserted and pruned in SQL (new leads, playbook edits,
    install)."""

    _inherit = "crm.sop.task"

    # ------------------------------------------------------------
    # ENGINE: instantiation
    # ------------------------------------------------------------

    @api.model
    def _sop_sync(self, leads, new=False, evaluate=None):
        """Give each lead the playbook of its team (or the company fallback) and
        that playbook's tasks, then evaluate them. ``new``: the leads were just
        created (nothing to prune; the playbook is written with the summary).
        ``evaluate``: leads to evaluate even if their playbook does not change.
        Costs no query when nothing changes."""
        if not leads:
            return
        Template = self.env["crm.sop.template"]
        targets = {}
        for lead in leads:
            template_id = (
                Template._sop_template_for(lead.team_id, lead.company_id)
                if lead.active
                else lead.sop_template_id.id
            )
            if lead.sop_template_id.id != template_id:
                targets[lead.id] = template_id
        if new:
            if targets:
                rows = self._sop_insert(templates=targets)
                self._sop_evaluate(leads.browse(list(targets)), rows, targets)
            return
        if targets:
            self._sop_set_templates(targets)
            self._sop_prune(list(targets))
            self._sop_insert(lead_ids=list(targets))
        self._sop_evaluate(leads.browse(list(targets)) | (evaluate or leads.browse()))

    @api.model
    def _sop_set_templates(self, targets):
        """targets: {lead id: playbook id or False}; one UPDATE per playbook."""
        self._sop_flush()
        by_template = defaultdict(list)
        for lead_id, template_id in targets.items():
            by_template[template_id].append(lead_id)
        for template_id, lead_ids in by_template.items():
            self.env.cr.execute(
                SQL(
                    "UPDATE crm_lead SET sop_template_id = %s WHERE id = ANY(%s)",
                    template_id or None,
                    lead_ids,
                )
            )
        self.env["crm.lead"].browse(list(targets)).invalidate_recordset(
            ["sop_template_id"]
        )

    @api.model
    def _sop_flush(self, lead_fields=()):
        """Flush what the engine's SQL reads, and only that: flushing everything
        would compute unrelated pending fields (e.g. PLS probabilities) earlier
        than core does."""
        self.env["crm.lead"].flush_model(["sop_template_id", "active", *lead_fields])
        self.env["crm.sop.task.template"].flush_model(
            ["template_id", "stage_id", "active", "name"]
        )
        self.env["crm.sop.stage"].flush_model(["active"])
        self.flush_model()

    @api.model
    def _sop_deferred(self):
        """While this module's own data is loaded, playbook changes do not reach
        leads one record at a time: the post_init_hook does it once for all."""
        # the registry is not ready while modules load: a client sending the
        # install_module key itself does not defer anything
        return (
            not self.pool.ready
            and self.env.context.get("install_module") == "crm_sales_sop"
        )

    @api.model
    def _sop_sync_all(self, everything=False):
        """Re-map every open opportunity to its playbook (install, playbook
        changes), by chunks, without per-record ORM work:

        - leads without playbook yet take the path of new leads: their tasks
          are inserted with RETURNING and evaluated from those rows, and the
          playbook is written with the summary (one UPDATE of crm_lead);
        - leads mapped to another playbook: one UPDATE per (team, company),
          then their old open tasks go, the new ones are inserted, evaluated.

        ``everything`` (install): also insert and evaluate the missing tasks
        of leads already mapped (created while the module's data loaded)."""
        if self._sop_deferred() and not everything:
            return
        self._sop_flush(["team_id", "company_id", "probability"])
        Lead = self.env["crm.lead"].with_context(
            active_test=False, prefetch_fields=False
        )
        Template = self.env["crm.sop.template"]
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT team_id, company_id FROM crm_lead
                    WHERE active AND COALESCE(probability, 0) < 100
                      AND sop_template_id IS NOT NULL"""
            )
        )
        changed_ids = []
        for team_id, company_id in self.env.cr.fetchall():
            template_id = Template._sop_template_for(
                self.env["crm.team"].browse(team_id),
                self.env["res.company"].browse(company_id),
            )
            self.env.cr.execute(
                SQL(
                    """UPDATE crm_lead SET sop_template_id = %(template)s
                        WHERE active AND COALESCE(probability, 0) < 100
                          AND sop_template_id IS NOT NULL
                          AND team_id IS NOT DISTINCT FROM %(team)s
                          AND company_id IS NOT DISTINCT FROM %(company)s
                          AND sop_template_id IS DISTINCT FROM %(template)s
                    RETURNING id""",
                    template=template_id or None,
                    team=team_id,
                    company=company_id,
                )
            )
            changed_ids += [row[0] for row in self.env.cr.fetchall()]
        Lead.invalidate_model(["sop_template_id"])
        if changed_ids:
            self._sop_prune(changed_ids)
            self._sop_insert(changed_ids)
            self._sop_evaluate_ids(changed_ids)
        mapped_ids = []
        if everything:
            # leads mapped before this pass whose playbook did not change
            self.env.cr.execute(
                SQL(
                    """SELECT id FROM crm_lead
                        WHERE active AND COALESCE(probability, 0) < 100
                          AND sop_template_id IS NOT NULL AND id != ALL(%s)
                     ORDER BY id""",
                    changed_ids,
                )
            )
            mapped_ids = [row[0] for row in self.env.cr.fetchall()]
        # leads without playbook yet: the path of new leads
        self.env.cr.execute(
            SQL(
                """SELECT id FROM crm_lead
                    WHERE active AND COALESCE(probability, 0) < 100
                      AND sop_template_id IS NULL
                 ORDER BY id"""
            )
        )
        for ids in split_every(
            EVALUATE_CHUNK, [row[0] for row in self.env.cr.fetchall()]
        ):
            leads = Lead.browse(ids)
            leads.fetch(["team_id", "company_id", "sop_template_id", "active"])
            self._sop_sync(leads, new=True)
            # keep memory flat on large databases
            self.env.invalidate_all(flush=True)
        if everything and mapped_ids:
            self._sop_insert(mapped_ids)
            self._sop_evaluate_ids(mapped_ids)

    @api.model
    def _sop_insert(self, lead_ids=None, task_template_ids=None, templates=None):
        """Create the missing tasks of the leads' playbooks in one statement
        (and reactivate those archived earlier). ``templates``: {lead id:
        playbook id} of new leads whose playbook is not written yet.
        Returns the rows (id, lead_id, task_template_id, state, sent) created or
        reactivated."""
        conditions = [SQL("tt.active"), SQL("s.active")]
        if templates is not None:
            pairs = [(lead_id, tid) for lead_id, tid in templates.items() if tid]
            if not pairs:
                return []
            source = SQL(
                "(VALUES %s) AS l(id, sop_template_id)",
                SQL(", ").join(SQL("(%s, %s)", lead_id, tid) for lead_id, tid in pairs),
            )
        else:
            source = SQL("crm_lead l")
        if lead_ids is not None:
            conditions.append(SQL("l.id = ANY(%s)", list(lead_ids)))
        open_leads = task_template_ids is not None
        if open_leads:
            # a task added to a live playbook reaches its open opportunities
            conditions.append(SQL("tt.id = ANY(%s)", list(task_template_ids)))
            conditions.append(SQL("l.active AND COALESCE(l.probability, 0) < 100"))
        self._sop_flush(["probability"] if open_leads else ())
        self.env.cr.execute(
            SQL(
                """INSERT INTO crm_sop_task (lead_id, task_template_id, stage_id,
                           state, active)
                    SELECT l.id, tt.id, tt.stage_id, 'todo', TRUE
                      FROM %(source)s
                      JOIN crm_sop_task_template tt
                        ON tt.template_id = l.sop_template_id
                      JOIN crm_sop_stage s ON s.id = tt.stage_id
                     WHERE %(where)s
                ON CONFLICT (lead_id, task_template_id)
                DO UPDATE SET active = TRUE WHERE crm_sop_task.active IS NOT TRUE
                RETURNING id, lead_id, task_template_id, state, date_script_sent""",
                source=source,
                where=SQL(" AND ").join(conditions),
            )
        )
        rows = [SopTaskRow(*row) for row in self.env.cr.fetchall()]
        self.invalidate_model()
        self.env["crm.lead"].invalidate_model(["sop_task_ids"])
        return rows

    @api.model
    def _sop_prune(self, lead_ids=None, task_template_ids=None):
        """Tasks that no longer belong to their lead's playbook (or whose
        template was archived): open ones are deleted, done ones archived with
        their history."""
        condition = SQL(
            """(tt.template_id IS DISTINCT FROM l.sop_template_id
                 OR NOT tt.active OR NOT s.active)"""
        )
        if lead_ids is not None:
            condition = SQL("%s AND t.lead_id = ANY(%s)", condition, list(lead_ids))
        if task_template_ids is not None:
            condition = SQL(
                "%s AND t.task_template_id = ANY(%s)",
                condition,
                list(task_template_ids),
            )
        self._sop_flush()
        self.env.cr.execute(
            SQL(
                """DELETE FROM crm_sop_task t
                     USING crm_sop_task_template tt, crm_sop_stage s, crm_lead l
                    WHERE tt.id = t.task_template_id AND s.id = tt.stage_id
                      AND l.id = t.lead_id AND t.state = 'todo' AND %s""",
                condition,
            )
        )
        self.env.cr.execute(
            SQL(
                """UPDATE crm_sop_task t SET active = FALSE
                     FROM crm_sop_task_template tt, crm_sop_stage s, crm_lead l
                    WHERE tt.id = t.task_template_id AND s.id = tt.stage_id
                      AND l.id = t.lead_id AND t.active AND %s""",
                condition,
            )
        )
        self.invalidate_model()
        self.env["crm.lead"].invalidate_model(["sop_task_ids"])

    @api.model
    def _sop_instantiate_templates(self, task_templates):
        """A task template was added, moved, archived or restored: open
        opportunities of its playbook get (or lose) its task."""
        if not task_templates or self._sop_deferred():
            return
        self._sop_prune(task_template_ids=task_templates.ids)
        self._sop_insert(task_template_ids=task_templates.ids)
        self._sop_evaluate_templates(task_templates)

    @api.model
    def _sop_evaluate_templates(self, task_templates):
        """Re-evaluate every lead holding a task of these task templates."""
        if self._sop_deferred():
            return
        self._sop_flush()
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT t.lead_id FROM crm_sop_task t
                    WHERE t.task_template_id = ANY(%s)""",
                task_templates.ids,
            )
        )
        self._sop_evaluate_ids([row[0] for row in self.env.cr.fetchall()])

    @api.model
    def _sop_evaluate_ids(self, lead_ids):
        Lead = self.env["crm.lead"].with_context(active_test=False)
        for ids in split_every(EVALUATE_CHUNK, lead_ids):
            self._sop_evaluate(Lead.browse(ids))
            # keep memory flat on large installs
            self.env.invalidate_all(flush=True)

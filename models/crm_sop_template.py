from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from odoo.addons.base.models.ir_model import MODULE_UNINSTALL_FLAG

from .crm_sop_deal import SOP_OPEN_SQL


class CrmSopTemplate(models.Model):
    _name = "crm.sop.template"
    _description = "Sales SOP Playbook"
    _inherit = ["crm.sop.company.mixin"]
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company",
        index=True,
        help="Leave empty to share the playbook between companies.",
    )
    team_ids = fields.Many2many(
        "crm.team",
        string="Sales Teams",
        check_company=True,
        help="Teams whose opportunities follow this playbook. A playbook without "
        "team is the fallback for opportunities of any other team.",
    )
    stage_ids = fields.One2many("crm.sop.stage", "template_id", string="Stages")
    task_template_ids = fields.One2many(
        "crm.sop.task.template", "template_id", string="Tasks"
    )
    description = fields.Html(translate=True)
    stage_count = fields.Integer(compute="_compute_stage_count")
    lead_count = fields.Integer(compute="_compute_lead_count", string="Opportunities")

    @api.depends("stage_ids")
    def _compute_stage_count(self):
        for template in self:
            template.stage_count = len(template.stage_ids)

    def _compute_lead_count(self):
        counts = dict(
            self.env["crm.lead"]._read_group(
                [("sop_template_id", "in", self.ids)],
                ["sop_template_id"],
                ["__count"],
            )
        )
        for template in self:
            template.lead_count = counts.get(template, 0)

    @api.constrains("team_ids", "company_id")
    def _check_team_ids(self):
        for template in self:
            # core's check_company passes a many2many when one value fits:
            # every team of a company's playbook belongs to that company
            foreign = template.sudo().team_ids.filtered(
                lambda team, template=template: (
                    team.company_id
                    and template.company_id
                    and team.company_id != template.company_id
                )
            )
            if foreign:
                raise ValidationError(
                    self.env._(
                        "The playbook “%(playbook)s” belongs to the company "
                        "“%(company)s”: it cannot serve the sales teams of "
                        "another company (%(teams)s).",
                        playbook=template.name,
                        company=template.company_id.name,
                        teams=", ".join(foreign.mapped("name")),
                    )
                )
            template._sop_check_stage_teams(template.stage_ids)

    def _sop_check_stage_teams(self, stages):
        """A SOP stage belongs to a pipeline stage its opportunities can be in:
        a shared one, or one of the playbook's teams."""
        self.ensure_one()
        for stage in stages:
            # sudo: the pipeline stage's team is compared, whoever may read it
            team = stage.sudo().crm_stage_id.team_id
            if team and team not in self.sudo().team_ids:
                raise ValidationError(
                    self.env._(
                        "The SOP stage “%(stage)s” belongs to the pipeline stage "
                        "“%(crm_stage)s” of the team “%(team)s”, which does not "
                        "follow the playbook “%(playbook)s”.",
                        stage=stage.name,
                        crm_stage=stage.sudo().crm_stage_id.name,
                        team=team.name,
                        playbook=self.name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        templates = super().create(vals_list)
        self.env["crm.sop.task.template"]._sop_clear_caches()
        if any(t.active for t in templates):
            self.env["crm.sop.engine"]._sop_sync_all()
        return templates

    def write(self, vals):
        mapping = {"active", "team_ids", "company_id", "sequence"} & vals.keys()
        before = self._sop_mapping() if mapping else None
        # its SOP stages and tasks written line by line (reordered, gates
        # set) ask for their deals once
        with self.env["crm.sop.engine"]._sop_evaluate_once():
            res = super().write(vals)
        if mapping:
            self.env["crm.sop.task.template"]._sop_clear_caches()
            # dragging playbooks in the list writes each row's sequence: leads
            # are re-mapped only when a write changes which playbook applies
            if self._sop_mapping() != before:
                self.env["crm.sop.engine"]._sop_sync_all()
        return res

    def unlink(self):
        """Stages (and their tasks) go first: those holding done tasks are archived
        with the playbook rather than deleted, so the history stays; so is a
        playbook open deals still map to (the setup job re-maps them)."""
        if self.env.context.get(MODULE_UNINSTALL_FLAG):
            # the addon is uninstalled: its tables go, history included
            return super().unlink()
        # archived ones too (their tasks' deals pruned by the setup job since)
        self.with_context(active_test=False).stage_ids.unlink()
        keep = self.with_context(active_test=False).stage_ids.template_id
        # the open deals of the others are re-mapped first as when they are
        # archived (at most SOP_SETUP_INLINE in this save, but those a rep is
        # saving; the others by the setup job), rather than by the deletion,
        # which would write every one of them in this save (their key
        # emptied); one that open deals still map to stays archived
        self.filtered("active").action_archive()
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """SELECT l.sop_template_id, COUNT(*) FROM crm_lead l
                    WHERE l.sop_template_id = ANY(%s) AND %s
                 GROUP BY l.sop_template_id""",
                self.ids,
                SQL(SOP_OPEN_SQL),
            )
        )
        following = dict(self.env.cr.fetchall())
        keep |= self.browse(list(following))
        self._sop_notify_kept(following)
        # the deals left mapped to those deleted are closed (never re-mapped)
        return super(CrmSopTemplate, self - keep).unlink()

    def _sop_notify_kept(self, following):
        """Tell the user who deleted playbooks that open deals still follow
        (``following``: {playbook id: open deals}) that they are archived
        instead, and why."""
        if self.env.su:
            return
        for playbook in self.browse(list(following)):
            self.env.user._bus_send(
                "simple_notification",
                {
                    "type": "warning",
                    "title": self.env._("Playbook archived, not deleted"),
                    "message": self.env._(
                        "%(count)s open opportunities still follow “%(playbook)s”: "
                        "they move to their team's playbook in the background, "
                        "the newest first. Delete it again once they have.",
                        count=following[playbook.id],
                        playbook=playbook.name,
                    ),
                },
            )

    def action_view_leads(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm.crm_lead_action_pipeline"
        )
        action["domain"] = [("sop_template_id", "=", self.id)]
        action["context"] = {"active_test": True}
        return action

    @api.model
    def _sop_template_for(self, team, company):
        """The playbook of a (team, company): the first active one of the team,
        else the first active one without team, for that company or shared."""
        company_id = company.id
        candidates = self._sop_get_active()
        for template_id, team_ids, template_company_id in candidates:
            if team.id in team_ids and template_company_id in (False, company_id):
                return template_id
        for template_id, team_ids, template_company_id in candidates:
            if not team_ids and template_company_id in (False, company_id):
                return template_id
        return False

    @api.model
    def _sop_mapping(self):
        """Which playbook applies to every kind of (team, company): the teams
        and companies the active playbooks name, and any other (None). Equal
        mappings send every opportunity to the same playbook. No query once
        the active playbooks are cached."""
        candidates = self._sop_get_active()
        teams = {team_id for _tid, team_ids, _cid in candidates for team_id in team_ids}
        companies = {cid for _tid, _team_ids, cid in candidates if cid}
        Team, Company = self.env["crm.team"], self.env["res.company"]
        return {
            (team_id, company_id): self._sop_template_for(
                Team.browse(team_id), Company.browse(company_id)
            )
            for team_id in teams | {None}
            for company_id in companies | {None}
        }

    @api.model
    @tools.ormcache()
    def _sop_get_active(self):
        # sudo: playbooks are configuration; which one applies does not depend
        # on the reader's rights (multi-company is matched explicitly above).
        templates = self.sudo().search_fetch(
            [("active", "=", True)], ["team_ids", "company_id"]
        )
        return tuple(
            (t.id, frozenset(t.team_ids.ids), t.company_id.id) for t in templates
        )

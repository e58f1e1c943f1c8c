from collections import defaultdict

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError

# how many blocked opportunities an error message names before summarising
GATE_ERROR_MAX_LEADS = 5


class CrmLead(models.Model):
    _inherit = "crm.lead"

    sop_template_id = fields.Many2one(
        "crm.sop.template",
        string="Sales Playbook",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The playbook of the sales team (or the company fallback).",
    )
    sop_task_ids = fields.One2many(
        "crm.sop.task", "lead_id", string="SOP Tasks", readonly=True
    )
    sop_stage_id = fields.Many2one(
        "crm.sop.stage",
        string="SOP Stage",
        readonly=True,
        copy=False,
        help="The first SOP stage with open tasks.",
    )
    sop_progress = fields.Integer(
        string="SOP Progress",
        readonly=True,
        copy=False,
        aggregator="avg",
        help="Share of the opportunity's SOP tasks that are done (0-100).",
    )
    # indexed: deleting tasks (playbook edits) sets it to NULL through its
    # foreign key, which would otherwise scan crm_lead once per deleted task
    sop_next_task_id = fields.Many2one(
        "crm.sop.task",
        string="Next Step",
        readonly=True,
        copy=False,
        index="btree_not_null",
    )
    sop_stage_guidance = fields.Html(
        related="sop_stage_id.guidance", string="Stage Guidance"
    )
    # visit data and first intent, collected by the default playbook
    sop_companions = fields.Char(
        string="Companions", help="Who came with the customer (spouse, family...)."
    )
    sop_decision_makers = fields.Char(
        string="Decision Makers", help="Who decides the purchase, and who weighs in."
    )
    sop_intended_category = fields.Char(
        string="Intended Product Category", help="e.g. bed, sofa, wardrobe"
    )
    sop_intended_style = fields.Char(
        string="Intended Style", help="e.g. modern, classic, Nordic"
    )

    # ------------------------------------------------------------
    # VIEWS
    # ------------------------------------------------------------

    @api.model
    def _get_view(self, view_id=None, view_type="form", **options):
        # the "Fill in" dialog of a SOP task (see crm.sop.task.template)
        return self.env["crm.sop.task.template"]._sop_get_fill_view(
            self, super()._get_view(view_id, view_type, **options), view_type
        )

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        leads = super().create(vals_list)
        self.env["crm.sop.task"]._sop_sync(leads, new=True)
        return leads

    def write(self, vals):
        if vals.get("stage_id"):
            self._sop_check_gates(vals["stage_id"])
        # tasks are re-evaluated only for leads whose watched values really
        # change, and the playbook only re-synced for leads whose (team,
        # company) maps to another playbook: core crm writes leads one by one
        # when it assigns or converts them, often with unchanged values
        watched = [
            fname
            for fname in self.env["crm.sop.task.template"]._sop_watched_fields(
                "crm.lead"
            )
            if fname in vals
        ]
        before = {lead.id: [lead[fname] for fname in watched] for lead in self}
        remap = bool({"team_id", "company_id", "user_id"} & vals.keys())
        playbook_before = self._sop_playbook_map() if remap else {}
        res = super().write(vals)
        changed = self.filtered(
            lambda lead: [lead[fname] for fname in watched] != before[lead.id]
        )
        if vals.get("active"):
            resync = self
        elif remap:
            playbook_after = self._sop_playbook_map()
            resync = self.filtered(
                lambda lead: playbook_after[lead.id] != playbook_before[lead.id]
            )
        else:
            resync = self.browse()
        Task = self.env["crm.sop.task"]
        if resync:
            Task._sop_sync(resync, evaluate=changed)
        elif changed:
            Task._sop_evaluate(changed)
        return res

    def _sop_playbook_map(self):
        """{lead id: the playbook its team and company map to} (no query when
        team and company are in cache)."""
        Template = self.env["crm.sop.template"]
        return {
            lead.id: Template._sop_template_for(lead.team_id, lead.company_id)
            for lead in self
        }

    # ------------------------------------------------------------
    # STAGE GATING
    # ------------------------------------------------------------

    def _sop_check_gates(self, stage_id):
        """Moving opportunities forward past a gated SOP stage whose required
        tasks are open: ``block`` refuses (sales managers pass, logged), ``warn``
        lets it pass and logs the open tasks. One query for the whole write."""
        config = self.env["crm.sop.task.template"]._sop_config()
        gated = {
            c.id: c
            for c in config.values()
            if c.gate != "none" and c.crm_stage_id and c.required
        }
        if not gated:
            return
        target = self.env["crm.stage"].browse(stage_id)
        gated_templates = {c.template_id for c in gated.values()}
        # a lead getting its first stage is not moving past anything
        leads = self.filtered(
            lambda lead: (
                lead.sop_template_id.id in gated_templates
                and lead.stage_id
                and lead.stage_id != target
            )
        )
        if not leads:
            return
        Stage = self.env["crm.stage"].sudo()
        stages = Stage.browse(
            {c.crm_stage_id for c in gated.values()}
            | set(leads.stage_id.ids)
            | {target.id}
        )
        stages.fetch(["sequence"])

        def order(stage):
            return (stage.sequence, stage.id) if stage else (-1, 0)

        target_order = order(target.sudo())
        open_tasks = (
            self.env["crm.sop.task"]
            .sudo()
            .search_fetch(
                [
                    ("lead_id", "in", leads.ids),
                    ("state", "=", "todo"),
                    ("task_template_id", "in", list(gated)),
                ],
                ["lead_id", "task_template_id", "stage_id"],
            )
        )
        missing = defaultdict(list)
        for task in open_tasks:
            c = gated[task.task_template_id.id]
            lead = task.lead_id
            if target_order <= order(lead.stage_id.sudo()):
                continue  # moving back or sideways is always allowed
            if order(Stage.browse(c.crm_stage_id)) < target_order:
                missing[lead].append((c, task))
        if not missing:
            return
        blocking = {
            lead: items
            for lead, items in missing.items()
            if any(c.gate == "block" for c, _task in items)
        }
        can_pass = self.env.su or self.env.user.has_group(
            "sales_team.group_sale_manager"
        )
        if blocking and not can_pass:
            lines = []
            for lead, items in list(blocking.items())[:GATE_ERROR_MAX_LEADS]:
                tasks = "\n".join(
                    f"  - {task.stage_id.name}: {task.name}"
                    for c, task in items
                    if c.gate == "block"
                )
                lines.append(
                    self.env._(
                        "“%(lead)s” needs these Sales SOP tasks done first:\n%(tasks)s",
                        lead=lead.display_name,
                        tasks=tasks,
                    )
                )
            if len(blocking) > GATE_ERROR_MAX_LEADS:
                lines.append(
                    self.env._(
                        "... and %(count)s more opportunities.",
                        count=len(blocking) - GATE_ERROR_MAX_LEADS,
                    )
                )
            raise UserError(
                self.env._(
                    "You cannot move to “%(stage)s” yet.\n\n%(details)s",
                    stage=target.display_name,
                    details="\n\n".join(lines),
                )
            )
        bodies = {}
        for lead, items in missing.items():
            if lead in blocking:
                intro = self.env._(
                    "Moved to “%(stage)s” past a blocking Sales SOP gate by "
                    "%(user)s; open required tasks:",
                    stage=target.display_name,
                    user=self.env.user.name,
                )
            else:
                intro = self.env._(
                    "Moved to “%(stage)s” with open required Sales SOP tasks:",
                    stage=target.display_name,
                )
            bodies[lead.id] = Markup("<p>%s</p><ul>%s</ul>") % (
                intro,
                Markup().join(
                    Markup("<li>%s: %s</li>") % (task.stage_id.name, task.name)
                    for _c, task in items
                ),
            )
        self.browse(list(bodies))._message_log_batch(bodies)

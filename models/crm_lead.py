import ast
import json
from itertools import filterfalse

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools.sql import create_index

from .crm_sop_history_count import (
    SOP_HISTORY_CLOSING_FIELDS,
    SOP_HISTORY_LEAD_FIELDS,
)
from .crm_sop_task_fact import SOP_FACT_LEAD_FIELDS

# an index of core's table: the uninstall drops it (hooks.py)
SOP_DATE_CLOSED_INDEX = "crm_lead_sop_date_closed_index"

# set by the engine only (in SQL): refused in create and write
SOP_ENGINE_FIELDS = (
    "sop_template_id",
    "sop_task_ids",
    "sop_stage_id",
    "sop_progress",
    "sop_next_task_id",
    # stalled deals (crm_sop_engine.py, STALLED DEALS)
    "sop_stage_date",
    "sop_forward_date",
    "sop_gate_held",
    "sop_stalled",
    # closing prediction (crm_sop_prediction.py)
    "sop_progress_band",
)
# looked up for each of the ~200 fields of every new lead's defaults
SOP_ENGINE_FIELD_SET = frozenset(SOP_ENGINE_FIELDS)


class CrmLead(models.Model):
    _inherit = ["crm.lead", "crm.sop.record.mixin"]
    _name = "crm.lead"

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
    # stalled deals: set by the engine (summary update, stall pass) in SQL
    sop_stage_date = fields.Datetime(
        string="SOP Moved On",
        readonly=True,
        copy=False,
        help="When the opportunity's SOP last moved forward: created, moved "
        "to a later pipeline stage, or a task done for the first time.",
    )
    sop_forward_date = fields.Datetime(
        string="Moved Forward On",
        readonly=True,
        copy=False,
        help="When the opportunity's pipeline stage last moved forward.",
    )
    sop_gate_held = fields.Boolean(
        string="Held by a Gate",
        readonly=True,
        copy=False,
        help="A blocking gate of its pipeline stage holds the opportunity: "
        "required tasks are open before it can move on.",
    )
    sop_stalled = fields.Boolean(
        string="SOP Stalled",
        readonly=True,
        copy=False,
        help="The SOP has not moved for the stall days of its current SOP "
        "stage (working days of the company's calendar).",
    )
    sop_next_left_behind = fields.Boolean(
        related="sop_next_task_id.left_behind",
        string="Next Step Left Behind",
        help="The next step is a required task of an earlier SOP stage: the "
        "deal has moved on without it.",
    )
    sop_gate_warning = fields.Char(
        string="Left Open Past a Gate",
        compute="_compute_sop_gate_warning",
        help="Required tasks of gated SOP stages the opportunity has moved "
        "past while they were open.",
    )
    sop_stage_guidance = fields.Html(
        related="sop_stage_id.guidance", string="Stage Guidance"
    )

    @api.depends("sop_task_ids.state", "sop_task_ids.left_behind", "stage_id")
    @api.depends_context("lang")
    def _compute_sop_gate_warning(self):
        for lead in self:
            tasks = lead.sop_task_ids.filtered(
                lambda task: (
                    task.left_behind and task.required and task.stage_id.gate != "none"
                )
            )
            if not tasks:
                lead.sop_gate_warning = False
                continue
            lead.sop_gate_warning = self.env._(
                "Required tasks left open past a gate: %(tasks)s.",
                tasks="; ".join(
                    self.env._("%(stage)s: %(task)s", stage=t.stage_name, task=t.name)
                    for t in tasks
                ),
            )

    # ------------------------------------------------------------
    # INIT
    # ------------------------------------------------------------

    def init(self):
        res = super().init()
        # few leads are stalled: the stall pass clears them through this index
        create_index(
            self.env.cr,
            "crm_lead_sop_stalled_index",
            "crm_lead",
            ["id"],
            where="sop_stalled",
        )
        # the days in a SOP stage are compared with the last won deals: found
        # from the newest closing date back (crm_sop_prediction), whatever
        # the history; open and lost (archived) deals hold no entry
        create_index(
            self.env.cr,
            SOP_DATE_CLOSED_INDEX,
            "crm_lead",
            ["date_closed", "id"],
            where="active AND date_closed IS NOT NULL",
        )
        return res

    # ------------------------------------------------------------
    # VIEWS
    # ------------------------------------------------------------

    @api.model
    def _get_view(self, view_id=None, view_type="form", **options):
        arch, view = super()._get_view(view_id, view_type, **options)
        if view_type == "kanban":
            # the column tooltip shows the stage's SOP guidance, under a title
            # in the user's language (the view cache is per language)
            for node in arch.xpath("//field[@name='stage_id'][@options]"):
                node_options = ast.literal_eval(node.get("options") or "{}")
                tooltip = node_options.get("group_by_tooltip")
                if isinstance(tooltip, dict) and "sop_guidance" in tooltip:
                    tooltip["sop_guidance"] = self.env._("Sales SOP")
                    node.set("options", json.dumps(node_options, ensure_ascii=False))
        return arch, view

    def web_read(self, specification):
        # the SOP panel's tasks are read first, for all of them at once: the
        # next step's, the SOP stage's and the playbook's names then come
        # from what that read brought (3 queries fewer per form opened than
        # when the next step is read alone first); the answer is the same
        if "sop_task_ids" in specification:
            specification = {"sop_task_ids": specification["sop_task_ids"]} | {
                name: spec
                for name, spec in specification.items()
                if name != "sop_task_ids"
            }
        return super().web_read(specification)

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    @api.model
    def default_get(self, fields_list):
        # engine-owned fields take no default (context default_*, ir.default):
        # a kanban grouped by SOP stage sends default_sop_stage_id, for
        # instance. Filtered in C (filterfalse over the set's lookup): create
        # asks once per new deal for every field it is not given (some 250
        # names), which a comprehension filtered in some 1,000 steps of
        # Python per deal, a tenth of what the addon added to an import
        return super().default_get(
            list(filterfalse(SOP_ENGINE_FIELD_SET.__contains__, fields_list))
        )

    @api.model_create_multi
    def create(self, vals_list):
        self._sop_check_engine_fields(vals_list)
        leads = super().create(vals_list)
        self.env["crm.sop.engine"]._sop_on_create(leads)
        # a deal created won or lost (an import of history) counts at once;
        # others are open (no stage or state given): nothing to read
        given = leads.browse(
            lead_id
            for lead_id, vals in zip(leads._ids, vals_list, strict=True)
            if "stage_id" in vals or "active" in vals
        )
        closed = self.env["crm.sop.history.count"]._sop_add_leads(given, 1)
        # a new deal has review facts only when created closed
        self.env["crm.sop.task.fact"]._sop_mark(closed.ids)
        return leads

    def write(self, vals):
        self._sop_check_engine_fields([vals])
        Engine = self.env["crm.sop.engine"]
        History = self.env["crm.sop.history.count"]
        # a closed deal's history counts leave before the write and come
        # back after it, as it then is (won, lost, open, another team)
        # the deals this write counts out and in again (not those a write
        # around it already does); what their tasks do meanwhile is in it
        recounted = History._sop_recounted()
        mine = self.browse()
        if not vals.keys().isdisjoint(SOP_HISTORY_LEAD_FIELDS):
            mine = self.browse([lid for lid in self.ids if lid not in recounted])
        closed = History._sop_add_leads(mine, -1) if mine else mine
        recounted.update(mine.ids)
        try:
            before = Engine._sop_before_write(self, vals)
            with Engine._sop_write_gathering() as gathered:
                res = super().write(vals)
            Engine._sop_on_write(self, vals, before, gathered)
        finally:
            recounted.difference_update(mine.ids)
        if mine and not vals.keys().isdisjoint(SOP_HISTORY_CLOSING_FIELDS):
            History._sop_add_leads(mine, 1)
        elif closed:
            # another team, company or type: the same deals are closed
            History._sop_add_leads(closed, 1)
        # what the deals' review facts copy or are decided by; a move of the
        # pipeline stage (core empties the closing date with it) is marked
        # by the record of the moves, where it can change them
        # (crm.sop.task.fact._sop_mark_moved)
        written = vals.keys() & SOP_FACT_LEAD_FIELDS
        if "stage_id" in vals:
            written -= {"stage_id", "date_closed"}
        if written:
            self.env["crm.sop.task.fact"]._sop_mark(self.ids)
        return res

    def unlink(self):
        self.env["crm.sop.history.count"]._sop_add_leads(self, -1)
        return super().unlink()

    @api.model
    def _sop_check_engine_fields(self, vals_list):
        """Only the engine sets the SOP summary, playbook and tasks of an
        opportunity (it does so in SQL): any other create or write of them is
        refused, whoever sends it (form, import, RPC)."""
        forbidden = {fname for vals in vals_list for fname in vals} & set(
            SOP_ENGINE_FIELDS
        )
        if forbidden:
            raise AccessError(
                self.env._(
                    "Only the Sales SOP engine sets these fields of an "
                    "opportunity: %(fields)s.",
                    fields=", ".join(
                        sorted(
                            self._fields[fname]._description_string(self.env)
                            for fname in forbidden
                        )
                    ),
                )
            )

    def _sop_playbook_map(self):
        """{lead id: the playbook its team and company map to} (no query when
        team and company are in cache)."""
        Template = self.env["crm.sop.template"]
        return {
            lead.id: Template._sop_template_for(lead.team_id, lead.company_id)
            for lead in self
        }

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_sop_next(self):
        """The next step's button, from the card or the top of the form."""
        self.ensure_one()
        if not self.sop_next_task_id:
            raise UserError(
                self.env._(
                    "“%(lead)s” has no open Sales SOP task.", lead=self.display_name
                )
            )
        # as the user: the task's record rules and the lead's access apply
        task = self.sop_next_task_id
        if task.kind == "script":
            # from a card or the top of the form the rep sees the script
            # before it leaves; the panel's Send is the one-click
            return task.action_sop_edit_script()
        return task.action_sop_open()

    def action_sop_suggest(self):
        """Suggest a change to the deal's SOP stage (crm.sop.suggestion)."""
        self.ensure_one()
        if not self.sop_stage_id:
            raise UserError(
                self.env._(
                    "“%(lead)s” has no SOP stage to suggest a change to.",
                    lead=self.display_name,
                )
            )
        return self.env["crm.sop.suggestion"]._sop_action_suggest(
            self, stage=self.sop_stage_id
        )

    # ------------------------------------------------------------
    # SCRIPTS (one-click send: crm_sop_script_send.py)
    # ------------------------------------------------------------

    @api.readonly
    def sop_get_scripts(self):
        """The Scripts menu of the SOP panel: the scripts of the deal's SOP
        stage first, the channels, the languages a script may be sent in."""
        self.ensure_one()
        return self.env["crm.sop.script.send"]._sop_menu(self)

    def sop_render_script(self, template_id, lang=None):
        """{'subject', 'body'}: the script rendered for this deal, the body as
        plain text ready to paste in a messenger."""
        self.ensure_one()
        return self.env["crm.sop.script.send"]._sop_text(self, template_id, lang=lang)

    def action_sop_send_script(self, template_id, channel="email", lang=None):
        """Send the script in one click (``copy``: record that the rep sent the
        copied text); it completes the deal's script task with this script.
        Returns what the rep is told: the script, to whom, and the Undo of an
        email still in the outgoing queue."""
        self.ensure_one()
        Send = self.env["crm.sop.script.send"]
        send = Send._sop_send(self, template_id, channel=channel, lang=lang)
        return send._sop_sent_notice(Send._sop_lang(self, lang))

    def action_sop_copy_script(self, template_id, lang=None):
        """Copy the rendered script to the clipboard; the rep then confirms
        that it was sent (crm_sales_sop.copy_script client action)."""
        self.ensure_one()
        return self.env["crm.sop.script.send"]._sop_copy_action(
            self, template_id, lang=lang
        )

    def action_sop_edit_script(self, template_id, lang=None):
        """ "Edit first": the usual composer with the script, in the language
        the rep chose (``lang``, else as a one-click send picks it); sending
        from it counts too."""
        self.ensure_one()
        Send = self.env["crm.sop.script.send"]
        template = Send._sop_script(self, template_id)
        return Send._sop_composer_action(self, template, lang=lang)

    # ------------------------------------------------------------
    # MERGE
    # ------------------------------------------------------------

    def _create_customer(self):
        """A customer created from a deal reads the rep's language unless the
        deal has one (core's values then set it): scripts reach them in it.
        Core leaves it to the context the customer happens to be created in."""
        lead = self
        if self.env.user.lang and not self.env.context.get("default_lang"):
            lead = self.with_context(default_lang=self.env.user.lang)
        return super(CrmLead, lead)._create_customer()

    def _merge_get_fields(self):
        # what the playbooks collect on the opportunity merges as core's own
        # fields (the first deal's value that is set; texts put together),
        # those the user may read and write: a field kept to a group they
        # lack stays as the kept deal has it, as core's merge would leave it
        merged = super()._merge_get_fields()
        collected = self.env["crm.sop.task.template"]._sop_collected_fields(self._name)
        return merged + [
            fname
            for fname in collected
            if fname not in merged
            and self._sop_mergeable(self._fields.get(fname))
            and self._fields[fname].is_accessible(self.env)
        ]

    def _merge_data(self, fnames=None):
        self._sop_fetch_collected()
        return super()._merge_data(fnames)

    @api.model
    def _sop_mergeable(self, field):
        """A field a merge can take from one deal for the deal kept: stored,
        set by hand, neither the engine's nor a list of records."""
        return bool(
            field is not None
            and field.store
            and not field.compute
            and field.type not in ("one2many", "many2many")
            and field.name not in SOP_ENGINE_FIELDS
        )

    def _merge_dependences(self, opportunities):
        res = super()._merge_dependences(opportunities)
        self.env["crm.sop.engine"]._sop_on_merge(self, opportunities)
        self.env["crm.sop.suggestion"]._sop_on_merge(self, opportunities)
        return res

from collections import defaultdict

from markupsafe import Markup

from odoo import api, models
from odoo.exceptions import UserError
from odoo.tools import SQL

# how many blocked opportunities an error message names before summarising
GATE_ERROR_MAX_LEADS = 5


class CrmSopEngine(models.AbstractModel):
    """The Sales SOP engine: what the opportunities' SOP does on its own.

    ``crm.lead`` calls it through named hooks. This file holds the stage
    gates; instantiation, evaluation, the summary and the stall pass still
    live on ``crm.sop.task`` (crm_sop_task_instantiate.py,
    crm_sop_task_evaluate.py, crm_sop_task_stall.py) and move here next.

    STAGE GATES
    A SOP stage linked to a pipeline stage may gate it (``warn`` or
    ``block``): an opportunity that *leaves* that pipeline stage forward, or
    arrives past it from nowhere (created in a later stage, or brought by a
    team change into a playbook whose gate it has not passed), needs the
    required tasks of the SOP stage done. The gate of the playbook the deal
    ends up in decides, whatever the order of the values written: the check
    runs after the write, on the deal's final team, playbook and stage.

    - A deal already past the gated stage when the gate is configured is not
      stopped by it (its open tasks are left behind, as the panel says).
    - Marking a deal won is never refused: the open required tasks are logged
      in the chatter instead.
    - ``warn`` lets the move pass, logs the open tasks and tells the rep.
    - ``block`` refuses; a sales manager passes it, logged and notified, and
      the pass holds for that deal and gate (``crm.sop.gate.pass``).
    """

    _name = "crm.sop.engine"
    _description = "Sales SOP Engine"

    # ------------------------------------------------------------
    # STAGE GATES
    # ------------------------------------------------------------

    @api.model
    def _sop_gated(self):
        """{playbook id: [SopTaskConfig]} of the required tasks of the SOP
        stages that gate a pipeline stage (no query)."""
        gated = defaultdict(list)
        for c in self.env["crm.sop.task.template"]._sop_config().values():
            if c.gate != "none" and c.crm_stage_id and c.required:
                gated[c.template_id].append(c)
        return gated

    @api.model
    def _sop_has_gates(self):
        return bool(self._sop_gated())

    @api.model
    def _sop_gate_check(self, leads, stages_before, entered=(), created=False):
        """Hook of ``crm.lead`` create and write, after the values are
        written: ``stages_before`` {lead id: pipeline stage id it left, or
        None when it comes from nowhere}, ``entered`` the ids of leads that
        came into their playbook (team or company change); ``created``: the
        leads are new. Refuses the moves a block gate holds, logs and tells
        the others."""
        if created:
            entered = set(leads.ids)
        missing = self._sop_gate_missing(leads, stages_before, entered)
        if missing:
            self._sop_gate_apply(missing, created)

    @api.model
    def _sop_gate_missing(self, leads, stages_before, entered=()):
        """{lead: [SopTaskConfig]}: the required tasks of the gated SOP stages
        each lead crosses, not done, without a manager's pass. A gated SOP
        stage is crossed when the lead goes from its pipeline stage (or
        before it, or from nowhere) to a later one. A task the lead lacks
        counts as not done (and is inserted). No query without gates; one
        when nothing is missing."""
        gated = self._sop_gated()
        if not gated:
            return {}
        order = self.env["crm.stage"]._sop_orders()
        candidates = {}
        for lead in leads:
            if not lead.stage_id or lead.sop_template_id.id not in gated:
                continue
            before = None if lead.id in entered else stages_before.get(lead.id)
            if before == lead.stage_id.id:
                continue
            target = order[lead.stage_id.id]
            start = order.get(before) if before else None
            items = [
                c
                for c in gated[lead.sop_template_id.id]
                if (start is None or start <= order[c.crm_stage_id])
                and order[c.crm_stage_id] < target
            ]
            if items:
                candidates[lead] = items
        if not candidates:
            return {}
        rows = self._sop_gate_rows(candidates)
        present = {(lead_id, tt_id) for lead_id, tt_id, _state, _pass in rows}
        absent = [
            lead.id
            for lead, items in candidates.items()
            if any((lead.id, c.id) not in present for c in items)
        ]
        if absent:
            Task = self.env["crm.sop.task"]
            Task._sop_insert(lead_ids=absent)
            Task._sop_evaluate(self.env["crm.lead"].browse(absent))
            rows = self._sop_gate_rows(candidates)
        cleared = {
            (lead_id, tt_id)
            for lead_id, tt_id, state, passed in rows
            if state in ("done", "na") or passed
        }
        missing = {}
        for lead, items in candidates.items():
            undone = [c for c in items if (lead.id, c.id) not in cleared]
            if undone:
                missing[lead] = undone
        return missing

    @api.model
    def _sop_gate_rows(self, candidates):
        """(lead_id, task_template_id, state, passed) of the candidates'
        gated tasks; passed: a manager passed the gate of its SOP stage for
        that lead."""
        self.env["crm.sop.task"].flush_model(["state", "active"])
        self.env["crm.sop.gate.pass"].flush_model()
        self.env.cr.execute(
            SQL(
                """SELECT t.lead_id, t.task_template_id, t.state, p.id IS NOT NULL
                     FROM crm_sop_task t
                     LEFT JOIN crm_sop_gate_pass p
                       ON p.lead_id = t.lead_id AND p.sop_stage_id = t.stage_id
                    WHERE t.active AND t.lead_id = ANY(%s)
                      AND t.task_template_id = ANY(%s)""",
                [lead.id for lead in candidates],
                list({c.id for items in candidates.values() for c in items}),
            )
        )
        return self.env.cr.fetchall()

    @api.model
    def _sop_gate_apply(self, missing, created=False):
        """What the gates do with the open required tasks ``missing``
        {lead: [SopTaskConfig]}: refuse (block, not a manager, not won), or
        let pass, log in the chatter, record a manager's pass and tell the
        user on screen."""
        won_ids = self.env["crm.stage"]._sop_won_ids()
        can_pass = self.env.su or self.env.user.has_group(
            "sales_team.group_sale_manager"
        )
        outcome = {}  # lead: "won" | "passed" | "warned" | "refused"
        for lead, configs in missing.items():
            if lead.stage_id.id in won_ids:
                outcome[lead] = "won"
            elif not any(c.gate == "block" for c in configs):
                outcome[lead] = "warned"
            else:
                outcome[lead] = "passed" if can_pass else "refused"
        names = self.env["crm.sop.task.template"]._sop_names(
            [c.id for configs in missing.values() for c in configs]
        )
        refused = [lead for lead, how in outcome.items() if how == "refused"]
        if refused:
            raise UserError(self._sop_gate_refusal(refused, missing, names, created))
        self._sop_gate_log(missing, outcome, names, created)
        passes = [
            (lead.id, c.stage_id)
            for lead, how in outcome.items()
            if how == "passed"
            for c in missing[lead]
            if c.gate == "block"
        ]
        if passes:
            self.env["crm.sop.gate.pass"]._sop_record(passes)
        self._sop_gate_notify(missing, outcome, names)

    @api.model
    def _sop_task_label(self, names, config):
        stage_name, task_name = names[config.id]
        return self.env._("%(stage)s: %(task)s", stage=stage_name, task=task_name)

    @api.model
    def _sop_gate_refusal(self, refused, missing, names, created):
        """The message of a refused move: which deals need which tasks, and
        where to create a deal that does not exist yet."""
        lines = []
        for lead in refused[:GATE_ERROR_MAX_LEADS]:
            tasks = "\n".join(
                "  - " + self._sop_task_label(names, c)
                for c in missing[lead]
                if c.gate == "block"
            )
            lines.append(
                self.env._(
                    "“%(lead)s” needs these Sales SOP tasks done first:\n%(tasks)s",
                    lead=lead.display_name,
                    tasks=tasks,
                )
            )
        if len(refused) > GATE_ERROR_MAX_LEADS:
            lines.append(
                self.env._(
                    "... and %(count)s more opportunities.",
                    count=len(refused) - GATE_ERROR_MAX_LEADS,
                )
            )
        lead = refused[0]
        if created:
            # quick create in a later column: the deal does not exist yet
            first = self.env["crm.stage"].browse(
                min(
                    (c.crm_stage_id for c in missing[lead] if c.gate == "block"),
                    key=self.env["crm.stage"]._sop_orders().get,
                )
            )
            return self.env._(
                "You cannot create an opportunity in “%(stage)s” yet: create it "
                "in “%(first)s”, then do its Sales SOP tasks there.\n\n%(details)s",
                stage=lead.stage_id.display_name,
                first=first.display_name,
                details="\n\n".join(lines),
            )
        return self.env._(
            "You cannot move to “%(stage)s” yet.\n\n%(details)s",
            stage=lead.stage_id.display_name,
            details="\n\n".join(lines),
        )

    @api.model
    def _sop_gate_log(self, missing, outcome, names, created):
        """One note per deal in its chatter, in one batch."""
        intros = (
            {
                "won": self.env._(
                    "Won in “%(stage)s” with open required Sales SOP tasks:"
                ),
                "passed": self.env._(
                    "Created in “%(stage)s” past a blocking Sales SOP gate by "
                    "%(user)s; open required tasks:"
                ),
                "warned": self.env._(
                    "Created in “%(stage)s” with open required Sales SOP tasks:"
                ),
            }
            if created
            else {
                "won": self.env._(
                    "Won in “%(stage)s” with open required Sales SOP tasks:"
                ),
                "passed": self.env._(
                    "Moved to “%(stage)s” past a blocking Sales SOP gate by "
                    "%(user)s; open required tasks:"
                ),
                "warned": self.env._(
                    "Moved to “%(stage)s” with open required Sales SOP tasks:"
                ),
            }
        )
        bodies = {}
        for lead, configs in missing.items():
            intro = intros[outcome[lead]] % {
                "stage": lead.stage_id.display_name,
                "user": self.env.user.name,
            }
            bodies[lead.id] = Markup("<p>%s</p><ul>%s</ul>") % (
                intro,
                Markup().join(
                    Markup("<li>%s</li>") % self._sop_task_label(names, c)
                    for c in configs
                ),
            )
        self.env["crm.lead"].browse(list(bodies))._message_log_batch(bodies)

    @api.model
    def _sop_gate_notify(self, missing, outcome, names):
        """Tell the user on screen: a manager that they passed a block, a rep
        which required tasks a warn gate (or a won deal) left open."""
        if self.env.su:
            return
        passed = [lead for lead, how in outcome.items() if how == "passed"]
        if passed:
            self.env.user._bus_send(
                "simple_notification",
                {
                    "type": "warning",
                    "title": self.env._("Sales SOP gate passed"),
                    "message": self.env._(
                        "%(leads)s passed a blocking Sales SOP gate with open "
                        "required tasks; it is logged in the chatter.",
                        leads=", ".join(f"“{lead.display_name}”" for lead in passed),
                    ),
                },
            )
        for lead, how in outcome.items():
            if how not in ("warned", "won"):
                continue
            self.env.user._bus_send(
                "simple_notification",
                {
                    "type": "warning",
                    "sticky": True,
                    "title": self.env._("Sales SOP: required tasks left open"),
                    "message": self.env._(
                        "“%(lead)s” moved to “%(stage)s” with these required "
                        "tasks open: %(tasks)s.",
                        lead=lead.display_name,
                        stage=lead.stage_id.display_name,
                        tasks="; ".join(
                            self._sop_task_label(names, c) for c in missing[lead]
                        ),
                    ),
                },
            )

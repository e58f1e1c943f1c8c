import logging
from collections import namedtuple

from odoo import api, models, tools
from odoo.exceptions import ValidationError

_logger = logging.getLogger(__name__)

# What the engine needs to know of an active task template, cached per registry
# (see ``_sop_config``) so that evaluating a batch costs no configuration query.
# The kind-specific part comes from ``_sop_config_<kind>`` (crm_sop_task_kind.py).
SopTaskConfig = namedtuple(
    "SopTaskConfig",
    [
        "id",
        "kind",
        "template_id",
        "stage_id",
        "order",  # (stage sequence, stage id, task sequence, task id)
        "required",
        "gate",
        "crm_stage_id",
        # what its tasks read and watch
        "lead_fields",
        "partner_fields",
        # kind-specific
        "domain",
        "mail_template_id",
        "activity_type_id",
    ],
    defaults=[(), (), None, False, False],
)

# A task row as the engine reads it: SQL, no records (millions of rows).
SopTaskRow = namedtuple(
    "SopTaskRow", ["id", "lead_id", "task_template_id", "state", "date_script_sent"]
)


class CrmSopTaskTemplate(models.Model):
    """The engine's configuration: every active task template as a
    SopTaskConfig, cached per registry and cleared on any playbook change."""

    _inherit = "crm.sop.task.template"

    # ------------------------------------------------------------
    # ENGINE CONFIGURATION (cached)
    # ------------------------------------------------------------

    @api.model
    def _sop_clear_caches(self):
        """The engine's configuration ("default" cache) and the views built
        from it: Fill in dialogs, customer profile ("templates" cache)."""
        self.env.registry.clear_cache("default", "templates")

    @api.model
    @tools.ormcache()
    def _sop_config(self):
        """{task template id: SopTaskConfig} of every active task template."""
        task_templates = (
            self.sudo()
            .with_context(active_test=True)
            .search_fetch(
                [("stage_id.active", "=", True), ("template_id.active", "=", True)],
                [
                    "kind",
                    "scope",
                    "template_id",
                    "stage_id",
                    "sequence",
                    "required",
                    "field_ids",
                    "domain",
                    "mail_template_id",
                    "activity_type_id",
                ],
            )
        )
        config = {}
        for task in task_templates:
            stage = task.stage_id
            config[task.id] = SopTaskConfig(
                id=task.id,
                kind=task.kind,
                template_id=task.template_id.id,
                stage_id=stage.id,
                order=(stage.sequence, stage.id, task.sequence, task.id),
                required=task.required,
                gate=stage.gate,
                crm_stage_id=stage.crm_stage_id.id,
                **getattr(task, f"_sop_config_{task.kind}")(),
            )
        return tools.frozendict(config)

    @api.model
    def _sop_check_kept_on_leads(self, fname, moved, message):
        """``moved`` (scripts, activity types) no longer serve opportunities:
        refused when task templates (archived ones too, of every company) use
        them in ``fname``. ``message``: translated, with %(record)s and
        %(tasks)s."""
        if not moved:
            return
        # sudo: every playbook counts, whoever edits the records
        used = (
            self.sudo()
            .with_context(active_test=False)
            .search([(fname, "in", moved.ids)])
        )
        if used:
            raise ValidationError(
                message
                % {
                    "record": used[0][fname].display_name,
                    "tasks": ", ".join(used.mapped("name")),
                }
            )

    @api.model
    def _sop_names(self, task_template_ids):
        """{task template id: (SOP stage name, task name)} in the user's
        language, for messages about the user's own opportunities."""
        # sudo: the names of the tasks of the playbook an opportunity follows
        task_templates = (
            self.sudo().with_context(active_test=False).browse(task_template_ids)
        )
        return {tt.id: (tt.stage_id.name, tt.name) for tt in task_templates}

    @api.model
    @tools.ormcache("model_name")
    def _sop_watched_fields(self, model_name):
        """Fields of ``model_name`` whose write may change a task's state."""
        names = set()
        for config in self._sop_config().values():
            if model_name == "crm.lead":
                names.update(config.lead_fields)
                if config.partner_fields:
                    names.add("partner_id")
            elif model_name == "res.partner":
                names.update(config.partner_fields)
        model = self.env[model_name]
        for name in list(names):
            field = model._fields.get(name)
            if field is not None and field.compute:
                # a stored computed field changes when what it depends on is written
                names.update(
                    dep.split(".")[0] for dep in self.pool.field_depends[field]
                )
        return frozenset(names)

from odoo import fields, models
from odoo.tools import create_index


class CrmSopStageLog(models.Model):
    """When each opportunity entered and left each SOP stage: one row per
    stint, written by the engine in the same statement as the SOP summary
    (``crm.sop.engine._sop_update_summary``). Days in a SOP stage, the median
    of won deals and the stage report are read from it."""

    _name = "crm.sop.stage.log"
    _description = "Sales SOP Stage History"
    _order = "date_start desc, id desc"
    _rec_name = "sop_stage_id"
    # written in SQL by the engine only; who and when are the row itself
    _log_access = False

    # indexed with the SOP stage (init): a deal's stints in one stage
    lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        required=True,
        readonly=True,
        ondelete="cascade",
    )
    sop_stage_id = fields.Many2one(
        "crm.sop.stage",
        string="SOP Stage",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    date_start = fields.Datetime(string="Entered", required=True, readonly=True)
    date_end = fields.Datetime(
        string="Left", readonly=True, help="Empty while the opportunity is there."
    )

    def init(self):
        # a deal's stints, or its stints in one SOP stage: the days in the
        # stage read those of the last won deals one deal at a time
        # (crm_sop_prediction), which the SOP stage's own index cannot narrow
        create_index(
            self.env.cr,
            "crm_sop_stage_log_lead_stage_index",
            self._table,
            ["lead_id", "sop_stage_id"],
        )

from odoo import fields, models


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

    lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        required=True,
        readonly=True,
        index=True,
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

from odoo import http
from odoo.http import request

from odoo.addons.web.controllers.dataset import DataSet

# what the web client's drag and drop in their own lists resequences
SOP_RESEQUENCED_MODELS = ("crm.sop.stage", "crm.sop.task.template")


class SopDataSet(DataSet):
    @http.route()
    def resequence(self, model, ids, field="sequence", offset=0, context=None):
        """SOP stages or tasks dragged in their list: Odoo writes each record
        apart; their deals are evaluated once, after the last write
        (crm.sop.engine._sop_evaluate_once), not once per record."""
        if model not in SOP_RESEQUENCED_MODELS:
            return super().resequence(model, ids, field, offset, context)
        with request.env["crm.sop.engine"]._sop_evaluate_once():
            return super().resequence(model, ids, field, offset, context)

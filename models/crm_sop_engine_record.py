from odoo import api, models
from odoo.exceptions import AccessError


class CrmSopEngineRecord(models.AbstractModel):
    """What the engine records of its own in SQL (stage moves, activities
    done, gates passed): refused through the ORM to everyone, the superuser
    included, so that no client, import or server action can forge or erase
    a row. Rows go with their opportunity (foreign key, in the database)."""

    _name = "crm.sop.engine.record"
    _description = "Sales SOP Engine Record"

    @api.model_create_multi
    def create(self, vals_list):
        self._sop_refuse_orm_writes()
        return super().create(vals_list)

    def write(self, vals):
        self._sop_refuse_orm_writes()
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_engine(self):
        self._sop_refuse_orm_writes()

    def _sop_refuse_orm_writes(self):
        raise AccessError(self._sop_engine_only_message())

    def _sop_engine_only_message(self):
        """Override: what the refusal tells who tried."""
        return self.env._("Only the Sales SOP engine writes these records.")

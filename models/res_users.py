from odoo import fields, models


class ResUsers(models.Model):
    _inherit = "res.users"

    sop_reminder_opt_out = fields.Boolean(
        string="No Sales SOP Reminders",
        help="Do not prompt me at the start and end of my workday with the "
        "deals whose Sales SOP needs me.",
    )

    @property
    def SELF_READABLE_FIELDS(self):
        return super().SELF_READABLE_FIELDS + ["sop_reminder_opt_out"]

    @property
    def SELF_WRITEABLE_FIELDS(self):
        return super().SELF_WRITEABLE_FIELDS + ["sop_reminder_opt_out"]

from odoo import fields, models


class ResUsers(models.Model):
    _inherit = "res.users"

    sop_reminder_opt_out = fields.Boolean(
        string="No Sales SOP Reminders",
        help="Do not prompt me at the start and end of my workday with the "
        "deals whose Sales SOP needs me.",
    )

    def unlink(self):
        res = super().unlink()
        # the review facts copy the salesperson of each deal
        self.env["crm.sop.task.fact"]._sop_forget("user_id", self.ids)
        return res

    @property
    def SELF_READABLE_FIELDS(self):
        return super().SELF_READABLE_FIELDS + ["sop_reminder_opt_out"]

    @property
    def SELF_WRITEABLE_FIELDS(self):
        return super().SELF_WRITEABLE_FIELDS + ["sop_reminder_opt_out"]

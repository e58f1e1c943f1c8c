from odoo import api, fields, models


class ResUsersSettings(models.Model):
    _inherit = "res.users.settings"

    # {"<metric>/<period>/<group_by>/<team>/<company>": "<first day of the
    # period>"}: the board rankings in which the user is in the top three and
    # was celebrated (crm.sop.board.sop_board_celebrate); a ranking the user
    # left is removed, so coming back is celebrated again. The user's own UI
    # state, as the discuss sidebar's: they may write it, it decides nothing
    # but their own rainbow man.
    sop_board_celebrated = fields.Json(string="Achievement Board Celebrations")

    @api.model
    def _get_fields_blacklist(self):
        # the board asks the server; no need to send it at every page load
        return super()._get_fields_blacklist() + ["sop_board_celebrated"]

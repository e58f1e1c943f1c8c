# The pipeline stage moves are recorded by the addon itself from this version
# on (crm.sop.stage.move, written by crm.lead create and write). Fill the log
# once from the stage_id tracking of the chatter, so that adherence and the
# review reports keep the history of the deals moved before the upgrade.
#
# This one-off read of mail tracking is the only one: nothing else in the
# addon reads stage moves from mail_tracking_value, which a client can write
# (crm.sop.stage.move._sop_seed_from_tracking, also run at install).

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    api.Environment(cr, SUPERUSER_ID, {})[
        "crm.sop.stage.move"
    ]._sop_seed_from_tracking()

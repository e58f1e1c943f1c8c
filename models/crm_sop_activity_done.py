from odoo import api, fields, models
from odoo.tools import SQL
from odoo.tools.sql import create_index


class CrmSopActivityDone(models.Model):
    """One row per activity marked done on an opportunity: what completes the
    activity tasks (``crm.sop.task._sop_done_activity``).

    The product records it itself when ``mail.activity._action_done`` marks
    an activity done on a deal; a chatter message, whoever posts it and
    whatever it carries (``mail_activity_type_id``, the activities subtype),
    proves nothing. A ledger rather than a column of the task: an activity
    done before a task of its type exists (a task added to a live playbook, a
    deal moving to another playbook) still completes it, as a done activity
    did when it was read from the chatter; and it follows its deal in a merge.

    Written by the engine only, in SQL (one INSERT per batch of activities
    done, one UPDATE per merge): create, write and unlink are refused to
    everybody, superuser code included. Rows go with their opportunity."""

    _name = "crm.sop.activity.done"
    _description = "Sales SOP Activity Done"
    _inherit = ["crm.sop.engine.record"]
    _order = "date desc, id desc"
    _rec_name = "activity_type_id"
    # written in SQL by the engine only; who and when are the row itself
    _log_access = False

    # no index of its own: (lead_id, activity_type_id) serves it, see init()
    lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        required=True,
        readonly=True,
        ondelete="cascade",
    )
    activity_type_id = fields.Many2one(
        "mail.activity.type",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    user_id = fields.Many2one(
        "res.users", string="Done By", readonly=True, ondelete="set null"
    )
    date = fields.Datetime(string="Done On", required=True, readonly=True)

    def init(self):
        res = super().init()
        # what an evaluation pass reads: the activity types done per deal
        create_index(
            self.env.cr,
            "crm_sop_activity_done_lead_type_index",
            self._table,
            ["lead_id", "activity_type_id"],
        )
        return res

    def _sop_engine_only_message(self):
        return self.env._(
            "Only the Sales SOP engine records the activities done on an "
            "opportunity: mark the activity done instead."
        )

    # ------------------------------------------------------------
    # ENGINE
    # ------------------------------------------------------------

    @api.model
    def _sop_record(self, done):
        """The current user marked activities done: ``done`` is [(lead id,
        activity type id)], one per activity. One INSERT for all of them
        (SQL: nobody writes the ledger through the ORM, see the class)."""
        if not done:
            return
        self.env.cr.execute(
            SQL(
                """INSERT INTO crm_sop_activity_done
                           (lead_id, activity_type_id, user_id, date)
                   SELECT v.lead_id, v.type_id, %(uid)s, %(now)s
                     FROM (VALUES %(rows)s) AS v(lead_id, type_id)
                     JOIN crm_lead l ON l.id = v.lead_id""",
                uid=self.env.uid,
                now=self.env.cr.now(),
                rows=SQL(", ").join(
                    SQL("(%s::integer, %s::integer)", lead_id, type_id)
                    for lead_id, type_id in done
                ),
            )
        )
        self.invalidate_model()

    @api.model
    def _sop_done_pairs(self, lead_ids, activity_type_ids):
        """{(lead id, activity type id)} of the activities done on the leads,
        of these types; one query."""
        if not lead_ids or not activity_type_ids:
            return set()
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT lead_id, activity_type_id
                     FROM crm_sop_activity_done
                    WHERE lead_id = ANY(%s) AND activity_type_id = ANY(%s)""",
                list(lead_ids),
                list(activity_type_ids),
            )
        )
        return set(self.env.cr.fetchall())

    @api.model
    def _sop_merge(self, head, tails):
        """Opportunities ``tails`` are merged into ``head``: their activities
        done follow them (as core moves their messages and activities)."""
        if not tails:
            return
        self.env.cr.execute(
            SQL(
                "UPDATE crm_sop_activity_done SET lead_id = %s WHERE lead_id = ANY(%s)",
                head.id,
                tails.ids,
            )
        )
        self.invalidate_model(["lead_id"])

import logging
import threading
from collections import defaultdict, namedtuple
from datetime import datetime, time, timedelta

import psycopg2.errors
import pytz

from odoo import SUPERUSER_ID, api, fields, models
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL, split_every

from .crm_sop_deal import SOP_OPEN_SQL

_logger = logging.getLogger(__name__)

# salespersons prompted per batch: one commit (and one progress report) each
SOP_REMINDER_BATCH = 50
# deals listed in a digest (the rest: "and N more", in My SOP Day)
SOP_REMINDER_DIGEST_DEALS = 10
# new transactions tried for a batch that met a concurrent run of the job
SOP_REMINDER_RETRIES = 2

# a salesperson due for a prompt: who, which moment of which local day, and
# where their local day starts (UTC, naive) for "completed today"
SopDue = namedtuple(
    "SopDue", ["user_id", "moment", "local_date", "day_start", "company_id"]
)
# a prompt claimed in the ledger by this transaction
SopClaim = namedtuple(
    "SopClaim", ["id", "user_id", "moment", "local_date", "day_start"]
)
# a deal of a digest
SopDeal = namedtuple(
    "SopDeal", ["lead_id", "user_id", "stalled", "overdue", "next_task_id", "total"]
)


class CrmSopReminder(models.Model):
    """The ledger of the Sales SOP prompts: one row per salesperson, moment
    (workday start or end) and local day, written by the reminder job only
    (``INSERT ... ON CONFLICT DO NOTHING RETURNING``): the UNIQUE key makes each
    prompt go at most once, whatever runs the job twice, late or at once.

    A row belongs to the company whose calendar and offsets decided it (the
    salesperson's main company at that moment): its managers read it, as
    they read that company's deals."""

    _name = "crm.sop.reminder"
    _description = "Sales SOP Reminder"
    _order = "local_date desc, id desc"
    _rec_name = "user_id"

    user_id = fields.Many2one(
        "res.users",
        string="Salesperson",
        required=True,
        readonly=True,
        ondelete="cascade",
    )
    moment = fields.Selection(
        [("start", "Workday start"), ("end", "Workday end")],
        required=True,
        readonly=True,
    )
    local_date = fields.Date(
        string="Day",
        required=True,
        readonly=True,
        help="In the salesperson's time zone.",
    )
    message_id = fields.Many2one("mail.message", readonly=True, ondelete="set null")
    company_id = fields.Many2one(
        "res.company",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
        help="The salesperson's company when they were prompted: its calendar "
        "and reminder settings decided the prompt.",
    )

    _sql_constraints = [
        (
            "user_moment_day_uniq",
            "UNIQUE(user_id, moment, local_date)",
            "A salesperson is prompted once per moment and day.",
        ),
    ]

    # ------------------------------------------------------------
    # CRON
    # ------------------------------------------------------------

    @api.model
    def _cron_sop_reminder(self):
        """Every 15 minutes: flag the stalled deals, then prompt each
        salesperson with open SOP tasks whose workday start (or end) moment
        has come, while they are at work. The stall pass failing (each
        company is already counted apart) does not stop the reminders."""
        self._sop_stall_pass()
        self._sop_commit()
        self._sop_remind()

    @api.model
    def _sop_stall_pass(self):
        """The stall pass, undone in its savepoint when it fails. A rep who
        saved one of the deals it flags after the job began (a
        serialization failure, REPEATABLE READ) is no error: the next pass,
        15 minutes later, flags them."""
        try:
            with self.env.cr.savepoint():
                self.env["crm.sop.engine"]._sop_flag_stalled()
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as error:
            _logger.info(
                "Sales SOP: stall pass met a rep's change (%s), the next pass "
                "flags the deals",
                error.pgcode,
            )
        except Exception:
            _logger.exception("Sales SOP: stall pass failed, reminders go on")

    @api.model
    def _sop_testing(self):
        return bool(getattr(threading.current_thread(), "testing", False))

    @api.model
    def _sop_commit(self):
        """Commit the batch done (not in tests, as core's crons do)."""
        if not self._sop_testing():
            # one transaction per batch, as core's crons (crm PLS) commit
            self.env.cr.commit()  # pylint: disable=invalid-commit

    @api.model
    def _sop_remind(self, now=None, batch_size=SOP_REMINDER_BATCH):
        """Prompt the salespersons due now, by batches: each batch claims its
        prompts in the ledger, posts them, reports progress and commits. A
        crash loses at most the batch in progress (its ledger rows roll back
        with its messages): the next run prompts them, still within their
        working window. A batch holds the salespersons of one company only:
        one company's bad data fails its own batches, not the others'.
        Returns the claims made."""
        now = now or self.env.cr.now()
        by_company = self._sop_reminder_candidates()
        total = sum(len(user_ids) for user_ids in by_company.values())
        claims = []
        done = 0
        for company_id, user_ids in by_company.items():
            for batch in split_every(batch_size, user_ids, list):
                claims += self._sop_reminder_batch(batch, now, company_id)
                done += len(batch)
                self.env["ir.cron"]._notify_progress(done=done, remaining=total - done)
                self._sop_commit()
        return claims

    @api.model
    def _sop_reminder_batch(self, user_ids, now, company_id=None):
        """Claim and post the prompts of a batch. Two runs at once: the later
        one's claim of a row the other committed after its snapshot fails
        with a serialization failure (REPEATABLE READ); the batch is then
        tried again in a new transaction, which sees the row and skips it.
        Any other failure (a calendar the server cannot read, ...) undoes
        this batch only, in its savepoint: logged, skipped, the next batches
        go; the next run tries it again."""
        for attempt in range(SOP_REMINDER_RETRIES + 1):
            try:
                with self.env.cr.savepoint():
                    claims = self._sop_reminder_claim(user_ids, now)
                    self._sop_reminder_post(claims, now)
                return claims
            except psycopg2.errors.SerializationFailure:
                if self._sop_testing() or attempt == SOP_REMINDER_RETRIES:
                    raise
                _logger.info("Sales SOP reminders: batch met a concurrent run, retried")
                # the batches before were committed: only this one is undone
                # (a serialization failure needs a new snapshot, not a savepoint)
                self.env.cr.rollback()
            except psycopg2.OperationalError:
                raise  # the server or the connection failed: the job stops
            except Exception:
                _logger.exception(
                    "Sales SOP reminders: batch of %s salespersons of company "
                    "id %s failed and was skipped (users %s); other batches go on",
                    len(user_ids),
                    company_id,
                    user_ids,
                )
                return []
        return []

    # ------------------------------------------------------------
    # WHO, WHEN
    # ------------------------------------------------------------

    @api.model
    def _sop_reminder_candidates(self):
        """{company id: [user id]}: the active internal users who did not opt
        out and are the salesperson of an open opportunity with open SOP
        tasks, by main company (one query)."""
        self.env["crm.lead"].flush_model(
            ["user_id", "active", "probability", "sop_next_task_id"]
        )
        self.env["res.users"].flush_model(
            ["active", "share", "sop_reminder_opt_out", "company_id"]
        )
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT u.company_id, l.user_id
                     FROM crm_lead l
                     JOIN res_users u ON u.id = l.user_id
                    WHERE %s
                      AND l.sop_next_task_id IS NOT NULL
                      AND u.active AND NOT u.share
                      AND u.sop_reminder_opt_out IS NOT TRUE
                 ORDER BY u.company_id, l.user_id""",
                SQL(SOP_OPEN_SQL),
            )
        )
        by_company = defaultdict(list)
        for company_id, user_id in self.env.cr.fetchall():
            by_company[company_id].append(user_id)
        return dict(by_company)

    @api.model
    def _sop_reminder_due(self, users, now):
        """[SopDue] of ``users`` at ``now`` (naive UTC).

        Each user's workday is today's work intervals of their working
        calendar (their resource's, else their company's), in their time zone
        (else the calendar's), less public holidays and their own leaves.
        The start prompt is due from ``start offset`` after the first interval
        starts until the end prompt is; the end prompt from ``end offset``
        before the last interval ends. Either only while ``now`` is inside a
        work interval: a late run catches up, never after hours. Users are
        grouped by (calendar, time zone, company): a few queries per group,
        whatever their number."""
        now_utc = pytz.utc.localize(now)
        users.fetch(["tz", "company_id", "resource_ids"])
        groups = defaultdict(list)
        for user in users:
            resource = user.resource_ids[:1]
            calendar = resource.calendar_id or user.company_id.resource_calendar_id
            if not calendar:
                continue
            tz = user.tz or calendar.tz or "UTC"
            groups[calendar, tz, user.company_id].append((user, resource))
        due = []
        for (calendar, tz_name, company), members in groups.items():
            tz = pytz.timezone(tz_name)
            local_now = now_utc.astimezone(tz)
            today = local_now.date()
            day_start = tz.localize(datetime.combine(today, time.min))
            resources = self.env["resource.resource"].union(
                *(resource for _user, resource in members)
            )
            intervals = calendar._work_intervals_batch(
                day_start,
                tz.localize(datetime.combine(today + timedelta(days=1), time.min)),
                resources=resources,
                tz=tz,
                domain=[
                    ("time_type", "=", "leave"),
                    ("company_id", "in", [False, company.id]),
                ],
            )
            start_offset = timedelta(minutes=company.sop_reminder_start_offset)
            end_offset = timedelta(minutes=company.sop_reminder_end_offset)
            for user, resource in members:
                work = [(start, stop) for start, stop, _meta in intervals[resource.id]]
                if not any(start <= local_now < stop for start, stop in work):
                    continue  # not at work now: never outside working hours
                end_at = work[-1][1] - end_offset
                if end_at <= local_now:
                    moment = "end"
                elif work[0][0] + start_offset <= local_now:
                    moment = "start"
                else:
                    continue
                due.append(
                    SopDue(
                        user.id,
                        moment,
                        today,
                        day_start.astimezone(pytz.utc).replace(tzinfo=None),
                        company.id,
                    )
                )
        return due

    @api.model
    def _sop_reminder_claim(self, user_ids, now):
        """[SopClaim] of the prompts due now for ``user_ids`` that no run has
        made yet: inserted in the ledger in one statement, only the rows
        really inserted are returned (and then posted, in this transaction)."""
        # sudo: the job reads every salesperson's calendar, time zone and
        # leaves, whoever runs it (Odoo's cron user, or a manager's "Run")
        users = self.env["res.users"].sudo().browse(user_ids)
        due = self._sop_reminder_due(users, now)
        if not due:
            return []
        day_starts = {(d.user_id, d.moment): d.day_start for d in due}
        uid = self.env.uid
        # a concurrent run's committed row raises a serialization failure,
        # handled by the caller: not an error to log
        self.env.cr.execute(
            SQL(
                """INSERT INTO crm_sop_reminder (user_id, moment, local_date,
                                                 company_id,
                                                 create_uid, create_date,
                                                 write_uid, write_date)
                   VALUES %s
              ON CONFLICT (user_id, moment, local_date) DO NOTHING
                RETURNING id, user_id, moment, local_date""",
                SQL(", ").join(
                    SQL(
                        "(%s, %s, %s, %s, %s, %s, %s, %s)",
                        d.user_id,
                        d.moment,
                        d.local_date,
                        d.company_id,
                        uid,
                        now,
                        uid,
                        now,
                    )
                    for d in due
                ),
            ),
            log_exceptions=False,
        )
        return sorted(
            (
                SopClaim(rid, user_id, moment, local_date, day_starts[user_id, moment])
                for rid, user_id, moment, local_date in self.env.cr.fetchall()
            ),
            key=lambda claim: claim.user_id,
        )

    # ------------------------------------------------------------
    # WHAT
    # ------------------------------------------------------------

    @api.model
    def _sop_reminder_deals(self, claims, limit=SOP_REMINDER_DIGEST_DEALS):
        """{user id: [SopDeal]}: the first ``limit`` open deals with open SOP
        tasks of each claimed salesperson, stalled ones first, then overdue
        ones (expected closing or an activity past, in their local day), then
        by what is at stake (expected revenue x probability). One query."""
        if not claims:
            return {}
        self.env["mail.activity"].flush_model(["res_model", "res_id", "date_deadline"])
        self.env["crm.lead"].flush_model(
            [
                "user_id",
                "active",
                "probability",
                "prorated_revenue",
                "date_deadline",
                "sop_stalled",
                "sop_next_task_id",
            ]
        )
        self.env.cr.execute(
            SQL(
                """SELECT id, user_id, stalled, overdue, next_task_id, total
                     FROM (SELECT d.*,
                                  ROW_NUMBER() OVER (
                                      PARTITION BY d.user_id
                                      ORDER BY d.stalled DESC, d.overdue DESC,
                                               d.stake DESC, d.id) AS rank,
                                  COUNT(*) OVER (PARTITION BY d.user_id) AS total
                             FROM (SELECT l.id, l.user_id,
                                          COALESCE(l.sop_stalled, FALSE) AS stalled,
                                          (l.date_deadline < v.today OR EXISTS (
                                              SELECT 1 FROM mail_activity a
                                               WHERE a.res_model = 'crm.lead'
                                                 AND a.res_id = l.id
                                                 AND a.active
                                                 AND a.date_deadline < v.today
                                          )) IS TRUE AS overdue,
                                          COALESCE(l.prorated_revenue, 0) AS stake,
                                          l.sop_next_task_id AS next_task_id
                                     FROM crm_lead l
                                     JOIN (VALUES %s) AS v(user_id, today)
                                       ON v.user_id = l.user_id
                                    WHERE %s
                                      AND l.sop_next_task_id IS NOT NULL) d
                          ) ranked
                    WHERE rank <= %s
                 ORDER BY user_id, rank""",
                SQL(", ").join(
                    SQL("(%s, %s::date)", claim.user_id, claim.local_date)
                    for claim in claims
                ),
                SQL(SOP_OPEN_SQL),
                limit,
            )
        )
        deals = defaultdict(list)
        for row in self.env.cr.fetchall():
            deals[row[1]].append(SopDeal(*row))
        return deals

    @api.model
    def _sop_reminder_completed(self, claims, now):
        """{user id: {lead id: [task id]}}: the SOP tasks of their deals a
        person completed since their local day started, for the end-of-day
        prompts. The credit is the first completion's (``done_user_id``):
        tasks the system completed (at install, in a cron evaluation) are
        not the rep's work and are left out. One query."""
        ends = [claim for claim in claims if claim.moment == "end"]
        if not ends:
            return {}
        self.env["crm.sop.task"].flush_model(
            ["state", "date_done", "done_user_id", "lead_id"]
        )
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT l.user_id, l.id, t.id, t.date_done
                     FROM crm_sop_task t
                     JOIN crm_lead l ON l.id = t.lead_id
                     JOIN (VALUES %s) AS v(user_id, since) ON v.user_id = l.user_id
                    WHERE t.active AND t.state = 'done'
                      AND t.done_user_id IS NOT NULL AND t.done_user_id <> %s
                      AND t.date_done >= v.since AND t.date_done <= %s
                 ORDER BY l.user_id, t.date_done, t.id""",
                SQL(", ").join(
                    SQL("(%s, %s::timestamp)", claim.user_id, claim.day_start)
                    for claim in ends
                ),
                SUPERUSER_ID,
                now,
            )
        )
        completed = defaultdict(lambda: defaultdict(list))
        for user_id, lead_id, task_id, _date_done in self.env.cr.fetchall():
            completed[user_id][lead_id].append(task_id)
        return completed

    @api.model
    def _sop_reminder_digests(self, claims, now):
        """{claim id: (user, subject, body)}: each claimed prompt rendered in
        its salesperson's language. Reads what the digests show for the whole
        batch (a few queries per language), renders each (no query)."""
        deals = self._sop_reminder_deals(claims)
        completed = self._sop_reminder_completed(claims, now)
        # sudo: each digest shows a salesperson their own deals and tasks,
        # whoever runs the job
        users = self.env["res.users"].sudo().browse([c.user_id for c in claims])
        users.fetch(["lang", "partner_id"])
        Lead = self.env["crm.lead"].sudo().with_context(active_test=False)
        Task = self.env["crm.sop.task"].sudo().with_context(active_test=False)
        leads = Lead.browse(
            [d.lead_id for rows in deals.values() for d in rows]
            + [lid for by_lead in completed.values() for lid in by_lead]
        )
        leads.fetch(["name"])
        task_ids = [d.next_task_id for rows in deals.values() for d in rows] + [
            tid
            for by_lead in completed.values()
            for tids in by_lead.values()
            for tid in tids
        ]
        base_url = self.get_base_url()
        by_lang = defaultdict(list)
        for claim in claims:
            by_lang[users.browse(claim.user_id).lang or "en_US"].append(claim)
        digests = {}
        for lang, lang_claims in by_lang.items():
            env = self.with_context(lang=lang).env
            tasks = Task.with_context(lang=lang).browse(task_ids)
            tasks.fetch(["task_template_id"])
            tasks.task_template_id.fetch(["name"])
            names = {task.id: task.task_template_id.name for task in tasks}
            for claim in lang_claims:
                user = users.browse(claim.user_id)
                rows = deals.get(claim.user_id, [])
                values = self._sop_reminder_values(
                    claim,
                    user,
                    rows,
                    completed.get(claim.user_id, {}),
                    {"leads": leads, "names": names, "url": base_url, "lang": lang},
                )
                body = env["ir.qweb"]._render(
                    "crm_sales_sop.sop_reminder_digest", values, minimal_qcontext=True
                )
                count = rows[0].total if rows else 0
                subject = self.with_env(env)._sop_reminder_subject(claim.moment, count)
                digests[claim.id] = (user, subject, body)
        return digests

    @api.model
    def _sop_reminder_values(self, claim, user, rows, completed, read):
        """What the digest template shows one salesperson: their deals to
        move (``rows``), the tasks completed for them (``completed``: {lead
        id: task ids}); ``read``: the batch's leads, task names, base URL and
        the digest's language."""
        leads, names, base_url = read["leads"], read["names"], read["url"]
        return {
            "user": user,
            "moment": claim.moment,
            "deals": [
                {
                    "name": leads.browse(d.lead_id).name,
                    "url": f"{base_url}/odoo/crm/{d.lead_id}",
                    "next_task": names.get(d.next_task_id, ""),
                    "next_task_url": f"{base_url}/odoo/my-sop-day/{d.next_task_id}",
                    "stalled": d.stalled,
                    "overdue": d.overdue,
                }
                for d in rows
            ],
            "more": (rows[0].total - len(rows)) if rows else 0,
            # per deal, each task once
            "completed": [
                {
                    "name": leads.browse(lead_id).name,
                    "url": f"{base_url}/odoo/crm/{lead_id}",
                    "tasks": list(dict.fromkeys(names[tid] for tid in tids)),
                }
                for lead_id, tids in completed.items()
            ],
            "my_day_url": f"{base_url}/odoo/my-sop-day",
            # a full-width colon (下一步：) carries its own space
            "label_space": "" if read["lang"][:2] in ("zh", "ja", "ko") else " ",
        }

    @api.model
    def _sop_reminder_subject(self, moment, count):
        """The digest's subject in the environment's language: two translated
        strings, not "deal(s)"."""
        if moment == "start" and count == 1:
            return self.env._("Your Sales SOP today: 1 deal to move")
        if moment == "start":
            return self.env._(
                "Your Sales SOP today: %(count)s deals to move", count=count
            )
        if count == 1:
            return self.env._("Before you leave: 1 deal to move")
        return self.env._("Before you leave: %(count)s deals to move", count=count)

    @api.model
    def _sop_reminder_post(self, claims, now):
        """Post each claimed prompt to its salesperson (inbox or email, as
        their notification preference says) and link it in the ledger. The
        emails are queued in this transaction: they leave only if it commits."""
        if not claims:
            return
        digests = self._sop_reminder_digests(claims, now)
        author = self.env.ref("base.partner_root")
        # sudo: OdooBot notifies each salesperson, whoever runs the job
        Partner = self.env["res.partner"].sudo()
        messages = []
        for claim in claims:
            user, subject, body = digests[claim.id]
            # the digest goes to one person, no followers; notified on their
            # own contact so that the inbox message has a thread the messaging
            # menu (systray) can list (a message without document has none)
            partner = Partner.browse(user.partner_id.id)
            message = partner.with_context(lang=user.lang).message_notify(
                partner_ids=user.partner_id.ids,
                subject=subject,
                body=body,
                author_id=author.id,
                email_layout_xmlid="crm_sales_sop.mail_notification_sop_digest",
                model_description=self.with_context(lang=user.lang).env._("Sales SOP"),
            )
            messages.append((claim.id, message.id))
        self.env.cr.execute(
            SQL(
                """UPDATE crm_sop_reminder r SET message_id = v.message_id
                     FROM (VALUES %s) AS v(id, message_id) WHERE r.id = v.id""",
                SQL(", ").join(SQL("(%s, %s)", rid, mid) for rid, mid in messages),
            )
        )
        # the job runs as a scheduled action, where Odoo queues emails for the
        # hourly mail queue: wake the queue so a digest sent by email leaves
        # right after this transaction commits, not an hour later
        if any(user.notification_type == "email" for user, _s, _b in digests.values()):
            self.env.ref("mail.ir_cron_mail_scheduler_action")._trigger()

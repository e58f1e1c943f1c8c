import bisect
import logging
from collections import defaultdict, namedtuple
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from itertools import compress, groupby
from operator import attrgetter, countOf, itemgetter

import psycopg2
import pytz
from markupsafe import Markup

from odoo import api, models, tools
from odoo.exceptions import UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL, split_every

from .crm_sop_config import sop_task_rows
from .crm_sop_deal import SOP_OPEN_SQL, sop_is_open, sop_progress_band
from .crm_sop_stage import SOP_STALL_DAYS_MAX

_logger = logging.getLogger(__name__)

# how many blocked opportunities an error message names before summarising
GATE_ERROR_MAX_LEADS = 5
# leads evaluated per pass when a whole playbook or the install reaches them
EVALUATE_CHUNK = 5000
# a create() of at least this many leads checks crm_lead's statistics before
# inserting their tasks (_sop_analyze_leads)
SOP_ANALYZE_MIN_LEADS = 100
# ... and only while PostgreSQL knows crm_lead as fewer pages than this: the
# foreign-key check of a task is planned as a sequential scan of the table up
# to 7 pages with PostgreSQL's default costs (an index scan from 8; 64 leaves
# room for a random_page_cost up to some 30)
SOP_ANALYZE_MAX_PAGES = 64
# an install over at least this many open leads fills crm_sop_task in bulk
# (_sop_bulk_load)
SOP_BULK_MIN_LEADS = 10_000
# open leads without playbook set up in the transaction that maps them (the
# install, a playbook created or given a team); beyond, the newest go first
# and the setup job does the others, committed batch by batch
# (_cron_sop_setup)
SOP_SETUP_INLINE = 10_000
# a manager's playbook change evaluates at most this many deals in the
# manager's transaction, the newest; the setup job evaluates the others
# (_sop_evaluate_soon)
SOP_EVALUATE_INLINE = 1_000
# the task templates gathered by _sop_evaluate_once (the cursor's cache)
SOP_EVALUATE_GATHERED = "crm_sop_engine.evaluate_gathered"
# the deals a write inside a crm.lead write asked to evaluate, which that
# write evaluates once it is done (_sop_write_gathering, the cursor's cache)
SOP_WRITE_GATHERED = "crm_sop_engine.write_gathered"
# when a batch of the setup job set up no deal while some wait (reps'
# transactions held them, or changed one meanwhile), the job comes back
# after this delay rather than at its next daily run
SOP_SETUP_RETRY_MINUTES = 1
# how far back the stall pass reads a calendar's working days, beyond the
# largest stall days: a deal that has not moved for longer is counted on this
# window only (enough for any calendar with one working day a week and a
# month of holidays)
STALL_WINDOW_WEEKS_PER_DAY = 1
STALL_WINDOW_MARGIN_DAYS = 31


SOP_ROW_ID = attrgetter("id")
SOP_ROW_LEAD = attrgetter("lead_id")
SOP_ROW_TEMPLATE = attrgetter("task_template_id")
SOP_CONFIG_ORDER = attrgetter("order")


def sop_id_array(ids):
    """The ids ``ids`` (None: NULL) as one PostgreSQL array literal, a
    parameter to cast ``::integer[]``. psycopg2 sends a list as
    ``ARRAY[1, 2, ...]``: it adapts each element (some 0.7 microseconds),
    and PostgreSQL parses each as a constant of the statement; an import
    passes 7,000 ids in its batch's three statements, the setup job reads
    and prunes 5,000 deals' tasks by their ids. A literal is one string,
    read by the array's input function."""
    text = ",".join(map(str, ids)).replace("None", "NULL")
    return f"{{{text}}}"


def held_values(records, fname):
    """The values of ``fname`` for ``records``, in their order, as the ORM
    holds them (its cache's form: a many2one's id or None): what
    ``Field.mapped`` does (pending computations made, missing values
    fetched for the batch), without a record made per value. The engine's
    loops over thousands of deals read their fields so: the setup job's
    5,000 deals made 83,000 field reads through records, at several times
    the cost."""
    field = records._fields[fname]
    if field.compute and field.store:
        field.recompute(records)
    cache = records.env.cache
    values = cache.get_until_miss(records, field)
    if len(values) < len(records):
        records.fetch([fname])
        values = cache.get_until_miss(records, field)
    if len(values) < len(records):
        # not fetched (a new record's field never set): read as a field
        values = [field.convert_to_cache(record[fname], record) for record in records]
    return values


def held_rows(records, fnames):
    """(id, value of each of ``fnames``) of each record, in their order, the
    values as the ORM holds them (``held_values``)."""
    return zip(
        records._ids, *(held_values(records, fname) for fname in fnames), strict=True
    )


def sop_rows_by_template(rows):
    """(task template id, its rows) of the task rows ``rows``, sorted and
    grouped in C: an import's 13,000 rows are not looped over in Python, the
    engine's decisions loop over a batch's task templates."""
    return groupby(sorted(rows, key=SOP_ROW_TEMPLATE), SOP_ROW_TEMPLATE)


def sop_rows_decided(rows, attr, test):
    """{row id: test(the row's ``attr``)} of the task rows ``rows``, in C
    (what a kind decides for each of an import's 13,000 rows)."""
    return dict(
        zip(map(SOP_ROW_ID, rows), map(test, map(attrgetter(attr), rows)), strict=True)
    )


def sop_items_by_lead(rows, config):
    """{lead id: [(order, SopTaskConfig, SopTaskRow)] in the playbook's
    order} of the task rows ``rows`` whose task template is in ``config``
    (active): a step of Python per deal, the rest in C (an import's 13,000
    rows)."""
    by_lead = {}
    for lead_id, group in groupby(sorted(rows, key=SOP_ROW_LEAD), SOP_ROW_LEAD):
        group = list(group)
        configs = list(map(config.get, map(SOP_ROW_TEMPLATE, group)))
        if not all(configs):
            # tasks of task templates no longer active: left out
            group = list(compress(group, configs))
            configs = list(filter(None, configs))
        # the orders differ (a task template's id ends each): rows and
        # configurations are never compared
        by_lead[lead_id] = sorted(
            zip(map(SOP_CONFIG_ORDER, configs), configs, group, strict=True)
        )
    return by_lead


def sop_open_count(items):
    """How many of a lead's tasks ``items`` [(order, SopTaskConfig,
    SopTaskRow)] are open, counted in C (the summary of an import of 1,000
    deals reads 13,000 states)."""
    return countOf(map(attrgetter("state"), map(itemgetter(2), items)), "todo")


# the columns of crm_lead the summary statement writes
SOP_SUMMARY_FIELDS = (
    "sop_progress",
    "sop_stage_id",
    "sop_next_task_id",
    "sop_gate_held",
    "sop_stage_date",
    "sop_forward_date",
    "sop_stalled",
    "sop_progress_band",
)

# A lead's SOP summary as the engine writes it (None: no SOP stage, no next
# step, a band kept as it is, no task done); ``done_date``: the latest first
# completion of its done tasks (the stall clock's)
SopSummary = namedtuple(
    "SopSummary",
    ["lead_id", "progress", "stage_id", "task_id", "band", "forward", "held"]
    + ["done_date"],
)


class SopBatch:
    """What the kinds' ``_sop_done_<kind>`` share in one evaluation pass: the
    leads (sudo, their fields fetched for the whole batch) by id, and the
    engine's configuration."""

    __slots__ = ("config", "created", "leads")

    def __init__(self, leads, config, created=False):
        self.leads = leads
        self.config = config
        # the leads are being created: nothing of the product points at them
        # yet (no activity done, no script sent)
        self.created = created


class CrmSopEngine(models.AbstractModel):
    """The Sales SOP engine: what the opportunities' SOP does on its own.

    ``crm.lead`` calls it through named hooks (HOOKS: ``_sop_on_create``,
    ``_sop_before_write`` and ``_sop_on_write``, ``_sop_on_merge``), as
    core's ``create`` and ``write`` call ``_handle_won_lost``. It works on
    plain rows and SQL (``crm.sop.task`` rows, millions of them); what a kind
    of task means lives in crm_sop_task_kind.py. Sections:
    HOOKS, INSTANTIATION, EVALUATION (and the SOP summary with its stall
    clock), STAGE GATES, STALLED DEALS, MERGE.

    STAGE GATES
    A SOP stage linked to a pipeline stage may gate it (``warn`` or
    ``block``): an opportunity that *leaves* that pipeline stage forward, or
    arrives past it from nowhere (created in a later stage, or brought by a
    team change into a playbook whose gate it has not passed), needs the
    required tasks of the SOP stage done. The gate of the playbook the deal
    ends up in decides, whatever the order of the values written: the check
    runs after the write, on the deal's final team, playbook and stage.

    - A deal already past the gated stage when the gate is configured is not
      stopped by it (its open tasks are left behind, as the panel says).
    - Marking a deal won is never refused: the open required tasks are logged
      in the chatter instead.
    - ``warn`` lets the move pass, logs the open tasks and tells the rep.
    - ``block`` refuses; a sales manager passes it, logged and notified, and
      the pass holds for that deal and gate (``crm.sop.gate.pass``).
    """

    _name = "crm.sop.engine"
    _description = "Sales SOP Engine"

    # ------------------------------------------------------------
    # HOOKS: what crm.lead calls (create, write, merge)
    # ------------------------------------------------------------

    @api.model
    def _sop_on_create(self, leads):
        """New opportunities: their stage move recorded, their playbook and
        tasks given and evaluated, and the gates of a later stage checked."""
        self.env["crm.sop.stage.move"]._sop_record(leads, created=True)
        # not the demo data of this module; and without gates, the stage core
        # computes later in its batch is not read here
        gated = not self._sop_deferred() and self._sop_has_gates()
        if gated:
            # the summary then knows the stage (whether a gate holds the deal)
            leads.mapped("stage_id")
        self._sop_sync(leads, new=True, created=True)
        if gated:
            # created directly in a later stage: gated like a move from nowhere
            self._sop_gate_check(leads, {}, created=True)

    @api.model
    def _sop_before_write(self, leads, vals):
        """What ``_sop_on_write`` compares with, read before the write: the
        stages the leads leave, the watched values, the playbook each maps
        to. Costs nothing for a write that touches none of it."""
        remap = bool({"team_id", "company_id", "user_id"} & vals.keys())
        # the gates judge the deal where it ends up (stage, team, playbook),
        # after the write, from the stage it left
        gated = ("stage_id" in vals or remap) and self._sop_has_gates()
        # tasks are re-evaluated only for leads whose watched values really
        # change, and the playbook only re-synced for leads whose (team,
        # company) maps to another playbook: core crm writes leads one by one
        # when it assigns or converts them, often with unchanged values
        watched, values = leads._sop_watch(vals)
        return {
            "gated": gated,
            "remap": remap,
            "stages": (
                {lead.id: lead.stage_id.id for lead in leads}
                if gated or "stage_id" in vals
                else {}
            ),
            "watched": watched,
            "values": values,
            "playbooks": leads._sop_playbook_map() if remap else {},
        }

    @contextmanager
    def _sop_gathering(self, key):
        """A set kept in the cursor's cache under ``key`` for the block, in
        which what the code inside asks the engine for is gathered, for the
        block's owner to do once after it (yielded). Nested, the outermost
        block gathers: an inner one yields nothing."""
        cache = self.env.cr.cache
        if key in cache:
            yield None
            return
        cache[key] = gathered = set()
        try:
            yield gathered
        finally:
            del cache[key]

    def _sop_write_gathering(self):
        """Around a write of opportunities (crm.lead.write): the deals whose
        evaluation a write inside it asks for (a customer's watched field,
        which the deal's phone or email writes through core's inverse, and
        so that customer's other deals) are gathered, for ``_sop_on_write``
        to evaluate once with the deal's own changes, after the write,
        instead of each time."""
        return self._sop_gathering(SOP_WRITE_GATHERED)

    @api.model
    def _sop_evaluate_or_gather(self, leads):
        """Evaluate ``leads`` now, or, inside a write of opportunities, once
        that write is done (``_sop_write_gathering``)."""
        gathered = self.env.cr.cache.get(SOP_WRITE_GATHERED)
        if gathered is not None:
            gathered.update(leads.ids)
        else:
            self._sop_evaluate(leads)

    @api.model
    def _sop_on_write(self, leads, vals, before, gathered=None):
        """After a write of opportunities: the stage move recorded, the
        playbook re-synced where it changed, the tasks whose data changed
        evaluated (and the deals ``gathered`` while it wrote), the next step
        and stall clock of moved deals, then the gates of where the deals
        end up."""
        self.env["crm.sop.stage.move"]._sop_record_write(leads, vals)
        changed = leads._sop_watch_changed(before["watched"], before["values"])
        if gathered:
            changed |= leads.browse(sorted(gathered))
        entered = leads.browse()  # came into another playbook
        if vals.get("active"):
            resync = leads
        elif before["remap"]:
            playbook_after = leads._sop_playbook_map()
            resync = entered = leads.filtered(
                lambda lead: playbook_after[lead.id] != before["playbooks"][lead.id]
            )
        else:
            resync = leads.browse()
        if resync:
            self._sop_sync(resync, evaluate=changed)
        elif changed:
            self._sop_evaluate(changed)
        if "stage_id" in vals:
            # the next step follows the deal's pipeline stage; a move forward
            # restarts its stall clock
            orders = self.env["crm.stage"]._sop_orders()
            forward = {
                lead.id
                for lead in leads
                if lead.stage_id
                and orders[lead.stage_id.id]
                > orders.get(before["stages"][lead.id], (float("-inf"),))
            }
            self._sop_update_summary(leads.filtered("sop_template_id"), forward=forward)
        if before["gated"]:
            self._sop_gate_check(leads, before["stages"], set(entered.ids))

    @api.model
    def _sop_on_merge(self, head, tails):
        """Opportunities ``tails`` merged into ``head`` (core's
        ``_merge_dependences``): the activities done on the tails, the SOP
        work the system cannot re-derive (ticked by hand, set aside, scripts
        sent) and the script sends survive on the head."""
        # the head's review facts are made anew (its tasks take the tails'
        # history): marked first, the tasks it takes need no look-up
        self.env["crm.sop.task.fact"]._sop_mark(head.ids)
        self.env["crm.sop.activity.done"]._sop_merge(head, tails)
        self._sop_merge(head, tails)
        # sudo: nobody writes sends but the engine; they follow their deal
        self.env["crm.sop.script.send"].sudo().search(
            [("lead_id", "in", tails.ids)]
        ).write({"lead_id": head.id})

    # ------------------------------------------------------------
    # INSTANTIATION: which playbook each opportunity follows, its task rows
    # inserted and pruned in SQL (new leads, playbook edits, install)
    # ------------------------------------------------------------

    @api.model
    def _sop_sync(self, leads, new=False, evaluate=None, created=False):
        """Give each lead the playbook of its team (or the company fallback) and
        that playbook's tasks, then evaluate them. ``new``: the leads were just
        created (nothing to prune; the playbook is written with the summary),
        ``created``: by this create (no record of the product points at them).
        ``evaluate``: leads to evaluate even if their playbook does not change.
        Costs no query when nothing changes."""
        if not leads:
            return
        Template = self.env["crm.sop.template"]
        Team, Company = self.env["crm.team"], self.env["res.company"]
        targets = {}
        playbook_of = {}  # (team, company): resolved once per pair, not per lead
        for lead_id, active, team_id, company_id, template_before in held_rows(
            leads, ("active", "team_id", "company_id", "sop_template_id")
        ):
            if active:
                key = (team_id, company_id)
                if key not in playbook_of:
                    playbook_of[key] = Template._sop_template_for(
                        Team.browse(team_id), Company.browse(company_id)
                    )
                template_id = playbook_of[key]
            else:
                template_id = template_before or False
            if (template_before or False) != template_id:
                targets[lead_id] = template_id
        if new:
            if targets:
                rows = self._sop_insert(templates=targets, created=created)
                self._sop_evaluate(
                    leads.browse(list(targets)), rows, targets, created=created
                )
            return
        if targets:
            self._sop_set_templates(targets)
            self._sop_prune(list(targets))
            self._sop_insert(lead_ids=list(targets))
        self._sop_evaluate(leads.browse(list(targets)) | (evaluate or leads.browse()))

    @api.model
    def _sop_set_templates(self, targets):
        """targets: {lead id: playbook id or False}; one UPDATE per playbook."""
        self._sop_flush()
        by_template = defaultdict(list)
        for lead_id, template_id in targets.items():
            by_template[template_id].append(lead_id)
        for template_id, lead_ids in by_template.items():
            self.env.cr.execute(
                SQL(
                    "UPDATE crm_lead SET sop_template_id = %s WHERE id = ANY(%s)",
                    template_id or None,
                    lead_ids,
                )
            )
        self._sop_leads_written(
            self.env["crm.lead"].browse(list(targets)), ["sop_template_id"]
        )

    @api.model
    def _sop_flush(self, lead_fields=()):
        """Flush what the engine's SQL reads, and only that: flushing everything
        would compute unrelated pending fields (e.g. PLS probabilities) earlier
        than core does."""
        # the summary too: a next step the ORM holds, not written yet, must
        # reach the database before a statement deletes its task
        self.env["crm.lead"].flush_model(
            ["sop_template_id", "active", *SOP_SUMMARY_FIELDS, *lead_fields]
        )
        self.env["crm.sop.task.template"].flush_model(
            ["template_id", "stage_id", "active", "name"]
        )
        self.env["crm.sop.stage"].flush_model(["active"])
        self.env["crm.sop.task"].flush_model()

    @api.model
    def _sop_deferred(self):
        """While this module's own data is loaded, playbook changes do not reach
        leads one record at a time: the post_init_hook does it once for all."""
        # the registry is not ready while modules load: a client sending the
        # install_module key itself does not defer anything
        return (
            not self.pool.ready
            and self.env.context.get("install_module") == "crm_sales_sop"
        )

    @api.model
    def _sop_sync_all(self, everything=False):
        """Re-map every open opportunity to its playbook (install, playbook
        changes), by chunks, without per-record ORM work:

        - leads without playbook yet whose team has one take the path of new
          leads: their tasks are inserted with RETURNING and evaluated from
          those rows, and the playbook is written with the summary (one
          UPDATE of crm_lead); the newest SOP_SETUP_INLINE of them here
          (but those a rep's transaction holds, when not installing), the
          others by the setup job (``_cron_sop_setup``), batch by batch;
        - leads mapped to another playbook: one UPDATE per (team, company),
          then their old open tasks go, the new ones are inserted, evaluated.

        ``everything`` (install): also insert and evaluate the missing tasks
        of leads already mapped (created while the module's data loaded)."""
        if self._sop_deferred() and not everything:
            return
        self._sop_flush(["team_id", "company_id", "probability"])
        # a manager's change while reps work: at most SOP_SETUP_INLINE
        # re-mapped here, but those a rep's transaction holds, and none if a
        # rep saved one since the save began (the install holds crm_lead's
        # table lock: no rep's transaction runs)
        if everything:
            changed_ids = self._sop_remap()
        else:
            changed_ids = self._sop_now_or_job(self._sop_remap, SOP_SETUP_INLINE)
        self._sop_resync(changed_ids)
        # leads mapped before this pass whose playbook did not change
        mapped_ids = self._sop_mapped_ids(but=changed_ids) if everything else []
        # leads without playbook yet: the path of new leads, the newest first;
        # beyond SOP_SETUP_INLINE, the setup job does the others
        new_ids, waiting = self._sop_waiting_ids(SOP_SETUP_INLINE)
        if not everything:
            new_ids = self._sop_now_or_job(self._sop_lock_leads, new_ids)
        with self._sop_bulk_load(everything and len(new_ids) >= SOP_BULK_MIN_LEADS):
            self._sop_setup(new_ids)
        left = waiting - len(new_ids) + (0 if everything else self._sop_remap_left())
        if left:
            _logger.info(
                "Sales SOP: %s opportunities set up or re-mapped now, %s by the "
                "setup job",
                len(new_ids) + len(changed_ids),
                left,
            )
            # sudo: the engine's own job, whoever changed the playbooks
            self.env.ref("crm_sales_sop.ir_cron_sop_setup").sudo()._trigger()
        if mapped_ids:
            self._sop_insert(mapped_ids)
            self._sop_evaluate_ids(mapped_ids)
        if everything:
            # the closed deals' history, counted once (install)
            self.env["crm.sop.history.count"]._sop_rebuild()
            self.env["crm.sop.task.fact"]._sop_rebuild()

    @api.model
    def _sop_remap_pairs(self):
        """[(team id, company id, playbook id or None)]: each (team,
        company) of the open leads with a playbook, and the playbook that is
        theirs now."""
        Template = self.env["crm.sop.template"]
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT team_id, company_id FROM crm_lead l
                    WHERE %s AND sop_template_id IS NOT NULL""",
                SQL(SOP_OPEN_SQL),
            )
        )
        return [
            (
                team_id,
                company_id,
                Template._sop_template_for(
                    self.env["crm.team"].browse(team_id),
                    self.env["res.company"].browse(company_id),
                )
                or None,
            )
            for team_id, company_id in self.env.cr.fetchall()
        ]

    @api.model
    def _sop_remap(self, limit=None):
        """Ids of the open leads mapped to a playbook that is no longer
        theirs, now mapped to their (team, company)'s: one UPDATE per pair.
        ``limit``: at most that many, the newest, locked first and skipping
        those another transaction holds (the others stay for the setup
        job); None: all (the install, which holds crm_lead's table lock)."""
        changed_ids = []
        for team_id, company_id, template_id in self._sop_remap_pairs():
            if limit is not None and len(changed_ids) >= limit:
                break
            which = SQL(
                """%(open)s AND sop_template_id IS NOT NULL
                   AND team_id IS NOT DISTINCT FROM %(team)s
                   AND company_id IS NOT DISTINCT FROM %(company)s
                   AND sop_template_id IS DISTINCT FROM %(template)s""",
                template=template_id,
                team=team_id,
                company=company_id,
                open=SQL(SOP_OPEN_SQL),
            )
            if limit is not None:
                which = SQL(
                    """l.id IN (SELECT id FROM crm_lead l WHERE %s
                              ORDER BY id DESC LIMIT %s
                                FOR NO KEY UPDATE SKIP LOCKED)""",
                    which,
                    limit - len(changed_ids),
                )
            self.env.cr.execute(
                SQL(
                    """UPDATE crm_lead l SET sop_template_id = %s
                        WHERE %s RETURNING id""",
                    template_id,
                    which,
                ),
                # a lead changed after this transaction began: the caller
                # decides (a request is retried by Odoo, the job later)
                log_exceptions=limit is None,
            )
            changed_ids += [row[0] for row in self.env.cr.fetchall()]
        self._sop_leads_written(
            self.env["crm.lead"].browse(changed_ids), ["sop_template_id"]
        )
        return changed_ids

    @api.model
    def _sop_remap_left(self):
        """How many open leads are still mapped to a playbook that is no
        longer theirs."""
        pairs = self._sop_remap_pairs()
        if not pairs:
            return 0
        self.env.cr.execute(
            SQL(
                """SELECT COUNT(*) FROM crm_lead l
                     JOIN unnest(%s::integer[], %s::integer[], %s::integer[])
                          AS p(team_id, company_id, template_id)
                       ON l.team_id IS NOT DISTINCT FROM p.team_id
                      AND l.company_id IS NOT DISTINCT FROM p.company_id
                    WHERE %s AND l.sop_template_id IS NOT NULL
                      AND l.sop_template_id IS DISTINCT FROM p.template_id""",
                [pair[0] for pair in pairs],
                [pair[1] for pair in pairs],
                [pair[2] for pair in pairs],
                SQL(SOP_OPEN_SQL),
            )
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _sop_resync(self, lead_ids):
        """The leads ``lead_ids`` were mapped to another playbook: their old
        open tasks go, the new ones are inserted and evaluated."""
        if lead_ids:
            self._sop_prune(lead_ids)
            self._sop_insert(lead_ids)
            self._sop_evaluate_ids(lead_ids)

    @api.model
    def _sop_mapped_ids(self, but=()):
        """Ids of the open leads with a playbook, but ``but``, in id order."""
        self.env.cr.execute(
            SQL(
                """SELECT id FROM crm_lead l
                    WHERE %s AND sop_template_id IS NOT NULL AND id != ALL(%s)
                 ORDER BY id""",
                SQL(SOP_OPEN_SQL),
                list(but),
            )
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _sop_waiting_ids(self, limit):
        """(ids, count): the open leads without playbook whose (team,
        company) has one, waiting for their tasks: the ``limit`` newest ids
        and how many wait in all. Leads whose team has no playbook are not
        waiting (they get one when their team does)."""
        Template = self.env["crm.sop.template"]
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT team_id, company_id FROM crm_lead l
                    WHERE %s AND sop_template_id IS NULL""",
                SQL(SOP_OPEN_SQL),
            )
        )
        pairs = [
            (team_id, company_id)
            for team_id, company_id in self.env.cr.fetchall()
            if Template._sop_template_for(
                self.env["crm.team"].browse(team_id),
                self.env["res.company"].browse(company_id),
            )
        ]
        if not pairs:
            return [], 0
        self.env.cr.execute(
            SQL(
                """SELECT l.id, COUNT(*) OVER () FROM crm_lead l
                     JOIN unnest(%s::integer[], %s::integer[]) AS p(team_id, company_id)
                       ON l.team_id IS NOT DISTINCT FROM p.team_id
                      AND l.company_id IS NOT DISTINCT FROM p.company_id
                    WHERE %s AND l.sop_template_id IS NULL
                 ORDER BY l.id DESC
                    LIMIT %s""",
                [team_id for team_id, _company_id in pairs],
                [company_id for _team_id, company_id in pairs],
                SQL(SOP_OPEN_SQL),
                # one row at least: the count comes with it
                max(limit, 1),
            )
        )
        rows = self.env.cr.fetchall()
        return [row[0] for row in rows[:limit]], rows[0][1] if rows else 0

    @api.model
    def _sop_setup(self, lead_ids):
        """Give the open leads ``lead_ids`` without playbook theirs, with its
        tasks evaluated (the path of new leads), by chunks."""
        Lead = self.env["crm.lead"].with_context(
            active_test=False, prefetch_fields=False
        )
        for ids in split_every(EVALUATE_CHUNK, lead_ids):
            leads = Lead.browse(ids)
            leads.fetch(["team_id", "company_id", "sop_template_id", "active"])
            self._sop_sync(leads, new=True)
            # the review facts of the deals that already moved
            self.env["crm.sop.task.fact"]._sop_mark_set_up(ids)
            # keep memory flat on large databases
            self.env.invalidate_all(flush=True)

    @api.model
    def _cron_sop_setup(self):
        """The setup job: a batch of the open leads waiting for the engine
        (more than one transaction does at once: an install over a large
        pipeline, a playbook given to a large team or taken from it, a task
        added to a live playbook; ``_sop_job_batch``), the newest first.
        Each batch is its own transaction (the cron runner commits after
        each call and calls again while some wait): the deals are locked
        for one batch, not for the whole setup. Daily, it also sets up deals
        that reached the database around the ORM.

        Reps keep working meanwhile. The batch locks its deals first,
        skipping those a rep's transaction holds (a later batch sets them
        up), so that no rep's save lands between the batch's reads and its
        writes. A deal a rep saved after the batch's transaction began, and
        before the lock, is a serialization failure (REPEATABLE READ): the
        batch is undone (its savepoint; nothing else was written), and the
        job comes back in a new transaction, which sees the rep's change.
        Raised, such a failure would have failed the job, and left the
        remaining deals without tasks until its next daily run."""
        try:
            with self.env.cr.savepoint():
                done, remaining = self._sop_job_batch(EVALUATE_CHUNK)
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as error:
            _logger.info(
                "Sales SOP: the setup job met a rep's change (%s), "
                "its batch is undone and tried again shortly",
                error.pgcode,
            )
            done, remaining = 0, self._sop_job_left()
        if remaining and not done:
            # no progress to report: the runner would wait for the next
            # daily run; this one comes back soon instead (sudo: the
            # engine's own job)
            self.env.ref("crm_sales_sop.ir_cron_sop_setup").sudo()._trigger(
                at=self.env.cr.now() + timedelta(minutes=SOP_SETUP_RETRY_MINUTES)
            )
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)

    @api.model
    def _sop_job_batch(self, size):
        """One batch of the setup job, at most ``size`` deals, the newest of
        each kind first: those mapped to a playbook no longer theirs
        re-mapped, then those without playbook set up, then those a
        playbook change queued evaluated; the deals a rep's transaction
        holds are skipped. Returns (deals done, deals left)."""
        Queue = self.env["crm.sop.evaluation.queue"]
        changed_ids = self._sop_remap(size)
        self._sop_resync(changed_ids)
        room = size - len(changed_ids)
        lead_ids = self._sop_lock_leads(self._sop_waiting_ids(room)[0])
        self._sop_setup(lead_ids)
        room -= len(lead_ids)
        queued_ids = self._sop_lock_leads(Queue._sop_next(room)[0])
        if queued_ids:
            # a task archived or moved while a rep held the deal is still on it
            self._sop_prune(queued_ids, count_out=True)
        self._sop_evaluate_ids(sorted(queued_ids))
        Queue._sop_remove(queued_ids)
        return len(changed_ids) + len(lead_ids) + len(queued_ids), self._sop_job_left()

    @api.model
    def _sop_job_left(self):
        """How many deals the setup job has yet to do: mapped to a playbook
        no longer theirs, without the playbook their team has, queued for
        evaluation."""
        return (
            self._sop_remap_left()
            + self._sop_waiting_ids(0)[1]
            + self.env["crm.sop.evaluation.queue"]._sop_next(0)[1]
        )

    @api.model
    def _sop_lock_leads(self, lead_ids):
        """Lock the leads ``lead_ids`` as an UPDATE would, but those another
        transaction holds (skipped, not waited for); returns the ids locked.
        A lead another transaction changed after this one's snapshot raises
        a serialization failure (REPEATABLE READ), not logged as a bad
        query: the caller decides (a request is retried by Odoo, the setup
        job tries again later)."""
        if not lead_ids:
            return []
        self.env.cr.execute(
            SQL(
                """SELECT id FROM crm_lead WHERE id = ANY(%s)
                 ORDER BY id DESC FOR NO KEY UPDATE SKIP LOCKED""",
                list(lead_ids),
            ),
            log_exceptions=False,
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _sop_now_or_job(self, method, *args):
        """``method(*args)``: the ids of the deals a manager's playbook
        change locks (and re-maps) to do them in the manager's save. One a
        rep's save changed after the manager's save began cannot be written
        in it (REPEATABLE READ: a serialization failure, which would fail the
        save; Odoo would try it again, and again while the reps work): then
        none is done now (the savepoint undoes what ``method`` did), []
        is returned, and the setup job the caller triggers does them all,
        in transactions of its own."""
        try:
            with self.env.cr.savepoint():
                return method(*args)
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as error:
            _logger.info(
                "Sales SOP: a playbook change met a deal saved meanwhile (%s), "
                "its deals are left to the setup job",
                error.pgcode,
            )
            return []

    @contextmanager
    def _sop_bulk_load(self, enabled=True):
        """Fill crm_sop_task and crm_sop_stage_log, and write the deals' SOP
        summary, as pg_restore fills tables: at install over many open
        opportunities, the foreign keys of those two tables and their indexes
        but the unique ones (the inserts' ON CONFLICT arbiter), and the
        foreign keys of crm_lead's SOP columns (playbook, SOP stage, next
        step), are dropped for the block and made again after it, from their
        own definitions in the catalog. Each foreign key is then checked once
        for all rows, in one join, rather than by a trigger per row and key
        (on 100,000 opportunities: 1.3 million task rows and four keys, about
        two thirds of the insert's time; 1.6 s of triggers on the summary),
        and each index is built once.

        Only at install (the post_init_hook): the addon's tables were created
        in this same transaction, and adding the addon's columns to crm_lead
        already holds that table's exclusive lock until the install commits,
        so nobody else meets the tables without their keys; if the install
        fails, the keys come back with the rollback."""
        if not enabled:
            yield
            return
        cr = self.env.cr
        self._sop_flush()
        cr.execute(
            """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                 FROM pg_constraint
                WHERE contype = 'f'
                  AND (conrelid IN ('crm_sop_task'::regclass,
                                    'crm_sop_stage_log'::regclass)
                       OR (conrelid = 'crm_lead'::regclass
                           AND conname LIKE 'crm\\_lead\\_sop\\_%'))
             ORDER BY 1, 2"""
        )
        keys = cr.fetchall()
        cr.execute(
            """SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x
                 JOIN pg_class i ON i.oid = x.indexrelid
                WHERE x.indrelid IN ('crm_sop_task'::regclass,
                                     'crm_sop_stage_log'::regclass)
                  AND NOT x.indisunique AND NOT x.indisprimary
             ORDER BY i.relname"""
        )
        indexes = cr.fetchall()
        for table, name, _definition in keys:
            cr.execute(
                SQL(
                    "ALTER TABLE %s DROP CONSTRAINT %s",
                    SQL.identifier(table),
                    SQL.identifier(name),
                )
            )
        for name, _definition in indexes:
            cr.execute(SQL("DROP INDEX %s", SQL.identifier(name)))
        yield
        self._sop_flush()
        for _name, definition in indexes:
            cr.execute(definition)
        for table, name, definition in keys:
            cr.execute(
                SQL(
                    "ALTER TABLE %s ADD CONSTRAINT %s %s",
                    SQL.identifier(table),
                    SQL.identifier(name),
                    SQL(definition),
                )
            )
        _logger.info(
            "Sales SOP: tasks loaded in bulk, %s keys and %s indexes made again",
            len(keys),
            len(indexes),
        )

    @api.model
    def _sop_insert(
        self, lead_ids=None, task_template_ids=None, templates=None, created=False
    ):
        """Create the missing tasks of the leads' playbooks in one statement
        (and reactivate those archived earlier). ``templates``: {lead id:
        playbook id} of new leads whose playbook is not written yet;
        ``created``: they are being created by this transaction, no task of
        theirs can exist (a plain insert: no conflict to look for).
        Returns the rows (id, lead_id, task_template_id, state, sent) created or
        reactivated."""
        conditions = [SQL("tt.active"), SQL("s.active")]
        if templates is not None:
            pairs = [(lead_id, tid) for lead_id, tid in templates.items() if tid]
            if not pairs:
                return []
            # two arrays rather than a VALUES list: one parameter each, not
            # one SQL object per lead (the install passes 5,000 at a time)
            source = SQL(
                "unnest(%s::integer[], %s::integer[]) AS l(id, sop_template_id)",
                sop_id_array(lead_id for lead_id, _tid in pairs),
                sop_id_array(tid for _lead_id, tid in pairs),
            )
        else:
            source = SQL("crm_lead l")
        if lead_ids is not None:
            conditions.append(SQL("l.id = ANY(%s::integer[])", sop_id_array(lead_ids)))
        open_leads = task_template_ids is not None
        if open_leads:
            # a task added to a live playbook reaches its open opportunities
            conditions.append(SQL("tt.id = ANY(%s)", list(task_template_ids)))
            conditions.append(SQL(SOP_OPEN_SQL))
        self._sop_flush(["probability"] if open_leads else ())
        if templates is not None and len(pairs) >= SOP_ANALYZE_MIN_LEADS:
            self._sop_analyze_leads(len(pairs))
        self.env.cr.execute(
            SQL(
                """INSERT INTO crm_sop_task (lead_id, task_template_id, state, active)
                    SELECT l.id, tt.id, 'todo', TRUE
                      FROM %(source)s
                      JOIN crm_sop_task_template tt
                        ON tt.template_id = l.sop_template_id
                      JOIN crm_sop_stage s ON s.id = tt.stage_id
                     WHERE %(where)s
                %(conflict)s
                RETURNING id, lead_id, task_template_id, state, date_script_sent,
                          date_done""",
                source=source,
                where=SQL(" AND ").join(conditions),
                # a new deal's tasks: the insert checks no conflict per row
                # (the unique index still holds them)
                conflict=SQL()
                if created
                else SQL(
                    """ON CONFLICT (lead_id, task_template_id)
                       DO UPDATE SET active = TRUE
                       WHERE crm_sop_task.active IS NOT TRUE"""
                ),
            )
        )
        rows = sop_task_rows(self.env.cr.fetchall())
        self.env["crm.sop.task"].invalidate_model()
        self.env["crm.lead"].invalidate_model(["sop_task_ids"])
        return rows

    @api.model
    def _sop_analyze_leads(self, count):
        """Before inserting the tasks of ``count`` new leads: when PostgreSQL
        believes crm_lead holds fewer rows than that (a new database, its
        first import), refresh its statistics. Every task inserted checks its
        lead's foreign key; planned on a table PostgreSQL knows as a few
        pages, the check is a sequential scan that the connection keeps, and
        a 1,000-lead import then spent 0.4 to 3.8 s in it instead of 0.05 s
        (EXPLAIN ANALYZE, "Trigger for constraint crm_sop_task_lead_id_fkey").
        ANALYZE counts the rows this transaction inserted and invalidates the
        cached plans; it never runs on a table whose statistics already know
        more rows (core's account does the same for its currency table), nor
        on one they know as ``SOP_ANALYZE_MAX_PAGES`` pages or more: a plan
        cached since they were counted (counting them invalidates the plans)
        was made on that many pages at least, an index scan. A database with
        a few hundred deals, importing more than it holds, spent 0.036 M
        instructions per deal in an ANALYZE that changed no plan
        (callgrind, the bench's fresh pair).
        Only the column the check looks up: the table's size is what its plan
        needs, and the statistics of crm_lead's other columns (some 80 with
        crm's modules) cost a 1,000-deal import 0.12 M instructions per deal
        (callgrind), four times those of ``id`` alone; autovacuum still
        analyzes the whole table later (a column list does not reset its
        count of rows changed)."""
        self.env.cr.execute(
            """SELECT relpages, reltuples FROM pg_class
                WHERE oid = 'crm_lead'::regclass"""
        )
        pages, rows = self.env.cr.fetchone()
        if pages < SOP_ANALYZE_MAX_PAGES and rows < count:
            self.env.cr.execute("ANALYZE crm_lead (id)")

    @api.model
    def _sop_prune_condition(self, lead_ids=None, task_template_ids=None):
        """SQL on a task ``t``, its template ``tt``, SOP stage ``s`` and deal
        ``l``: the task no longer belongs to its deal's playbook (or its
        template or SOP stage was archived); of the leads ``lead_ids``, of
        the task templates ``task_template_ids``."""
        condition = SQL(
            """(tt.template_id IS DISTINCT FROM l.sop_template_id
                 OR NOT tt.active OR NOT s.active)"""
        )
        if lead_ids is not None:
            condition = SQL(
                "%s AND t.lead_id = ANY(%s::integer[])",
                condition,
                sop_id_array(lead_ids),
            )
        if task_template_ids is not None:
            condition = SQL(
                "%s AND t.task_template_id = ANY(%s)",
                condition,
                list(task_template_ids),
            )
        return condition

    @api.model
    def _sop_prune_held(self, task_template_ids):
        """Ids of the leads that would lose a task of ``task_template_ids``
        but that a rep's transaction holds: the others are locked. Deleting
        a task writes its deal (its next step emptied, ``ondelete``) and its
        review facts: a deal a rep is saving would make the manager's save
        wait for the rep, then fail (REPEATABLE READ). If a rep saved one
        since the save began, none is locked (``_sop_now_or_job``): all are
        held. Beyond the newest SOP_SETUP_INLINE, the others are held too:
        over a large pipeline the deletion (and every deal whose next step
        the task was, written) took seconds in the manager's save (8 s for
        33,000 deals of 100,000), and the setup job prunes them by
        batches."""
        self._sop_flush()
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT t.lead_id
                     FROM crm_sop_task t
                     JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
                     JOIN crm_sop_stage s ON s.id = tt.stage_id
                     JOIN crm_lead l ON l.id = t.lead_id
                    WHERE (t.active OR t.state = 'todo') AND %s""",
                self._sop_prune_condition(task_template_ids=task_template_ids),
            )
        )
        lead_ids = sorted((row[0] for row in self.env.cr.fetchall()), reverse=True)
        return set(lead_ids).difference(
            self._sop_now_or_job(self._sop_lock_leads, lead_ids[:SOP_SETUP_INLINE])
        )

    @api.model
    def _sop_prune(
        self, lead_ids=None, task_template_ids=None, but=(), count_out=False
    ):
        """Tasks that no longer belong to their lead's playbook (or whose
        template was archived): open ones are deleted, done ones archived with
        their history. ``but``: ids of leads left as they are. ``count_out``:
        the closed deals' history counts lose those tasks first (a deal's
        own prune is in its write's recount). Returns the ids of the leads
        that lost tasks."""
        condition = self._sop_prune_condition(lead_ids, task_template_ids)
        if but:
            condition = SQL("%s AND NOT t.lead_id = ANY(%s)", condition, list(but))
        self._sop_flush()
        if count_out:
            # on those task templates' rows alone
            self.env["crm.sop.history.count"]._sop_add_pruned(condition)
        self.env.cr.execute(
            SQL(
                """DELETE FROM crm_sop_task t
                     USING crm_sop_task_template tt, crm_sop_stage s, crm_lead l
                    WHERE tt.id = t.task_template_id AND s.id = tt.stage_id
                      AND l.id = t.lead_id AND t.state = 'todo' AND %s
                RETURNING t.lead_id""",
                condition,
            )
        )
        pruned = {row[0] for row in self.env.cr.fetchall()}
        self.env.cr.execute(
            SQL(
                """UPDATE crm_sop_task t SET active = FALSE
                     FROM crm_sop_task_template tt, crm_sop_stage s, crm_lead l
                    WHERE tt.id = t.task_template_id AND s.id = tt.stage_id
                      AND l.id = t.lead_id AND t.active AND %s
                RETURNING t.lead_id""",
                condition,
            )
        )
        pruned.update(row[0] for row in self.env.cr.fetchall())
        # their deals' task analysis loses these tasks (a deleted one's
        # facts go with it: ondelete cascade)
        self.env["crm.sop.task.fact"]._sop_mark(pruned)
        self.env["crm.sop.task"].invalidate_model()
        self.env["crm.lead"].invalidate_model(["sop_task_ids", "sop_next_task_id"])
        return pruned

    @api.model
    def _sop_instantiate_templates(self, task_templates):
        """A task template was added, moved, archived or restored: open
        opportunities of its playbook get (or lose) its task."""
        if not task_templates or self._sop_deferred():
            return
        # the deals a rep's transaction holds keep the task for now: the
        # setup job prunes and evaluates them
        held = self._sop_prune_held(task_templates.ids)
        pruned = self._sop_prune(
            task_template_ids=task_templates.ids, but=held, count_out=True
        )
        self._sop_insert(task_template_ids=task_templates.ids)
        # and the deals that lost an open task: it may have been their next
        # step (its key is emptied with it)
        self._sop_evaluate_templates(task_templates, also=pruned, later=held)
        # the task analysis' facts made anew (an open deal past the stage of
        # a task added has facts for it)
        self.env["crm.sop.task.fact"]._sop_mark_all()

    @api.model
    def _sop_evaluate_templates(self, task_templates, also=(), later=()):
        """Re-evaluate every lead holding a task of these task templates, and
        the leads ``also``; the leads ``later`` by the setup job. Inside
        ``_sop_evaluate_once``, the task templates are gathered instead."""
        if self._sop_deferred():
            return
        gathered = self.env.cr.cache.get(SOP_EVALUATE_GATHERED)
        if gathered is not None and not also and not later:
            gathered.update(task_templates.ids)
            return
        self._sop_flush()
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT t.lead_id FROM crm_sop_task t
                    WHERE t.task_template_id = ANY(%s)""",
                task_templates.ids,
            )
        )
        lead_ids = {row[0] for row in self.env.cr.fetchall()} | set(also)
        self._sop_evaluate_soon(lead_ids, later=later)

    @contextmanager
    def _sop_evaluate_once(self):
        """The task templates whose deals a block asks to re-evaluate are
        gathered, and their deals evaluated once, after it: a playbook saved
        with its SOP stages reordered writes each stage, each of which asked
        for the same deals again (up to SOP_EVALUATE_INLINE evaluated and
        every other one queued, per stage). Nested, the outermost block
        evaluates."""
        with self._sop_gathering(SOP_EVALUATE_GATHERED) as gathered:
            yield
        if gathered:
            self._sop_evaluate_templates(
                self.env["crm.sop.task.template"]
                .with_context(active_test=False)
                .browse(sorted(gathered))
            )

    @api.model
    def _sop_evaluate_soon(self, lead_ids, later=()):
        """Evaluate the deals ``lead_ids`` after a manager's playbook change:
        the newest SOP_EVALUATE_INLINE now, but those a rep's transaction
        holds; the others are queued (crm.sop.evaluation.queue) for the
        setup job, triggered. Over a large pipeline, the manager's request
        then neither takes minutes nor writes deals the reps are saving (a
        deal a rep saved after it began, written by it, fails it: Odoo tries
        it again, and again, while the reps work). ``later``: queued
        whatever their number."""
        lead_ids = set(lead_ids) | set(later)
        newest = sorted(lead_ids.difference(later), reverse=True)
        now_ids = self._sop_now_or_job(
            self._sop_lock_leads, newest[:SOP_EVALUATE_INLINE]
        )
        self._sop_evaluate_ids(sorted(now_ids))
        later = lead_ids.difference(now_ids)
        if later:
            _logger.info(
                "Sales SOP: %s opportunities evaluated now, %s by the setup job",
                len(now_ids),
                len(later),
            )
            self.env["crm.sop.evaluation.queue"]._sop_add(later)
            # sudo: the engine's own job, whoever changed the playbook
            self.env.ref("crm_sales_sop.ir_cron_sop_setup").sudo()._trigger()

    @api.model
    def _sop_evaluate_ids(self, lead_ids):
        Lead = self.env["crm.lead"].with_context(active_test=False)
        for ids in split_every(EVALUATE_CHUNK, lead_ids):
            self._sop_evaluate(Lead.browse(ids))
            # keep memory flat on large installs
            self.env.invalidate_all(flush=True)

    # ------------------------------------------------------------
    # EVALUATION: the state of every task of a batch of leads from their
    # data (each kind decides, crm_sop_task_kind.py), and the leads' SOP
    # summary
    # ------------------------------------------------------------

    @api.model
    def _sop_read_rows(self, lead_ids):
        """The rows (SopTaskRow) of the active tasks of the leads, one query."""
        self.env["crm.sop.task"].flush_model()
        self.env.cr.execute(
            SQL(
                """SELECT id, lead_id, task_template_id, state, date_script_sent,
                          date_done
                     FROM crm_sop_task
                    WHERE active AND lead_id = ANY(%s::integer[])""",
                sop_id_array(lead_ids),
            )
        )
        return sop_task_rows(self.env.cr.fetchall())

    @api.model
    def _sop_heal(self, leads, rows, config):
        """Tasks an open lead should have and has not (a task template added
        while another transaction created the lead, whose insert could not see
        it): inserted now. No query when nothing is missing (the caller
        fetched the leads' playbook, active and probability)."""
        expected = defaultdict(set)
        for c in config.values():
            expected[c.template_id].add(c.id)
        present = defaultdict(set)
        for row in rows:
            present[row.lead_id].add(row.task_template_id)
        missing = [
            lead.id
            for lead in leads
            if lead.sop_template_id
            and sop_is_open(lead)
            and expected[lead.sop_template_id.id] - present[lead.id]
        ]
        if not missing:
            return []
        _logger.info("Sales SOP: %s opportunities get missing tasks", len(missing))
        return self._sop_insert(lead_ids=missing)

    @api.model
    def _sop_fetch(self, leads, rows, config, extra=()):
        """Read what the kinds of these rows need, for the whole batch: the
        fields their tasks watch, on the leads and on their customers."""
        configs = [config[tt_id] for tt_id in set(map(SOP_ROW_TEMPLATE, rows))]
        lead_fields = {name for c in configs for name in c.lead_fields}
        partner_fields = {name for c in configs for name in c.partner_fields}
        if partner_fields:
            lead_fields.add("partner_id")
        if lead_fields or extra:
            leads.fetch(list(lead_fields | set(extra)))
        if partner_fields:
            leads.partner_id.fetch(list(partner_fields))

    @api.model
    def _sop_evaluate(self, leads, rows=None, templates=None, created=False):
        """Decide the state of every task of ``leads`` in one pass.

        Reads what the task kinds need for the whole batch (lead and customer
        fields), lets each kind decide for all its rows at once
        (``_sop_done_<kind>``, see crm_sop_task_kind.py), writes the tasks
        whose state changes (one UPDATE per target state), then the leads' SOP
        summary in one statement.

        ``rows``: the leads' task rows when the caller has them (new leads);
        ``templates``: playbooks to write with the summary (new leads);
        ``created``: the leads are being created (SopBatch.created).
        Works on plain rows and SQL rather than records: it derives task states
        from data the current user was allowed to write (reps have no write
        access on tasks), for batches of thousands of leads.
        """
        if not leads:
            return
        config = self.env["crm.sop.task.template"]._sop_config()
        leads = leads.sudo().with_context(active_test=False, prefetch_fields=False)
        rows = self._sop_evaluated_rows(leads, rows, config)
        batch = SopBatch(
            leads={lead.id: lead for lead in leads}, config=config, created=created
        )
        done = self._sop_decide(batch, rows)
        new_rows = self._sop_apply_states(batch, rows, done, new=bool(templates))
        self._sop_update_summary(leads, new_rows, templates, created=created)

    @api.model
    def _sop_evaluated_rows(self, leads, rows, config):
        """The task rows to evaluate, with what their kinds read fetched:
        the given ones (new leads), else the leads' active tasks read and
        healed (tasks an open lead lacks inserted)."""
        if rows is not None:
            rows = [row for row in rows if row.task_template_id in config]
            self._sop_fetch(leads, rows, config)
            return rows
        rows = [
            row
            for row in self._sop_read_rows(leads.ids)
            if row.task_template_id in config
        ]
        # the probability core may still have to compute (lead scoring, after
        # a write of what it scores) is computed here, as the read below
        # needs it, in a context that prefetches: in the engine's, core's
        # compute read its scoring frequencies one field per query (+4)
        leads.with_context(prefetch_fields=True)._recompute_recordset(["probability"])
        self._sop_fetch(
            leads, rows, config, extra=("sop_template_id", "active", "probability")
        )
        healed = self._sop_heal(leads, rows, config)
        if healed:
            rows += [row for row in healed if row.task_template_id in config]
            self._sop_fetch(leads, rows, config)
        return rows

    @api.model
    def _sop_decide(self, batch, rows):
        """{task id: done} for every row, each kind deciding for all its rows
        at once (``_sop_done_<kind>``), given them by task template."""
        rows_by_kind = defaultdict(list)
        for task_template_id, group in sop_rows_by_template(rows):
            rows_by_kind[batch.config[task_template_id].kind].extend(group)
        done = {}
        Kind = self.env["crm.sop.task.kind"]
        for kind, kind_rows in rows_by_kind.items():
            done.update(Kind._sop_kind(kind, "done")(batch, kind_rows))
        return done

    @api.model
    def _sop_apply_states(self, batch, rows, done, new=False):
        """Write the states that change (one UPDATE per target state), with
        the history counts and the review facts that follow; returns the rows
        as they now are. A task set aside by the rep is left alone. ``new``:
        the leads are being created (counted whole once created; their facts
        marked by create when they are created closed)."""
        # the rows whose state changes, todo <-> done; a task set aside by
        # the rep ("na") is left alone. Most change not (one pass, no row
        # made anew)
        if not any(done.values()) and "done" not in map(attrgetter("state"), rows):
            # nothing done, nothing to reopen (as a new deal's tasks often):
            # seen in C, no pass of Python over the rows
            return rows
        changing = [
            row
            for row in rows
            if row.state != "na" and bool(done[row.id]) != (row.state == "done")
        ]
        if not changing:
            return rows
        to_done, to_todo, replaced = [], [], {}
        now = self.env.cr.now()
        for row in changing:
            if row.state == "todo":
                to_done.append(row.id)
                # the first completion's date, as _sop_write_states keeps it
                replaced[row.id] = row._replace(
                    state="done", date_done=row.date_done or now
                )
            else:
                to_todo.append(row.id)
                replaced[row.id] = row._replace(state="todo")
        new_rows = [replaced.get(row.id, row) for row in rows]
        self.env["crm.sop.task"].flush_model()
        History = self.env["crm.sop.history.count"]
        changed_ids = {*to_done, *to_todo}
        # the install counts the history anew: only known leads here
        changed = {
            row.id: batch.leads[row.lead_id]
            for row in rows
            if row.id in changed_ids and not new
        }
        # closed deals' tasks leave their history counts and come back
        History._sop_add_tasks(None, -1, lead_of=changed)
        self._sop_write_states(to_done, to_todo)
        History._sop_add_tasks(None, 1, lead_of=changed)
        # the deals' review facts follow, where the tasks have theirs
        self.env["crm.sop.task.fact"]._sop_write_ticked(
            {task_id: lead.id for task_id, lead in changed.items()}
        )
        return new_rows

    @api.model
    def _sop_write_states(self, to_done, to_todo):
        """The tasks' new states in SQL, one UPDATE per target state. The
        credit (who, when) is the first completion's: a task undone and done
        again (a field cleared and filled by someone else) keeps it, so
        re-evaluating moves no credit and no stall clock."""
        now, uid = self.env.cr.now(), self.env.uid
        if to_done:
            self.env.cr.execute(
                SQL(
                    """UPDATE crm_sop_task
                          SET state = 'done', completion = 'auto',
                              date_done = COALESCE(date_done, %s),
                              done_user_id = COALESCE(done_user_id, %s)
                        WHERE id = ANY(%s)""",
                    now,
                    uid,
                    to_done,
                )
            )
        if to_todo:
            self.env.cr.execute(
                SQL(
                    """UPDATE crm_sop_task
                          SET state = 'todo', completion = NULL
                        WHERE id = ANY(%s)""",
                    to_todo,
                )
            )
        self.env["crm.sop.task"].invalidate_model(
            ["state", "completion", "date_done", "done_user_id"]
        )

    @api.model
    def _sop_summary(self, items, open_count, lead_order, orders, plans):
        """(progress, SOP stage id, next task id) of a lead from its tasks
        [(order, SopTaskConfig, SopTaskRow)] in SOP order (``open_count`` of
        them open) and the order of its pipeline stage. Tasks marked not
        applicable count neither as open nor as done.

        The SOP stage follows the deal: the SOP stage mapped to its pipeline
        stage, or the last one mapped at or before it (a SOP stage mapped to
        no pipeline stage goes with the mapped one before it). The next step
        is an open task of that SOP stage, required first; only when it has
        none, a required task left behind (of a SOP stage mapped before the
        deal's pipeline stage), else the first open task of a later SOP stage.
        An optional task left behind is never the next step. Without a
        pipeline stage yet (a new lead), the first open task is the next
        step.

        What depends on the tasks' templates and the pipeline stage alone
        (``_sop_summary_plan``) is worked out once per batch in ``plans``
        {(the tasks' orders, pipeline order): plan}, not once per deal: the
        deals of a playbook share it."""
        if open_count == len(items):
            # all open (or none at all): nothing done
            progress = 0
        else:
            applicable = sum(1 for item in items if item[2].state != "na")
            progress = (
                round(100 * (applicable - open_count) / applicable)
                if applicable
                else 100
            )
        if not items:
            return progress, False, False
        if lead_order is None:
            first = next((item for item in items if item[2].state == "todo"), None)
            if first is None:
                return progress, items[-1][1].stage_id, False
            return progress, first[1].stage_id, first[2].id
        key = (tuple(map(itemgetter(0), items)), lead_order)
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = self._sop_summary_plan(items, lead_order, orders)
        current, here, behind, ahead = plan
        # the first current SOP stage with an open task, its first open task
        # (required first); else the last current one, where nothing is open
        for stage_id in current:
            for i in here[stage_id]:
                if items[i][2].state == "todo":
                    return progress, stage_id, items[i][2].id
        # nothing here: a required task left behind, else the first ahead
        for i in (*behind, *ahead):
            if items[i][2].state == "todo":
                return progress, stage_id, items[i][2].id
        return progress, stage_id, False

    @api.model
    def _sop_summary_plan(self, items, lead_order, orders):
        """What a lead's summary (``_sop_summary``) needs of its tasks'
        templates and its pipeline stage, as positions in ``items``:
        (the SOP stages it may be in, in SOP order (those of the highest
        pipeline level reached, else the first), {each of those: its tasks,
        required first}, the required tasks left behind, the tasks ahead)."""
        # the pipeline level of each SOP stage, in SOP order
        levels, level = {}, None
        for _order, c, _row in items:
            if c.stage_id not in levels:
                mapped = orders.get(c.crm_stage_id) if c.crm_stage_id else None
                level = mapped if mapped is not None else level
                levels[c.stage_id] = level
        reached = [
            (lvl, stage_id)
            for stage_id, lvl in levels.items()
            if lvl is not None and lvl <= lead_order
        ]
        if reached:
            top = max(lvl for lvl, _stage_id in reached)
            current = [stage_id for lvl, stage_id in reached if lvl == top]
        else:
            current = [items[0][1].stage_id]
        here = {
            stage_id: sorted(
                (i for i, item in enumerate(items) if item[1].stage_id == stage_id),
                # required first, then in SOP order (the sort is stable)
                key=lambda i: not items[i][1].required,
            )
            for stage_id in current
        }
        behind = tuple(
            i
            for i, (_order, c, _row) in enumerate(items)
            if c.required
            and c.crm_stage_id
            and orders.get(c.crm_stage_id, lead_order) < lead_order
        )
        ahead = tuple(
            i
            for i, (_order, c, _row) in enumerate(items)
            if levels[c.stage_id] is None or levels[c.stage_id] > lead_order
        )
        return current, here, behind, ahead

    @api.model
    def _sop_gate_held(self, items, lead_order, orders):
        """A block gate holds the deal where it stands: a required task of a
        SOP stage that blocks the deal's own pipeline stage is open.
        ``items``: [(order, SopTaskConfig, SopTaskRow)] of the lead."""
        return any(
            c.gate == "block"
            and c.required
            and row.state == "todo"
            and c.crm_stage_id
            and orders.get(c.crm_stage_id) == lead_order
            for _order, c, row in items
        )

    @api.model
    def _sop_update_summary(
        self, leads, rows=None, templates=None, forward=(), created=False
    ):
        """Write the SOP summary (sop_progress, sop_stage_id,
        sop_next_task_id, the stall clock, the band) of the leads whose
        summary changes; ``forward``: ids of leads whose pipeline stage just
        moved forward; ``templates``: the playbooks of leads that get theirs
        with it; ``created``: the leads are being created by the ORM.

        Deals the ORM holds (written, created, evaluated) have their summary
        given to the ORM as values to write (``_sop_cache_summaries``): core's
        own UPDATE of the row carries it, one version of the row per
        transaction. Deals set up around the ORM (the install, the setup
        job: the playbook written with the summary) have it written by one
        statement for the batch (``_sop_write_summaries``).

        The stall clock (``sop_stage_date``) is the last real forward
        movement: the lead's creation, its last forward pipeline move
        (``sop_forward_date``), or the latest first completion of its done
        tasks (``SopSummary.done_date``, from the task rows). Setting a task
        aside and restoring it, or ticking a task and reopening it, leaves it
        where it was.

        Values decided by the engine rather than stored computed fields (as
        core does for automated_probability): the summary derives from task
        rows that the engine already holds, written in SQL. Measured with a
        stored-compute prototype (compute_sudo, recompute marked by the
        engine): 1-2 queries fewer on create and stage moves, but one more
        per batch on every re-evaluation (the compute re-reads the task
        rows), 0.1-0.3 s slower per 1,000 leads re-evaluated. No caller
        outside the engine may write these fields (crm.lead refuses them);
        the engine's own SQL flushes them first (``_sop_flush``), a next step
        the ORM holds reaching the database before its task can go."""
        if not leads:
            return
        leads = leads.sudo().with_context(prefetch_fields=False)
        summaries, banded = self._sop_summaries(leads, rows, templates, forward)
        if not summaries:
            return
        if created or not templates:
            # in the ORM's hands: the summary goes with core's UPDATE
            self._sop_cache_summaries(leads, summaries, templates, created=created)
            return
        self._sop_write_summaries(summaries, templates)
        # the band is refreshed only where it moved (below): its recompute is
        # predictive lead scoring's
        fnames = [f for f in SOP_SUMMARY_FIELDS if f != "sop_progress_band"]
        self._sop_leads_written(leads, [*fnames, "sop_template_id"])
        if banded:
            # the band is a variable of predictive lead scoring: the deals
            # whose band moved get their automated probability recomputed
            self._sop_leads_written(leads.browse(banded), ["sop_progress_band"])

    @api.model
    def _sop_summaries(self, leads, rows, templates, forward):
        """([SopSummary] of the leads whose summary changes, [ids of open
        leads whose progress band changes]), from their task rows."""
        config = self.env["crm.sop.task.template"]._sop_config()
        if rows is None:
            rows = self._sop_read_rows(leads.ids)
        by_lead = sop_items_by_lead(rows, config)
        leads.fetch(
            ["sop_progress", "sop_stage_id", "sop_next_task_id", "sop_gate_held"]
            + ["sop_progress_band", "active", "create_date", "sop_forward_date"]
            + ["sop_stage_date"]
        )
        # New leads whose stage core has not computed yet are in the first
        # stage of their team: reading it here would compute it now, lead by
        # lead, out of core's batch; the first open task is then the next step.
        stage_field = leads._fields["stage_id"]
        staged = self.env.not_to_compute(stage_field, leads)
        # the pipeline stage of those (the others: None)
        stage_of = dict(held_rows(staged, ("stage_id",)))
        orders = self.env["crm.stage"]._sop_orders()
        won_ids = self.env["crm.stage"]._sop_won_ids()
        # the pipeline stages a blocking gate of each playbook may hold a
        # deal in (gates start off): a deal elsewhere is held by none
        # (_sop_gate_held)
        gated_orders = defaultdict(set)
        for c in config.values():
            if c.gate == "block" and c.required and c.crm_stage_id:
                gated_orders[c.template_id].add(orders.get(c.crm_stage_id))
        summaries, banded, plans = [], [], {}
        for (
            lead_id,
            active,
            sop_stage_id,
            progress_before,
            next_before,
            held_before,
            band_before,
        ) in held_rows(
            leads,
            (
                "active",
                "sop_stage_id",
                "sop_progress",
                "sop_next_task_id",
                "sop_gate_held",
                "sop_progress_band",
            ),
        ):
            items = by_lead.get(lead_id, [])
            open_count = sop_open_count(items)
            stage = stage_of.get(lead_id)
            lead_order = orders.get(stage)
            progress, stage_id, next_task_id = self._sop_summary(
                items, open_count, lead_order, orders, plans
            )
            # the band follows the progress while the deal is open, and is
            # frozen once it is won or lost (what predictive lead scoring
            # learns from): None keeps the band it has
            is_open = active and stage not in won_ids
            summary = SopSummary(
                lead_id=lead_id,
                progress=progress,
                stage_id=stage_id or None,
                task_id=next_task_id or None,
                band=sop_progress_band(progress) if is_open else None,
                forward=lead_id in forward,
                held=bool(
                    is_open
                    and items
                    and lead_order is not None
                    and lead_order in gated_orders.get(items[0][1].template_id, ())
                    and self._sop_gate_held(items, lead_order, orders)
                ),
                # all open: no completion to read
                done_date=None
                if open_count == len(items)
                else max(
                    (
                        row.date_done
                        for _order, _c, row in items
                        if row.state == "done" and row.date_done
                    ),
                    default=None,
                ),
            )
            if (
                templates
                or summary.forward
                or sop_stage_id != summary.stage_id
                or progress_before != summary.progress
                or next_before != summary.task_id
                or held_before != summary.held
            ):
                summaries.append(summary)
                if summary.band is not None and band_before != summary.band:
                    banded.append(lead_id)
        return summaries, banded

    @api.model
    def _sop_write_summaries(self, summaries, templates):
        """Write the summaries [SopSummary] and the leads' playbook
        ``templates`` {lead id: playbook id} in one statement, with
        the stall clock and the SOP stage history of the leads whose SOP stage
        changes (the stint left ends, the new one starts). Its callers give
        deals their playbook around the ORM (the install, the setup job)."""
        self.env["crm.lead"].flush_model([*SOP_SUMMARY_FIELDS, "sop_template_id"])
        columns, values = self._sop_summary_values(summaries, templates)
        lead_ids = [summary.lead_id for summary in summaries]
        now = self.env.cr.now()
        # the stall clock: a later value is a real forward movement (the deal
        # is not stalled any more); an earlier one (a task reopened) leaves
        # the flag to the next stall pass. The last completion comes with the
        # values, from the task rows the summary was made of: the statement
        # reads no task (an aggregate of crm_sop_task joined here cost a
        # scan per batch, and a sequential one of the whole table when its
        # statistics were behind, as while the setup job fills it).
        # ``l0`` is the row before the statement: its SOP stage is the one
        # left
        summary = SQL(
            """WITH v(%(columns)s) AS (%(values)s),
                    summary AS (
                        UPDATE crm_lead l
                           SET sop_progress = c.progress,
                               sop_stage_id = c.stage_id,
                               sop_next_task_id = c.task_id,
                               sop_gate_held = c.held,
                               sop_template_id = c.template_id,
                               sop_forward_date = CASE WHEN c.forward THEN %(now)s
                                                  ELSE l.sop_forward_date END,
                               sop_stage_date = c.date,
                               sop_stalled = CASE
                                   WHEN c.date > COALESCE(l.sop_stage_date, c.date)
                                   THEN FALSE ELSE l.sop_stalled END,
                               sop_progress_band = COALESCE(c.band, l.sop_progress_band)
                          FROM (SELECT v.*, l0.sop_stage_id AS stage_before,
                                       GREATEST(
                                          l0.create_date,
                                          CASE WHEN v.forward THEN %(now)s
                                               ELSE l0.sop_forward_date END,
                                          v.done_date) AS date
                                  FROM v JOIN crm_lead l0
                                    ON l0.id = v.lead_id AND l0.id = ANY(%(lead_ids)s)
                               ) c
                         WHERE l.id = c.lead_id
                     RETURNING c.lead_id, c.stage_id, c.stage_before),
                    entered AS (
                        SELECT lead_id, stage_id FROM summary
                         WHERE stage_before IS DISTINCT FROM stage_id)""",
            columns=SQL(", ").join(SQL.identifier(c) for c in columns),
            values=values,
            now=now,
            lead_ids=lead_ids,
        )
        # the stints of the leads that entered another SOP stage, as the
        # database says (the stage the row held before the statement)
        self.env.cr.execute(SQL("%s%s", summary, self._sop_stints_sql(now)))
        self.env["crm.sop.stage.log"].invalidate_model()

    @api.model
    def _sop_cache_summaries(self, leads, summaries, templates=None, created=False):
        """The summaries [SopSummary] of leads the ORM holds (being created or
        written, and their playbook ``templates``), given to the ORM as values
        to write, as a write() would: core's flush writes them in the UPDATE
        it makes of the row anyway (a new lead's computed fields, the values
        a write changed), rather than a statement of the engine making a
        second version of the row with all of crm_lead's index entries (and,
        the row being the transaction's own, every foreign key checked
        again).

        The same values as the statement's (``_sop_write_summaries``), from
        the lead as the ORM holds it: the stall clock is the latest of its
        creation, its last forward move (now when it moves forward) and its
        tasks' last completion, a later one clearing the stall flag; the SOP
        stage entered opens its stint now (SQL: the history is the engine's
        own table)."""
        now = self.env.cr.now()
        held = {
            lead_id: values
            for lead_id, *values in held_rows(
                leads,
                ("sop_stage_id", "create_date", "sop_forward_date", "sop_stage_date"),
            )
        }
        entered, values = [], defaultdict(dict)
        for summary in summaries:
            lead_id = summary.lead_id
            sop_stage_id, create_date, forward_date, stage_date = held[lead_id]
            vals = values[lead_id]
            if sop_stage_id != summary.stage_id:
                entered.append((lead_id, summary.stage_id))
            # as the statement's GREATEST, which skips what is NULL
            date = max(
                filter(
                    None,
                    (
                        create_date,
                        now if summary.forward else forward_date,
                        summary.done_date,
                    ),
                )
            )
            if stage_date and date > stage_date:
                vals["sop_stalled"] = False
            if summary.forward:
                vals["sop_forward_date"] = now
            if summary.band is not None:
                vals["sop_progress_band"] = summary.band
            if templates:
                vals["sop_template_id"] = templates.get(lead_id) or None
            vals.update(
                sop_progress=summary.progress,
                sop_stage_id=summary.stage_id,
                sop_next_task_id=summary.task_id,
                sop_gate_held=summary.held,
                sop_stage_date=date,
            )
        if entered:
            self._sop_enter_stages(entered, now, created=created)
        by_fields = defaultdict(list)
        for lead_id, vals in values.items():
            by_fields[tuple(sorted(vals))].append(lead_id)
        cache = self.env.cache
        for fnames, lead_ids in by_fields.items():
            records = leads.browse(lead_ids)
            for fname in fnames:
                field = records._fields[fname]
                # the values are already in the cache's format (integers,
                # ids or None, booleans, naive datetimes, a selection's key):
                # no conversion, a call per lead and field, to make
                cache.update(
                    records,
                    field,
                    [values[lead_id][fname] for lead_id in lead_ids],
                    dirty=True,
                )
            # what depends on them follows (lead scoring on the band)
            records.modified(list(fnames))

    @api.model
    def _sop_enter_stages(self, entered, now, created=False):
        """The SOP stage history of the leads ``entered`` [(lead id, SOP
        stage id or None)], which entered another SOP stage at ``now``.
        ``created``: the leads are being created by this transaction, no
        stint of theirs to end."""
        self.env.cr.execute(
            SQL(
                """WITH entered(lead_id, stage_id) AS (
                       SELECT * FROM unnest(%s::integer[], %s::integer[])
                   )%s""",
                sop_id_array(lead_id for lead_id, _stage_id in entered),
                sop_id_array(stage_id for _lead_id, stage_id in entered),
                self._sop_stints_sql(now, created=created),
            )
        )
        self.env["crm.sop.stage.log"].invalidate_model()

    @api.model
    def _sop_stints_sql(self, now, created=False):
        """The end of a statement whose last CTE ``entered`` (lead_id,
        stage_id) holds the leads that entered another SOP stage at ``now``:
        the stint they leave ends (a CTE of its own, but for leads being
        ``created``, which have none), the new one starts (none for no
        stage)."""
        insert = SQL(
            """ INSERT INTO crm_sop_stage_log (lead_id, sop_stage_id, date_start)
               SELECT lead_id, stage_id, %s FROM entered
                WHERE stage_id IS NOT NULL""",
            now,
        )
        if created:
            return insert
        return SQL(
            """, left_stage AS (
                   UPDATE crm_sop_stage_log g SET date_end = %s
                     FROM entered
                    WHERE g.lead_id = entered.lead_id AND g.date_end IS NULL)%s""",
            now,
            insert,
        )

    @api.model
    def _sop_summary_values(self, summaries, templates):
        """The summaries and the leads' playbooks as the statement reads them:
        (column names, the rows as SQL)."""
        columns = [*SopSummary._fields, "template_id"]
        types = ["integer", "integer", "integer", "integer", "varchar"]
        types += ["boolean", "boolean", "timestamp", "integer"]
        arrays = [list(column) for column in zip(*summaries, strict=True)]
        arrays.append([templates.get(s.lead_id) or None for s in summaries])
        # one array per column rather than a VALUES list: one parameter each,
        # not one SQL object per lead
        values = SQL(
            "SELECT * FROM unnest(%s)",
            SQL(", ").join(
                SQL("%s::%s[]", array, SQL(type_))
                for array, type_ in zip(arrays, types, strict=True)
            ),
        )
        return columns, values

    @api.model
    def _sop_leads_written(self, leads, fnames):
        """The one way the engine refreshes the ORM after writing columns of
        crm_lead in SQL: the cache of those fields goes, and what depends on
        them (stored computes, e.g. lead scoring's probability on the band)
        is marked to recompute."""
        leads.invalidate_recordset(list(fnames))
        leads.modified(list(fnames))

    # ------------------------------------------------------------
    # STAGE GATES
    # ------------------------------------------------------------

    @api.model
    def _sop_gated(self):
        """{playbook id: [SopTaskConfig]} of the required tasks of the SOP
        stages that gate a pipeline stage (no query)."""
        gated = defaultdict(list)
        for c in self.env["crm.sop.task.template"]._sop_config().values():
            if c.gate != "none" and c.crm_stage_id and c.required:
                gated[c.template_id].append(c)
        return gated

    @api.model
    def _sop_has_gates(self):
        return bool(self._sop_gated())

    @api.model
    def _sop_gate_check(self, leads, stages_before, entered=(), created=False):
        """Hook of ``crm.lead`` create and write, after the values are
        written: ``stages_before`` {lead id: pipeline stage id it left, or
        None when it comes from nowhere}, ``entered`` the ids of leads that
        came into their playbook (team or company change); ``created``: the
        leads are new. Refuses the moves a block gate holds, logs and tells
        the others."""
        if created:
            entered = set(leads.ids)
        missing = self._sop_gate_missing(leads, stages_before, entered, created)
        if missing:
            self._sop_gate_apply(missing, created)

    @api.model
    def _sop_gate_missing(self, leads, stages_before, entered=(), created=False):
        """{lead: [SopTaskConfig]}: the required tasks of the gated SOP stages
        each lead crosses, not done, without a manager's pass. A gated SOP
        stage is crossed when the lead goes from its pipeline stage (or
        before it, or from nowhere) to a later one. A task the lead lacks
        counts as not done (and is inserted). No query without gates; one
        when nothing is missing."""
        gated = self._sop_gated()
        if not gated:
            return {}
        order = self.env["crm.stage"]._sop_orders()
        candidates = {}
        if created:
            # new leads: their playbook column alone, read as the engine
            # (sudo): prefetching other columns, or the company record rule
            # of the user, would flush the fields core computes for new leads
            # (stage, company...) here, in an UPDATE of their own, rather than
            # in core's one later flush
            source = leads.sudo().with_context(prefetch_fields=False)
        else:
            source = leads
        playbooks = {lead.id: lead.sop_template_id.id for lead in source}
        for lead in leads:
            playbook = playbooks[lead.id]
            if not lead.stage_id or playbook not in gated:
                continue
            before = None if lead.id in entered else stages_before.get(lead.id)
            if before == lead.stage_id.id:
                continue
            target = order[lead.stage_id.id]
            start = order.get(before) if before else None
            items = [
                c
                for c in gated[playbook]
                if (start is None or start <= order[c.crm_stage_id])
                and order[c.crm_stage_id] < target
            ]
            if items:
                candidates[lead] = items
        if not candidates:
            return {}
        rows = self._sop_gate_rows(candidates)
        present = {(lead_id, tt_id) for lead_id, tt_id, _state, _pass in rows}
        absent = [
            lead.id
            for lead, items in candidates.items()
            if any((lead.id, c.id) not in present for c in items)
        ]
        if absent:
            self._sop_insert(lead_ids=absent)
            self._sop_evaluate(self.env["crm.lead"].browse(absent))
            rows = self._sop_gate_rows(candidates)
        cleared = {
            (lead_id, tt_id)
            for lead_id, tt_id, state, passed in rows
            if state in ("done", "na") or passed
        }
        missing = {}
        for lead, items in candidates.items():
            undone = [c for c in items if (lead.id, c.id) not in cleared]
            if undone:
                missing[lead] = undone
        return missing

    @api.model
    def _sop_gate_rows(self, candidates):
        """(lead_id, task_template_id, state, passed) of the candidates'
        gated tasks; passed: a manager passed the gate of its SOP stage for
        that lead."""
        self.env["crm.sop.task"].flush_model(["state", "active"])
        self.env["crm.sop.gate.pass"].flush_model()
        self.env.cr.execute(
            SQL(
                """SELECT t.lead_id, t.task_template_id, t.state, p.id IS NOT NULL
                     FROM crm_sop_task t
                     JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
                     LEFT JOIN crm_sop_gate_pass p
                       ON p.lead_id = t.lead_id AND p.sop_stage_id = tt.stage_id
                    WHERE t.active AND t.lead_id = ANY(%s)
                      AND t.task_template_id = ANY(%s)""",
                [lead.id for lead in candidates],
                list({c.id for items in candidates.values() for c in items}),
            )
        )
        return self.env.cr.fetchall()

    @api.model
    def _sop_gate_apply(self, missing, created=False):
        """What the gates do with the open required tasks ``missing``
        {lead: [SopTaskConfig]}: refuse (block, not a manager, not won), or
        let pass, log in the chatter, record a manager's pass and tell the
        user on screen."""
        won_ids = self.env["crm.stage"]._sop_won_ids()
        can_pass = self.env.su or self.env.user.has_group(
            "sales_team.group_sale_manager"
        )
        outcome = {}  # lead: "won" | "passed" | "warned" | "refused"
        for lead, configs in missing.items():
            if lead.stage_id.id in won_ids:
                outcome[lead] = "won"
            elif not any(c.gate == "block" for c in configs):
                outcome[lead] = "warned"
            else:
                outcome[lead] = "passed" if can_pass else "refused"
        names = self.env["crm.sop.task.template"]._sop_names(
            [c.id for configs in missing.values() for c in configs]
        )
        refused = [lead for lead, how in outcome.items() if how == "refused"]
        if refused:
            raise UserError(self._sop_gate_refusal(refused, missing, names, created))
        self._sop_gate_log(missing, outcome, names, created)
        passes = [
            (lead.id, c.stage_id)
            for lead, how in outcome.items()
            if how == "passed"
            for c in missing[lead]
            if c.gate == "block"
        ]
        if passes:
            self.env["crm.sop.gate.pass"]._sop_record(passes)
        self._sop_gate_notify(missing, outcome, names)

    @api.model
    def _sop_task_label(self, names, config):
        stage_name, task_name = names[config.id]
        return self.env._("%(stage)s: %(task)s", stage=stage_name, task=task_name)

    @api.model
    def _sop_gate_refusal(self, refused, missing, names, created):
        """The message of a refused move: which deals need which tasks, and
        where to create a deal that does not exist yet."""
        lines = []
        for lead in refused[:GATE_ERROR_MAX_LEADS]:
            tasks = "\n".join(
                "  - " + self._sop_task_label(names, c)
                for c in missing[lead]
                if c.gate == "block"
            )
            lines.append(
                self.env._(
                    "“%(lead)s” needs these Sales SOP tasks done first:\n%(tasks)s",
                    lead=lead.display_name,
                    tasks=tasks,
                )
            )
        if len(refused) > GATE_ERROR_MAX_LEADS:
            lines.append(
                self.env._(
                    "... and %(count)s more opportunities.",
                    count=len(refused) - GATE_ERROR_MAX_LEADS,
                )
            )
        lead = refused[0]
        if created:
            # quick create in a later column: the deal does not exist yet
            first = self.env["crm.stage"].browse(
                min(
                    (c.crm_stage_id for c in missing[lead] if c.gate == "block"),
                    key=self.env["crm.stage"]._sop_orders().get,
                )
            )
            return self.env._(
                "You cannot create an opportunity in “%(stage)s” yet: create it "
                "in “%(first)s”, then do its Sales SOP tasks there.\n\n%(details)s",
                stage=lead.stage_id.display_name,
                first=first.display_name,
                details="\n\n".join(lines),
            )
        return self.env._(
            "You cannot move to “%(stage)s” yet.\n\n%(details)s",
            stage=lead.stage_id.display_name,
            details="\n\n".join(lines),
        )

    @api.model
    def _sop_gate_log(self, missing, outcome, names, created):
        """One note per deal in its chatter, in one batch."""
        intros = (
            {
                "won": self.env._(
                    "Won in “%(stage)s” with open required Sales SOP tasks:"
                ),
                "passed": self.env._(
                    "Created in “%(stage)s” past a blocking Sales SOP gate by "
                    "%(user)s; open required tasks:"
                ),
                "warned": self.env._(
                    "Created in “%(stage)s” with open required Sales SOP tasks:"
                ),
            }
            if created
            else {
                "won": self.env._(
                    "Won in “%(stage)s” with open required Sales SOP tasks:"
                ),
                "passed": self.env._(
                    "Moved to “%(stage)s” past a blocking Sales SOP gate by "
                    "%(user)s; open required tasks:"
                ),
                "warned": self.env._(
                    "Moved to “%(stage)s” with open required Sales SOP tasks:"
                ),
            }
        )
        bodies = {}
        for lead, configs in missing.items():
            intro = intros[outcome[lead]] % {
                "stage": lead.stage_id.display_name,
                "user": self.env.user.name,
            }
            bodies[lead.id] = Markup("<p>%s</p><ul>%s</ul>") % (
                intro,
                Markup().join(
                    Markup("<li>%s</li>") % self._sop_task_label(names, c)
                    for c in configs
                ),
            )
        self.env["crm.lead"].browse(list(bodies))._message_log_batch(bodies)

    @api.model
    def _sop_gate_notify(self, missing, outcome, names):
        """Tell the user on screen: a manager that they passed a block, a rep
        which required tasks a warn gate (or a won deal) left open."""
        if self.env.su:
            return
        passed = [lead for lead, how in outcome.items() if how == "passed"]
        if passed:
            self.env.user._bus_send(
                "simple_notification",
                {
                    "type": "warning",
                    "title": self.env._("Sales SOP gate passed"),
                    "message": self.env._(
                        "%(leads)s passed a blocking Sales SOP gate with open "
                        "required tasks; it is logged in the chatter.",
                        leads=", ".join(f"“{lead.display_name}”" for lead in passed),
                    ),
                },
            )
        for lead, how in outcome.items():
            if how not in ("warned", "won"):
                continue
            self.env.user._bus_send(
                "simple_notification",
                {
                    "type": "warning",
                    "sticky": True,
                    "title": self.env._("Sales SOP: required tasks left open"),
                    "message": self.env._(
                        "“%(lead)s” moved to “%(stage)s” with these required "
                        "tasks open: %(tasks)s.",
                        lead=lead.display_name,
                        stage=lead.stage_id.display_name,
                        tasks="; ".join(
                            self._sop_task_label(names, c) for c in missing[lead]
                        ),
                    ),
                },
            )

    # ------------------------------------------------------------
    # STALLED DEALS: an open opportunity whose SOP has not moved forward
    # (``crm.lead.sop_stage_date``, set by the summary update) for the
    # ``stall_days`` of its SOP stage, counted in working days of its
    # company's calendar, is flagged ``sop_stalled``. Moving it forward
    # clears the flag (``_sop_update_summary``); this pass, run by the
    # reminder cron, sets it.
    # ------------------------------------------------------------

    @api.model
    def _sop_flag_stalled(self, now=None):
        """Flag the stalled opportunities and clear the flag of those that no
        longer are (closed, stage without stall days, calendar changed), in
        one pass: one SELECT of the candidates, the working days of each
        company calendar once, two UPDATEs. Returns the ids now stalled.

        Each company is counted in a savepoint: a company whose calendar
        cannot be read (a time zone the server does not know, ...) is logged
        and skipped, its deals keep their flag, the other companies' deals
        are flagged. Stall days past the bound (a database that held them
        before it existed) never overflow: the candidates are read on at
        most the bound, the exact count still compares with the stage's days.

        A deal is stalled once ``stall_days`` whole working days have passed
        between the day its SOP last moved and today (both in the calendar's
        time zone): moved on a Monday with 2 stall days, it is stalled from
        Thursday on (Tuesday and Wednesday passed)."""
        now = now or self.env.cr.now()
        by_company = self._sop_stall_candidates(now)
        stalled, skipped = self._sop_stalled_by_company(by_company, now)
        self._sop_write_stalled(stalled, keep=skipped)
        return stalled

    @api.model
    def _sop_stall_candidates(self, now):
        """{company id: [(lead id, SOP stage date, stall days)]} of the open
        deals that may be stalled at ``now``: calendar days bound working
        days from above, so only leads still for ``stall_days`` calendar days
        (one more for time zones) can be; one SELECT."""
        self.env["crm.lead"].flush_model(
            [
                "sop_stage_id",
                "sop_stage_date",
                "sop_stalled",
                "sop_next_task_id",
                "active",
                "probability",
                "company_id",
            ]
        )
        self.env["crm.sop.stage"].flush_model(["stall_days"])
        self.env.cr.execute(
            SQL(
                """SELECT l.id, l.company_id, l.sop_stage_date, s.stall_days
                     FROM crm_lead l
                     JOIN crm_sop_stage s ON s.id = l.sop_stage_id
                    WHERE %s
                      AND l.sop_next_task_id IS NOT NULL
                      AND s.stall_days > 0
                      AND l.sop_stage_date < %s - make_interval(
                              days => LEAST(s.stall_days, %s) - 1)""",
                SQL(SOP_OPEN_SQL),
                now,
                SOP_STALL_DAYS_MAX,
            )
        )
        by_company = defaultdict(list)
        for lead_id, company_id, stage_date, stall_days in self.env.cr.fetchall():
            by_company[company_id or self.env.company.id].append(
                (lead_id, stage_date, stall_days)
            )
        return by_company

    @api.model
    def _sop_stalled_by_company(self, by_company, now):
        """(ids stalled, ids skipped) of the candidates, each company counted
        on its calendar in a savepoint: a company that fails is logged, its
        deals skipped (they keep their flag), the others go on."""
        stalled, skipped = [], []
        companies = self.env["res.company"].browse(list(by_company))
        companies.fetch(["name", "resource_calendar_id"])
        for company in companies:
            rows = by_company[company.id]
            try:
                # no write inside: nothing to flush, only the reads to undo
                with self.env.cr.savepoint(flush=False):
                    stalled += self._sop_stalled_of_company(company, rows, now)
            except psycopg2.OperationalError:
                raise  # the server or the connection failed, not the company
            except Exception:
                _logger.exception(
                    "Sales SOP: stalled deals of company %s (id %s) not "
                    "counted, its %s deals keep their flag; other companies "
                    "go on",
                    company.name,
                    company.id,
                    len(rows),
                )
                skipped += [lead_id for lead_id, _date, _days in rows]
        return stalled, skipped

    @api.model
    def _sop_write_stalled(self, stalled, keep=()):
        """The flag set on ``stalled`` and cleared on every other deal but
        ``keep``: two UPDATEs, the cache of the deals that changed
        refreshed."""
        # a deal a rep saved after the pass began: the job answers the
        # serialization failure (crm.sop.reminder._sop_stall_pass), not
        # logged as a bad query
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead SET sop_stalled = FALSE
                    WHERE sop_stalled AND NOT id = ANY(%s) RETURNING id""",
                list(stalled) + list(keep),
            ),
            log_exceptions=False,
        )
        cleared = [row[0] for row in self.env.cr.fetchall()]
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead SET sop_stalled = TRUE
                    WHERE id = ANY(%s) AND sop_stalled IS NOT TRUE RETURNING id""",
                list(stalled),
            ),
            log_exceptions=False,
        )
        flagged = [row[0] for row in self.env.cr.fetchall()]
        if cleared or flagged:
            _logger.info(
                "Sales SOP: %s opportunities stalled (%s newly), %s cleared",
                len(stalled),
                len(flagged),
                len(cleared),
            )
            self._sop_leads_written(
                self.env["crm.lead"].browse(cleared + flagged), ["sop_stalled"]
            )

    @api.model
    def _sop_stalled_of_company(self, company, rows, now):
        """Ids of the deals of ``company`` stalled at ``now``, of ``rows``
        [(lead id, SOP stage date, stall days)]: one read of its calendar."""
        calendar = company.resource_calendar_id
        if not calendar:
            return []  # no working days to count
        work_days = self._sop_work_days(
            calendar,
            company,
            min(stage_date for _id, stage_date, _days in rows),
            max(days for _id, _date, days in rows),
            now,
        )
        tz = pytz.timezone(calendar.tz or "UTC")
        today = pytz.utc.localize(now).astimezone(tz).date()
        today_index = bisect.bisect_left(work_days, today)
        stalled = []
        for lead_id, stage_date, stall_days in rows:
            moved_day = pytz.utc.localize(stage_date).astimezone(tz).date()
            passed = today_index - bisect.bisect_right(work_days, moved_day)
            if passed >= stall_days:
                stalled.append(lead_id)
        return stalled

    @api.model
    def _sop_work_days(self, calendar, company, since, max_stall_days, now):
        """The sorted working days of ``calendar`` (its attendances less the
        company's public holidays) from the day after ``since`` to today
        excluded, in the calendar's time zone, reading back at most
        ``max_stall_days`` weeks (bounded) and a month."""
        tz = pytz.timezone(calendar.tz or "UTC")
        today = pytz.utc.localize(now).astimezone(tz).date()
        window_start = today - timedelta(
            weeks=min(max_stall_days, SOP_STALL_DAYS_MAX) * STALL_WINDOW_WEEKS_PER_DAY,
            days=STALL_WINDOW_MARGIN_DAYS,
        )
        start_day = max(
            pytz.utc.localize(since).astimezone(tz).date() + timedelta(days=1),
            window_start,
        )
        if start_day >= today:
            return []
        days = self._sop_calendar_days(
            calendar.id,
            company.id,
            window_start,
            today,
            self._sop_calendar_stamp(calendar.id),
        )
        return list(days[bisect.bisect_left(days, start_day) :])

    @api.model
    def _sop_calendar_stamp(self, calendar_id):
        """What the working days of a calendar depend on, in one query: the
        calendar, its attendances and the leaves (public holidays), each as
        (rows, highest id, last write): any change to them changes it (ids
        are never given twice, even after a rollback)."""
        for model in ("resource.calendar", "resource.calendar.attendance"):
            self.env[model].flush_model()
        self.env["resource.calendar.leaves"].flush_model()
        self.env.cr.execute(
            SQL(
                """SELECT c.write_date, c.tz,
                          (SELECT ARRAY[count(*)::text, max(id)::text,
                                        max(write_date)::text]
                             FROM resource_calendar_attendance
                            WHERE calendar_id = c.id),
                          (SELECT ARRAY[count(*)::text, max(id)::text,
                                        max(write_date)::text]
                             FROM resource_calendar_leaves)
                     FROM resource_calendar c WHERE c.id = %s""",
                calendar_id,
            )
        )
        return tuple(
            tuple(value) if isinstance(value, list) else value
            for value in self.env.cr.fetchone() or ()
        )

    @api.model
    @tools.ormcache("calendar_id", "company_id", "start_day", "today", "stamp")
    def _sop_calendar_days(self, calendar_id, company_id, start_day, today, stamp):
        """(sorted working days from ``start_day`` to ``today`` excluded),
        kept by each worker while ``stamp`` (``_sop_calendar_stamp``) holds:
        a year of a calendar's intervals takes ~30 ms to compute, and every
        deal form (days in the SOP stage) and stall pass reads them."""
        # sudo: the calendar and the public holidays of the company, read as
        # the engine (ids the engine chose, not typed by a user)
        calendar = self.env["resource.calendar"].sudo().browse(calendar_id)
        tz = pytz.timezone(calendar.tz or "UTC")
        intervals = calendar._work_intervals_batch(
            tz.localize(datetime.combine(start_day, time.min)),
            tz.localize(datetime.combine(today, time.min)),
            tz=tz,
            domain=[
                ("time_type", "=", "leave"),
                ("company_id", "in", [False, company_id]),
            ],
        )[False]
        return tuple(sorted({start.date() for start, _stop, _meta in intervals}))

    # ------------------------------------------------------------
    # MERGE
    # ------------------------------------------------------------

    @api.model
    def _sop_merge(self, head, tails):
        """Opportunities ``tails`` are merged into ``head``: what the system
        cannot re-derive from the merged data (tasks ticked by hand, set
        aside, scripts sent) is kept on the head; then the head is evaluated
        (the data, and the activities done, were merged before).

        A tail's task of a task template the head has is merged into the
        head's task. A tail's task with history whose task template the head
        has not (the tail followed another playbook, or held archived tasks
        of a former one) moves to the head archived, as a team change
        archives the done tasks of a former playbook: the board and the
        reports keep counting it, and it comes back if the head ever follows
        that playbook."""
        # sudo: crm lets the user merge these leads; their tasks follow them
        tasks = (
            self.env["crm.sop.task"]
            .sudo()
            .with_context(active_test=False)
            .search_fetch(
                [("lead_id", "in", (head | tails).ids)],
                [
                    "lead_id",
                    "task_template_id",
                    "state",
                    "completion",
                    "date_done",
                    "done_user_id",
                    "date_script_sent",
                    "na_reason",
                ],
            )
        )
        head_tasks = {t.task_template_id: t for t in tasks if t.lead_id == head}
        tail_tasks = defaultdict(list)
        for task in tasks:
            tail_tasks[task.lead_id].append(task)
        moved = tasks.browse()
        # the tails in merge order: the more confident one's history first
        for task in (task for tail in tails for task in tail_tasks[tail]):
            target = head_tasks.get(task.task_template_id)
            if not target:
                if task.state != "todo" or task.date_script_sent:
                    moved |= task
                    # a later tail's task of the same template merges into it
                    head_tasks[task.task_template_id] = task
                continue
            vals = {}
            if task.state == "na" and target.state == "todo":
                vals.update(state="na", na_reason=task.na_reason)
            elif (
                task.state == "done"
                and task.completion == "manual"
                and target.state == "todo"
            ):
                vals.update(
                    state="done",
                    completion="manual",
                    date_done=task.date_done,
                    done_user_id=task.done_user_id.id,
                )
            if task.date_script_sent and (
                not target.date_script_sent
                or task.date_script_sent < target.date_script_sent
            ):
                vals["date_script_sent"] = task.date_script_sent
            if vals:
                # at most a few tasks: merges take up to five opportunities
                target.write(vals)
        if moved:
            # one UPDATE; the evaluation below reactivates those the head's
            # own playbook has (its missing tasks are inserted over them)
            moved.write({"lead_id": head.id, "active": False})
            self.env["crm.lead"].invalidate_model(["sop_task_ids"])
        self._sop_evaluate(head)

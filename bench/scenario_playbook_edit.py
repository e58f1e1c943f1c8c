"""Scenario ``playbook-edit``: a sales manager edits the live playbook of N
open opportunities.

- adds a task to it (a fields task, done on the deals whose data already
  holds it): the manager's save, which evaluates the newest deals and
  queues the others, then the setup job that evaluates the queue; against
  the same save evaluating every deal itself (the engine before the queue:
  ``SOP_EVALUATE_INLINE`` raised above every deal);
- archives it (the team's deals lose it): the manager's save, which
  re-maps the newest deals, then the setup job that re-maps the others;
  against the same save re-mapping every deal (``SOP_SETUP_INLINE`` raised
  above every deal);
- archives a task of it, the first step of every deal: the manager's save,
  which locks the deals that lose it first (``_sop_prune_held``), then the
  setup job that evaluates the deals beyond the newest; against the same
  save without that lock;
- saves it with its SOP stages in reverse order (the playbook's form writes
  each stage line): their deals evaluated once after the save
  (``_sop_evaluate_once``), against once per stage line."""

import contextlib
from unittest.mock import patch

from fixture import DEFAULT_PLAYBOOK, Fixture, insert_leads, run_setup_job, set_mode
from harness import log, measure, rolled_back, transaction

from odoo.tools import SQL

NAME = "playbook-edit"
# the task added: done where the deal has a source (every other deal)
TASK_FIELD = "source_id"
# the engine before the queue: every deal of the playbook in the save
EVERY_DEAL = 10**9


def add_arguments(parser):
    parser.add_argument(
        "--playbook-edit-leads",
        type=int,
        default=20_000,
        metavar="N",
        help="playbook-edit: open opportunities of the playbook",
    )


def check_args(args):
    return "counts must be positive" if args.playbook_edit_leads < 1 else None


def run(registry, args):
    """N open opportunities inserted in SQL and set up by the engine (not
    timed), in a transaction rolled back afterwards; then, each in a
    savepoint undone afterwards: the task added as the addon does it (the
    save, then the job), and as it did before the queue (the save alone)."""
    from odoo.addons.crm_sales_sop.models import crm_sop_engine

    count = args.playbook_edit_leads
    with transaction(registry) as env:
        fixture = Fixture(env)
        set_mode(env, "sop")
        first_id = insert_leads(
            env,
            count,
            "Bench Playbook Edit",
            team=fixture.team,
            user=fixture.manager | fixture.salesman,
            partners=fixture.partners,
            source=fixture.source,
            stages=env["crm.stage"].search([("is_won", "=", False)]),
        )
        env.cr.execute(
            SQL("SELECT id FROM crm_lead WHERE id >= %s ORDER BY id DESC", first_id)
        )
        env["crm.sop.engine"]._sop_setup([row[0] for row in env.cr.fetchall()])
        env.cr.execute("ANALYZE crm_lead")
        env.cr.execute("ANALYZE crm_sop_task")
        manager = fixture.manager
        values = {
            "name": "Bench: where the deal comes from",
            "stage_id": env.ref(DEFAULT_PLAYBOOK).stage_ids.sorted("sequence")[0].id,
            "kind": "fields",
            "field_ids": [
                (6, 0, env["ir.model.fields"]._get("crm.lead", TASK_FIELD).ids)
            ],
        }
        TaskTemplate = env["crm.sop.task.template"].with_user(manager)
        result = {"leads": count}
        with rolled_back(env, clear_caches=True):
            added = []
            result |= edit_then_job(
                env,
                "save",
                lambda: added.append(TaskTemplate.create(values)),
                queue_size,
            )
            result["done"] = done_count(env, added[0], first_id)
        with (
            rolled_back(env, clear_caches=True),
            patch.object(crm_sop_engine, "SOP_EVALUATE_INLINE", EVERY_DEAL),
        ):
            added = []
            result |= sample_of(
                "inline",
                measure(env, lambda: added.append(TaskTemplate.create(values))),
            )
            result["inline_done"] = done_count(env, added[0], first_id)
        playbook = env.ref(DEFAULT_PLAYBOOK).with_user(manager)
        with rolled_back(env, clear_caches=True):
            result |= edit_then_job(
                env,
                "archive",
                playbook.action_archive,
                lambda env: mapped_count(env, first_id, playbook),
            )
        with (
            rolled_back(env, clear_caches=True),
            patch.object(crm_sop_engine, "SOP_SETUP_INLINE", EVERY_DEAL),
        ):
            result |= sample_of("archive_inline", measure(env, playbook.action_archive))
            result["archive_inline_left"] = mapped_count(env, first_id, playbook)
        first_task = (
            env.ref(DEFAULT_PLAYBOOK)
            .stage_ids.sorted("sequence")[0]
            .task_template_ids.sorted("sequence")[0]
            .with_user(manager)
        )
        result["first_task_next"] = next_step_count(env, first_task, first_id)
        result["setup_inline"] = crm_sop_engine.SOP_SETUP_INLINE
        with rolled_back(env, clear_caches=True):
            result |= edit_then_job(
                env,
                "task_archived",
                lambda: first_task.write({"active": False}),
                lambda env: (
                    queue_size(env),
                    held_count(env, first_task, first_id),
                ),
            )
        # as before 0880782: the task taken from every deal in the save
        with (
            rolled_back(env, clear_caches=True),
            patch.object(crm_sop_engine, "SOP_SETUP_INLINE", EVERY_DEAL),
        ):
            result |= sample_of(
                "task_archived_every",
                measure(env, lambda: first_task.write({"active": False})),
            )
            result["task_archived_every_kept"] = held_count(env, first_task, first_id)
        stages = env.ref(DEFAULT_PLAYBOOK).stage_ids.sorted("sequence")
        reordered = {
            "stage_ids": [
                (1, stage.id, {"sequence": 100 - index})
                for index, stage in enumerate(stages)
            ]
        }
        result["reordered_stages"] = len(stages)
        with rolled_back(env, clear_caches=True):
            result |= sample_of(
                "reordered", measure(env, lambda: playbook.write(reordered))
            )
        with (
            rolled_back(env, clear_caches=True),
            patch.object(
                type(env["crm.sop.engine"]),
                "_sop_evaluate_once",
                lambda self: contextlib.nullcontext(),
            ),
        ):
            result |= sample_of(
                "reordered_per_line", measure(env, lambda: playbook.write(reordered))
            )
    log(
        f"  task added over {count:,} deals: the save {result['save_seconds']:.2f} s "
        f"({result['save_left']:,} queued), the job "
        f"{result['save_job_seconds']:.1f} s; "
        f"every deal in the save {result['inline_seconds']:.2f} s"
    )
    return result


def edit_then_job(env, prefix, edit, left):
    """The manager's ``edit`` measured, then the setup job run as Odoo's
    cron runner calls it, measured: ``{prefix}_seconds``, ``_queries``
    (the edit), ``_left`` (``left(env)`` after it), ``_job_seconds``,
    ``_job_batches``, ``_left_after_job`` (``left(env)`` after the job)."""
    result = sample_of(prefix, measure(env, edit))
    result[f"{prefix}_left"] = left(env)
    batches = []
    job = measure(env, lambda: run_setup_job(env, batches))
    result[f"{prefix}_job_seconds"] = job.seconds
    result[f"{prefix}_job_batches"] = len(batches)
    result[f"{prefix}_left_after_job"] = left(env)
    return result


def sample_of(prefix, sample):
    """A Sample's seconds and queries, named ``{prefix}_seconds`` and
    ``{prefix}_queries``."""
    return {f"{prefix}_seconds": sample.seconds, f"{prefix}_queries": sample.queries}


def mapped_count(env, first_id, playbook):
    """The scenario's deals still mapped to ``playbook``."""
    env.flush_all()
    env.cr.execute(
        SQL(
            "SELECT COUNT(*) FROM crm_lead WHERE id >= %s AND sop_template_id = %s",
            first_id,
            playbook.id,
        )
    )
    return env.cr.fetchone()[0]


def next_step_count(env, task_template, first_id):
    """The scenario's deals whose next step is a task of ``task_template``."""
    env.flush_all()
    env.cr.execute(
        SQL(
            """SELECT COUNT(*) FROM crm_lead l JOIN crm_sop_task t
                   ON t.id = l.sop_next_task_id
                WHERE l.id >= %s AND t.task_template_id = %s""",
            first_id,
            task_template.id,
        )
    )
    return env.cr.fetchone()[0]


def held_count(env, task_template, first_id):
    """The scenario's deals still holding an active task of
    ``task_template`` (0 once pruned)."""
    env.flush_all()
    env.cr.execute(
        SQL(
            """SELECT COUNT(DISTINCT lead_id) FROM crm_sop_task
                WHERE task_template_id = %s AND lead_id >= %s AND active""",
            task_template.id,
            first_id,
        )
    )
    return env.cr.fetchone()[0]


def queue_size(env):
    env.flush_all()
    env.cr.execute("SELECT COUNT(*) FROM crm_sop_evaluation_queue")
    return env.cr.fetchone()[0]


def done_count(env, task_template, first_id):
    env.flush_all()
    env.cr.execute(
        SQL(
            """SELECT COUNT(*) FROM crm_sop_task
                WHERE task_template_id = %s AND lead_id >= %s AND state = 'done'""",
            task_template.id,
            first_id,
        )
    )
    return env.cr.fetchone()[0]


def report_rows(result):
    """(scenario, core, SOP, ratio / extra, target / note) rows: the save
    as before the queue in the core column, as now in the SOP column."""
    leads = f"{result['leads']:,}"
    return [
        (
            f"task added over {leads} deals (the manager's save)",
            f"{result['inline_seconds']:.2f} s",
            f"{result['save_seconds']:.2f} s",
            f"{result['save_seconds'] / result['inline_seconds']:.2f}x",
            f"core column: every deal evaluated in the save ({result['inline_queries']}"
            f" queries), SOP: {result['save_left']:,} queued ({result['save_queries']}"
            " queries)",
        ),
        (
            f"task added over {leads} deals (the setup job)",
            "",
            f"{result['save_job_seconds']:.1f} s",
            "",
            f"{result['save_job_batches']} batches, "
            f"{result['save_left_after_job']} left queued;"
            f" tasks done {result['done']:,} (in the save alone: "
            f"{result['inline_done']:,})",
        ),
        (
            f"playbook archived over {leads} deals (the manager's save)",
            f"{result['archive_inline_seconds']:.2f} s",
            f"{result['archive_seconds']:.2f} s",
            f"{result['archive_seconds'] / result['archive_inline_seconds']:.2f}x",
            "core column: every deal re-mapped in the save "
            f"({result['archive_inline_queries']} queries, "
            f"{result['archive_inline_left']} left), SOP: "
            f"{result['archive_left']:,} left to the job "
            f"({result['archive_queries']} queries)",
        ),
        (
            f"playbook archived over {leads} deals (the setup job)",
            "",
            f"{result['archive_job_seconds']:.1f} s",
            "",
            f"{result['archive_job_batches']} batches, "
            f"{result['archive_left_after_job']} left mapped",
        ),
        (
            f"task archived over {leads} deals (the manager's save)",
            f"{result['task_archived_every_seconds']:.2f} s",
            f"{result['task_archived_seconds']:.2f} s",
            f"{result['task_archived_seconds'] / result['task_archived_every_seconds']:.2f}x",
            "core column: taken from every deal in the save "
            f"({result['task_archived_every_queries']} queries, "
            f"{result['task_archived_every_kept']} left holding it), SOP: "
            f"from the newest {result['setup_inline']:,} "
            f"({result['task_archived_queries']} queries, "
            f"{result['task_archived_left'][1]:,} left holding it); "
            f"the next step of {result['first_task_next']:,} deals",
        ),
        (
            f"task archived over {leads} deals (the setup job)",
            "",
            f"{result['task_archived_job_seconds']:.1f} s",
            "",
            f"{result['task_archived_job_batches']} batches for "
            f"{result['task_archived_left'][0]:,} queued; after it "
            f"{result['task_archived_left_after_job'][0]} queued, "
            f"{result['task_archived_left_after_job'][1]} holding the task",
        ),
        (
            f"{result['reordered_stages']} SOP stages reordered over {leads} deals"
            " (the manager's save)",
            f"{result['reordered_per_line_seconds']:.2f} s",
            f"{result['reordered_seconds']:.2f} s",
            f"{result['reordered_seconds'] / result['reordered_per_line_seconds']:.2f}x",
            "core column: the deals evaluated per stage line "
            f"({result['reordered_per_line_queries']} queries), SOP: once after "
            f"the save ({result['reordered_queries']} queries)",
        ),
    ]

"""Scenario ``install``: the addon's post_init_hook on N open opportunities
committed beforehand in SQL (as they exist before the install), against
PostgreSQL alone inserting the same task rows."""

import resource
import time

from fixture import DEFAULT_PLAYBOOK, Fixture, insert_leads, run_setup_job, set_mode
from harness import log, measure, transaction, vacuum

from odoo import SUPERUSER_ID, api
from odoo.tools import SQL

NAME = "install"


def add_arguments(parser):
    parser.add_argument(
        "--leads-100k",
        type=int,
        default=100_000,
        metavar="N",
        help="opportunities of the install scenario",
    )


def check_args(args):
    return "counts must be positive" if args.leads_100k < 1 else None


def run(registry, args):
    """The post_init_hook on N open opportunities committed beforehand
    without playbook nor task (as they exist before an install), in a
    transaction rolled back afterwards, then the setup job it triggers run
    as Odoo's cron runs it, batch after batch, until no deal waits; then
    PostgreSQL alone inserting the same task rows in one INSERT ... SELECT,
    with the table's indexes and foreign keys (the database's own speed);
    then the opportunities go."""
    from odoo.addons.crm_sales_sop import _crm_sop_post_init

    first_id = commit_leads(registry, args.leads_100k)
    try:
        with transaction(registry) as env:
            fixture = Fixture(env)
            set_mode(env, "sop")
            before_install(env)
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            sample = measure(env, lambda: _crm_sop_post_init(env))
            inline = leads_set_up(env, first_id)
            batches = []
            job = measure(env, lambda: run_setup_job(env, batches))
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            del fixture
            env.cr.execute(
                SQL(
                    """SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'done'),
                              COUNT(DISTINCT lead_id)
                         FROM crm_sop_task WHERE lead_id >= %s""",
                    first_id,
                )
            )
            tasks, done, leads_with_tasks = env.cr.fetchone()
            env.cr.execute(
                SQL(
                    """SELECT COUNT(*) FILTER (WHERE sop_template_id IS NOT NULL),
                              COUNT(*) FILTER (WHERE sop_next_task_id IS NOT NULL),
                              ROUND(AVG(sop_progress), 1)
                         FROM crm_lead WHERE id >= %s""",
                    first_id,
                )
            )
            mapped, with_next, progress = env.cr.fetchone()
        with transaction(registry) as env:
            baseline = measure(env, lambda: insert_tasks_alone(env, first_id))
    finally:
        remove_leads(registry, first_id)
    log(
        f"  post_init_hook: {sample.seconds:.1f} s ({sample.sql_seconds:.1f} s in "
        f"SQL), {sample.queries} q, {inline:,} deals set up; the setup job: "
        f"{job.seconds:.1f} s in {len(batches)} batches (longest "
        f"{max(batches, default=0):.1f} s), {tasks:,} tasks in all; PostgreSQL "
        f"alone inserting them: {baseline.seconds:.1f} s"
    )
    return {
        "leads": args.leads_100k,
        "seconds": sample.seconds,
        "sql_seconds": sample.sql_seconds,
        "queries": sample.queries,
        "leads_set_up_by_install": inline,
        "job_seconds": job.seconds,
        "job_sql_seconds": job.sql_seconds,
        "job_batches": len(batches),
        "job_longest_batch_seconds": max(batches, default=0),
        "postgresql_alone_seconds": baseline.seconds,
        "tasks": tasks,
        "tasks_completed": done,
        "leads_with_tasks": leads_with_tasks,
        "leads_with_playbook": mapped,
        "leads_with_next_step": with_next,
        "average_progress": float(progress or 0),
        # ru_maxrss is in KiB on Linux; 0 when the peak was reached earlier
        "peak_rss_growth_mib": round(max(rss_after - rss_before, 0) / 1024, 1),
    }


def before_install(env):
    """Every opportunity of the database as before the install, in the
    scenario's transaction: no SOP row at all (the background's closed deals
    lose theirs too: an install never finds any, and re-counting them cost
    the hook 4 s that no user meets); the configuration stays."""
    env.flush_all()
    env.cr.execute(
        """UPDATE crm_lead SET sop_template_id = NULL, sop_stage_id = NULL,
                  sop_next_task_id = NULL, sop_progress = NULL
            WHERE sop_template_id IS NOT NULL OR sop_next_task_id IS NOT NULL
               OR sop_stage_id IS NOT NULL"""
    )
    for table in (
        "crm_sop_task_fact",
        "crm_sop_script_fact",
        "crm_sop_history_count",
        "crm_sop_stage_log",
        "crm_sop_stage_move",
        "crm_sop_gate_pass",
        "crm_sop_script_send",
        "crm_sop_activity_done",
        "crm_sop_task",
    ):
        env.cr.execute(SQL("DELETE FROM %s", SQL.identifier(table)))
    env.invalidate_all()
    env.cr.execute("ANALYZE crm_lead")


def leads_set_up(env, first_id):
    env.cr.execute(
        SQL(
            "SELECT COUNT(*) FROM crm_lead WHERE id >= %s AND sop_template_id IS NOT NULL",
            first_id,
        )
    )
    return env.cr.fetchone()[0]


def commit_leads(registry, count):
    """``count`` open opportunities committed without playbook nor task, as
    they exist before the install; their statistics analyzed. Returns the
    first id."""
    started = time.perf_counter()
    with registry.cursor() as cr:  # committed
        env = api.Environment(cr, SUPERUSER_ID, {})
        first_id = insert_leads(
            env,
            count,
            "Bench Install",
            team=env.ref("sales_team.team_sales_department"),
            user=env.ref("base.user_admin"),
            partners=env["res.partner"].search([], limit=1000, order="id"),
            source=env["utm.source"].search([], limit=1, order="id"),
            stages=env["crm.stage"].search([("is_won", "=", False)]),
        )
    vacuum(registry.db_name)
    log(f"  committed {count:,} opportunities in {time.perf_counter() - started:.1f} s")
    return first_id


def remove_leads(registry, first_id):
    with registry.cursor() as cr:  # committed
        cr.execute(SQL("DELETE FROM crm_lead WHERE id >= %s", first_id))
    vacuum(registry.db_name)


def insert_tasks_alone(env, first_id):
    """The same rows the hook inserts, by PostgreSQL alone: one INSERT ...
    SELECT into crm_sop_task with its indexes and foreign keys."""
    playbook = env.ref(DEFAULT_PLAYBOOK)
    env.cr.execute(
        SQL(
            """INSERT INTO crm_sop_task (lead_id, task_template_id, state, active)
               SELECT l.id, tt.id, 'todo', TRUE
                 FROM crm_lead l
                 JOIN crm_sop_task_template tt ON tt.template_id = %s AND tt.active
                WHERE l.id >= %s""",
            playbook.id,
            first_id,
        )
    )


def report_rows(install):
    """(scenario, core, SOP, ratio / extra, target / note) rows: the hook
    (what the install waits for), then the job it leaves, against PostgreSQL
    alone inserting the same task rows."""
    alone = install.get("postgresql_alone_seconds")
    job = install.get("job_seconds", 0)
    return [
        (
            f"install {install['leads']:,} leads (hook)",
            "",
            f"{install['seconds']:.1f} s",
            "",
            f"{install['leads_set_up_by_install']:,} deals set up, "
            f"{install['queries']} queries, {install['sql_seconds']:.1f} s SQL",
        ),
        (
            f"install {install['leads']:,} leads (setup job)",
            f"{alone:.1f} s" if alone else "",
            f"{job:.1f} s",
            f"{(install['seconds'] + job) / alone:.1f}x" if alone else "",
            f"{install.get('job_batches', 0)} batches (longest "
            f"{install.get('job_longest_batch_seconds', 0):.1f} s), "
            f"{install['tasks']:,} tasks in all; core column: PostgreSQL alone "
            "inserting them; ratio: hook and job",
        ),
    ]

"""Scenario ``install``: the addon's post_init_hook on N open opportunities
inserted in SQL (as if they existed before the install)."""

import resource
import time

from fixture import Fixture, insert_leads, set_mode
from harness import log, measure, transaction

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
    """The post_init_hook on N open opportunities inserted in SQL (as if they
    existed before the install), in a transaction rolled back afterwards."""
    from odoo.addons.crm_sales_sop import _crm_sop_post_init

    with transaction(registry) as env:
        fixture = Fixture(env)
        set_mode(env, "sop")
        started = time.perf_counter()
        first_id = insert_leads(
            env,
            args.leads_100k,
            "Bench Install",
            team=fixture.team,
            user=fixture.salesman,
            partners=fixture.partners,
            source=fixture.source,
            stages=fixture.stages,
        )
        # as before the install: no playbook, no task (the closed background
        # opportunities keep theirs: the hook only maps open ones)
        env.cr.execute(
            SQL(
                """UPDATE crm_lead SET sop_template_id = NULL, sop_progress = 0,
                          sop_stage_id = NULL, sop_next_task_id = NULL
                    WHERE id >= %s""",
                first_id,
            )
        )
        env.cr.execute(SQL("DELETE FROM crm_sop_task WHERE lead_id >= %s", first_id))
        # the planner statistics of a table that has held these rows for long
        env.cr.execute("ANALYZE crm_lead")
        log(
            f"  inserted {args.leads_100k:,} opportunities in "
            f"{time.perf_counter() - started:.1f} s"
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sample = measure(env, lambda: _crm_sop_post_init(env))
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
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
    log(
        f"  post_init_hook: {sample.seconds:.1f} s ({sample.sql_seconds:.1f} s in "
        f"SQL), {sample.queries} q, {tasks:,} tasks"
    )
    return {
        "leads": args.leads_100k,
        "seconds": sample.seconds,
        "sql_seconds": sample.sql_seconds,
        "queries": sample.queries,
        "tasks": tasks,
        "tasks_completed": done,
        "leads_with_tasks": leads_with_tasks,
        "leads_with_playbook": mapped,
        "leads_with_next_step": with_next,
        "average_progress": float(progress or 0),
        # ru_maxrss is in KiB on Linux; 0 when the peak was reached earlier
        "peak_rss_growth_mib": round(max(rss_after - rss_before, 0) / 1024, 1),
    }


def report_rows(install):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    return [
        (
            f"install {install['leads']:,} leads",
            "",
            f"{install['seconds']:.1f} s",
            f"{install['tasks']:,} tasks",
            f"{install['queries']} queries, {install['sql_seconds']:.1f} s SQL",
        )
    ]

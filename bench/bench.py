#!/usr/bin/env python3
"""Compare crm_sales_sop with core Odoo CRM.

The entry point of the bench: it prepares the bench database and runs the
scenarios, one module each (``scenario_*.py``), on the shared harness
(``harness.py``, ``fixture.py``):

1. ``create``: one ``create()`` of 100 and of 1,000 opportunities (team,
   salesperson, customer), time and queries, core vs SOP;
2. ``kanban``: ``web_search_read`` of 80 opportunities with a kanban
   specification, without and with the SOP fields;
3. ``write``: a write that completes a SOP task on 1 and on 100 opportunities,
   against a write of two fields no task watches (core's cost);
4. ``script``: one script sent in one click (email, copy) against core's post
   of the same template (``message_post_with_source``);
5. ``install``: the post_init_hook on 100,000 opportunities inserted in SQL;
6. ``reminder``: the reminder cron job over 100,000 open SOP tasks of 50
   salespersons, all due (time, queries, queries per batch, peak memory),
   then again at the same moment;
7. ``core-db`` (only when asked for): one ``create()`` of 1,000 opportunities
   on the bench database against a database with core crm alone, both in this
   process, interleaved, best of 7;
8. ``backtest`` (only when asked for): predictive lead scoring trained on a
   generated history (first 70 %) and scored on the rest, without and with
   the SOP progress band: AUC and Brier score;
9. ``uplift`` (only when asked for): ``get_sop_uplift()`` of one open deal
   read by its salesperson, over 1,000 then 10,000 closed deals of its team.

In the first five, "core" is the bench database with every Sales SOP playbook
archived (the addon's hooks then do almost nothing), "SOP" the default
playbook active (13 tasks per opportunity). The database is created when
missing (or updated), and receives once some closed opportunities with their
tasks (a database in use). Then every measurement runs in a savepoint that is
rolled back, every scenario in its own transaction that is rolled back: the
database stays reusable. Usage and figures: bench/README.md.
"""

import argparse
import sys
import time
from pathlib import Path

import harness
import scenario_backtest

# achievement board
import scenario_board  # isort: skip

# review reports
import scenario_reports  # isort: skip

# reads on a streaming replica, many reps at once
import scenario_load  # isort: skip
import scenario_replica  # isort: skip
import scenario_core_db
import scenario_create
import scenario_import
import scenario_install
import scenario_instructions
import scenario_kanban
import scenario_playbook_edit
import scenario_reminder
import scenario_script
import scenario_uplift
import scenario_write
from fixture import seed_background
from harness import RESULTS, log, names

import odoo
import odoo.release
from odoo.modules.registry import Registry
from odoo.tools import config

# every scenario, in the order they run; a new bench adds its module here
SCENARIOS = {
    module.NAME: module
    for module in (
        scenario_create,
        scenario_kanban,
        scenario_write,
        scenario_script,
        scenario_install,
        scenario_reminder,
        scenario_core_db,
        scenario_import,
        # the import counted in instructions (only when asked for)
        scenario_instructions,
        # a playbook edited over many deals (only when asked for)
        scenario_playbook_edit,
        # achievement board
        scenario_board,
        # predictive lead scoring back-test, SOP uplift (only when asked for)
        scenario_backtest,
        scenario_uplift,
        # review reports
        scenario_reports,
        # reads on a streaming replica, many reps at once (only when asked for)
        scenario_replica,
        scenario_load,
    )
}
# what runs without --only (core-db needs a second database)
DEFAULT_SCENARIOS = ["create", "kanban", "write", "script", "install", "reminder"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare crm_sales_sop with core Odoo CRM (bench/README.md)."
    )
    parser.add_argument(
        "--db", required=True, help="bench database (created when missing)"
    )
    parser.add_argument("--addons-path", required=True, help="Odoo addons path")
    parser.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="runs per figure (median)"
    )
    parser.add_argument(
        "--fast-factor",
        type=int,
        default=5,
        metavar="N",
        help="kanban and write (milliseconds each) run N times --repeat",
    )
    for module in SCENARIOS.values():
        module.add_arguments(parser)
    parser.add_argument(
        "--background",
        type=int,
        default=20_000,
        metavar="N",
        help="closed opportunities (with tasks) committed once in the database",
    )
    parser.add_argument(
        "--only",
        type=names,
        default=DEFAULT_SCENARIOS,
        metavar="NAMES",
        help=f"scenarios to run, among {','.join(SCENARIOS)} "
        f"(default: {','.join(DEFAULT_SCENARIOS)})",
    )
    parser.add_argument(
        "--no-update",
        action="store_true",
        help="use the database as it is (default: update the addon in it first)",
    )
    parser.add_argument(
        "--recreate",
        action="store_true",
        help="drop the database(s) first and install the addon in a new one",
    )
    parser.add_argument(
        "--drop-db", action="store_true", help="drop the database(s) at the end"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 if a target is missed"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, metavar="FILE", help="JSON file"
    )
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if min(args.repeat, args.fast_factor) < 1:
        parser.error("counts must be positive")
    if args.background < 0:
        parser.error("--background cannot be negative")
    for module in SCENARIOS.values():
        error = getattr(module, "check_args", lambda args: None)(args)
        if error:
            parser.error(error)
    return args


def report_rows(results):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    return [
        row
        for name, module in SCENARIOS.items()
        if results.get(name)
        for row in module.report_rows(results[name])
    ]


def missed_targets(results):
    return [row[0] for row in report_rows(results) if row[4].endswith("MISSED")]


def main(argv=None):
    args = parse_args(argv)
    if odoo.release.version_info[0] != 18:
        sys.exit(f"error: Odoo 18.0 expected, {odoo.release.version} found")
    config.parse_config(
        ["-d", args.db, "--addons-path", args.addons_path, "--log-level=warn"],
        setup_logging=True,
    )
    started, measured = time.perf_counter(), harness.revision()
    harness.prepare_database(
        args.db, args.addons_path, recreate=args.recreate, update=not args.no_update
    )
    registry = Registry(args.db)
    drift = harness.schema_drift(registry)
    if drift:
        log(
            f"warning: {args.db} has what the code no longer defines "
            f"({', '.join(drift)}): figures may differ from a fresh install, "
            "run with --recreate"
        )
    seed_background(registry, args.background)
    results = {}
    for name in args.only:
        log(f"{name}...")
        harness.vacuum(args.db)
        harness.use_registry(registry)
        results[name] = SCENARIOS[name].run(registry, args)
    harness.vacuum(args.db)
    machine = harness.machine_meta()
    meta = {
        "date": machine.pop("date"),
        "db": args.db,
        "revision": measured,
        "schema_drift": drift,
        **machine,
        "repeat": args.repeat,
        "fast_factor": args.fast_factor,
        "duration_seconds": time.perf_counter() - started,
    }
    harness.write_json(args.output, meta, results)
    harness.print_report(report_rows(results), meta, args.output)
    if args.drop_db:
        harness.drop_database(args.db)
        if "core-db" in args.only:
            harness.drop_database(scenario_core_db.core_db_name(args))
    missed = missed_targets(results)
    if missed and args.check:
        sys.exit(f"targets missed: {', '.join(missed)}")


if __name__ == "__main__":
    main()

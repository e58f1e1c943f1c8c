"""Scenario ``import``: the lightest bulk work users run, an import. The
administrator creates N opportunities in one ``create()``, unassigned (no
salesperson), each with a customer among 200, the sales team and an expected
revenue, as an import of a spreadsheet does. Core ``crm`` alone against crm
with the addon, in two pairs of databases, both registries of a pair in this
process, interleaved (A B, then B A), best of ``--rounds`` with medians:

- ``fresh``: two new databases with their demo data, as after ``make run``
  (``<db>_import_core``: crm; ``<db>_import_sop``: the addon), nothing else;
- ``in use``: the bench database (the addon, its default playbook, the
  closed background opportunities with their tasks) against the core-db
  scenario's database (crm alone, the same background).

A ratio on a heavy baseline hides a fixed cost: the extra milliseconds per
opportunity are reported beside it (medians, SOP minus core).

``--import-explain`` adds one round per addon database (not counted) that
runs each of the addon's own statements under ``EXPLAIN (ANALYZE, BUFFERS)``
(in a savepoint, then for real) and logs PostgreSQL's view of them: time,
rows, the foreign-key checks of the inserts, JIT compilation."""

import os
import re
import statistics
from contextlib import ExitStack, contextmanager

import scenario_core_db
from harness import (
    MODULE,
    alternate,
    compare,
    log,
    measure,
    module_state,
    prepare_database,
    rolled_back,
    transaction,
    use_registry,
    vacuum,
)

from odoo.modules.registry import Registry
from odoo.sql_db import Cursor

NAME = "import"
TARGET_IMPORT_RATIO = 1.10
SIDES = ("core", "sop")
CUSTOMERS = 200
# the addon's own statements (its tables, its summary), explained on request
OWN_SQL = re.compile(r"^\s*(INSERT INTO crm_sop_|UPDATE crm_sop_|WITH v\()")


def add_arguments(parser):
    group = parser.add_argument_group("import scenario")
    group.add_argument(
        "--import-size",
        type=int,
        default=1000,
        metavar="N",
        help="opportunities per create()",
    )
    group.add_argument(
        "--import-rounds", type=int, default=7, metavar="N", help="rounds per pair"
    )
    group.add_argument(
        "--import-pairs",
        default="fresh,in-use",
        metavar="NAMES",
        help="fresh (two new databases with demo data), in-use (the bench "
        "database and the core-db scenario's)",
    )
    group.add_argument(
        "--import-explain",
        action="store_true",
        help="log EXPLAIN (ANALYZE, BUFFERS) of the addon's statements",
    )


def check_args(args):
    if min(args.import_size, args.import_rounds) < 1:
        return "counts must be positive"
    if not set(args.import_pairs.split(",")) <= {"fresh", "in-use"}:
        return "--import-pairs takes fresh and/or in-use"
    return None


def fresh_registries(args):
    """Two databases with their demo data: crm alone, crm with the addon."""
    result = {}
    for side, module in (("core", "crm"), ("sop", MODULE)):
        db = f"{args.db}_import_{side}"
        prepare_database(
            db,
            args.addons_path,
            module=module,
            recreate=args.recreate,
            update=not args.no_update,
            demo=True,
        )
        if side == "core" and module_state(db) not in ("uninstalled", "uninstallable"):
            raise SystemExit(f"error: {db} must have core crm alone")
        vacuum(db)
        result[side] = Registry(db)
    return result


def import_vals(env, count, customers, team):
    return [
        {
            "name": f"Imported Opportunity {index}",
            "type": "opportunity",
            "user_id": False,
            "team_id": team.id,
            "partner_id": customers[index % len(customers)].id,
            "expected_revenue": 1000 + 37 * (index % 500),
        }
        for index in range(count)
    ]


def import_setting(env):
    """(crm.lead as the administrator, not the superuser; the 200 customers
    made; the sales team) of an import in ``env``'s database."""
    customers = env["res.partner"].create(
        [
            {"name": f"Import Customer {i}", "email": f"import{i}@example.com"}
            for i in range(CUSTOMERS)
        ]
    )
    team = env.ref("sales_team.team_sales_department")
    admin = env.ref("base.user_admin")
    user_env = env(user=admin.id, su=False, context={"lang": "en_US"})
    return user_env["crm.lead"], customers, team


@contextmanager
def import_round(registry, size):
    """One round of the import in ``registry``'s database, ready to count
    (instructions_worker.py, import_opcodes.py): in a transaction rolled
    back, the customers made, a warm-up of 5 deals, the cache cold; yields
    (crm.lead as the administrator, the values of ``size`` deals)."""
    use_registry(registry)
    with transaction(registry) as env:
        Lead, customers, team = import_setting(env)
        with rolled_back(env, clear_caches=True):
            Lead.create(import_vals(env, 5, customers, team))
            vals = import_vals(env, size, customers, team)
            env.flush_all()
            env.invalidate_all()
            yield Lead, vals


@contextmanager
def explained(pattern=OWN_SQL):
    """Run the statements matching ``pattern`` under EXPLAIN ANALYZE first
    (in a savepoint, rolled back), log the plans, then run them for real."""
    original = Cursor.execute

    def execute(cr, query, params=None, log_exceptions=True):
        code = query.code if hasattr(query, "code") else query
        if isinstance(code, str) and pattern.match(code):
            args = params if params is not None else getattr(query, "params", None)
            original(cr, "SAVEPOINT bench_explain")
            original(cr, "EXPLAIN (ANALYZE, BUFFERS) " + code, args)
            plan = [row[0] for row in cr.fetchall()]
            original(cr, "ROLLBACK TO SAVEPOINT bench_explain")
            log(f"  EXPLAIN {' '.join(code.split())[:90]}")
            for line in plan:
                if os.environ.get("FULLPLAN") or not re.match(
                    r"\s+(->|Buffers|Hash|Filter|Index|Recheck|Sort)", line
                ):
                    log(f"    {line}")
        return original(cr, query, params, log_exceptions)

    Cursor.execute = execute
    try:
        yield
    finally:
        Cursor.execute = original


def run_pair(pair, registries, args):
    size = args.import_size
    samples = {side: [] for side in SIDES}
    # (Python, PostgreSQL backend) CPU seconds: what each side asked of the
    # machine, whatever else it ran meanwhile
    cpu = {side: [] for side in SIDES}
    with ExitStack() as stack:
        envs = {}
        for side in SIDES:
            use_registry(registries[side])
            env = stack.enter_context(transaction(registries[side]))
            Lead, customers, team = import_setting(env)
            env.cr.flush()
            envs[side] = (env, Lead.env, customers, team)
        for number, order in enumerate(alternate(args.import_rounds, *SIDES), 1):
            for side in order:
                env, user_env, customers, team = envs[side]
                use_registry(registries[side])
                Lead = user_env["crm.lead"]
                with rolled_back(env, clear_caches=True):
                    env.invalidate_all()
                    Lead.create(import_vals(env, 5, customers, team))  # warm-up
                    vals = import_vals(env, size, customers, team)
                    sample = measure(
                        env, lambda L=Lead, v=vals: L.create(v), cpu=cpu[side]
                    )
                samples[side].append(sample)
                log(
                    f"  {pair} round {number} {side:4} ({registries[side].db_name}): "
                    f"{sample.seconds:6.2f} s, SQL {sample.sql_seconds:5.2f} s, "
                    f"{sample.queries} q, CPU {cpu[side][-1][0]:5.2f} + "
                    f"{cpu[side][-1][1]:5.2f} s (PG)"
                )
        if args.import_explain:
            env, user_env, customers, team = envs["sop"]
            use_registry(registries["sop"])
            log(f"  {pair}: the addon's statements, as PostgreSQL ran them")
            with rolled_back(env, clear_caches=True), explained():
                user_env["crm.lead"].create(import_vals(env, size, customers, team))
                env.cr.flush()
    result = {
        "size": size,
        "databases": {side: registries[side].db_name for side in SIDES},
        **compare(samples, *SIDES, best=True),
    }
    core, sop = result["core"], result["sop"]
    result["cpu"] = {side: scenario_core_db.cpu_summary(cpu[side]) for side in SIDES}
    cpu_core, cpu_sop = result["cpu"]["core"], result["cpu"]["sop"]
    result["extra_cpu_ms_per_deal"] = {
        part: {
            stat: 1000 * (cpu_sop[part][stat] - cpu_core[part][stat]) / size
            for stat in ("median", "best")
        }
        for part in ("total", "python", "postgresql")
    }
    result["extra_ms_per_deal"] = {
        "median": 1000 * (sop["seconds"] - core["seconds"]) / size,
        "best": 1000 * (sop["best"]["seconds"] - core["best"]["seconds"]) / size,
        "sql_median": 1000 * (sop["sql_seconds"] - core["sql_seconds"]) / size,
    }
    result["ratio_samples"] = [
        round(s["seconds"] / c["seconds"], 3)
        for c, s in zip(core["samples"], sop["samples"], strict=True)
    ]
    result["ratio_pair_median"] = statistics.median(result["ratio_samples"])
    return result


def run(registry, args):
    results = {}
    for pair in args.import_pairs.split(","):
        if pair == "fresh":
            registries = fresh_registries(args)
        else:
            registries = {
                "core": scenario_core_db.prepare_core_db(args),
                "sop": registry,
            }
        log(f"import, {pair}: {args.import_size} opportunities per create()")
        results[pair] = run_pair(pair, registries, args)
    return results


def report_rows(results):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    rows = []
    for pair, r in results.items():
        core, sop, extra = r["core"], r["sop"], r["extra_ms_per_deal"]
        label = f"import {r['size']} {pair}"
        rows += [
            (
                f"{label} (best s)",
                f"{core['best']['seconds']:.2f}",
                f"{sop['best']['seconds']:.2f}",
                f"{r['best_time_ratio']:.2f}x",
                f"target <= {TARGET_IMPORT_RATIO:.2f}x "
                f"({'met' if r['best_time_ratio'] <= TARGET_IMPORT_RATIO else 'MISSED'})",
            ),
            (
                f"{label} (median s)",
                f"{core['seconds']:.2f}",
                f"{sop['seconds']:.2f}",
                f"{r['time_ratio']:.2f}x",
                f"pair by pair {r['ratio_pair_median']:.2f}x",
            ),
            (
                f"{label} (ms per deal)",
                f"{1000 * core['seconds'] / r['size']:.2f}",
                f"{1000 * sop['seconds'] / r['size']:.2f}",
                f"{extra['median']:+.2f} ms",
                f"best {extra['best']:+.2f} ms, SQL {extra['sql_median']:+.2f} ms",
            ),
            (
                f"{label} (CPU ms per deal)",
                f"{1000 * r['cpu']['core']['total']['median'] / r['size']:.2f}",
                f"{1000 * r['cpu']['sop']['total']['median'] / r['size']:.2f}",
                f"{r['extra_cpu_ms_per_deal']['total']['median']:+.2f} ms",
                "Python {python:+.2f}, PostgreSQL {postgresql:+.2f} ms; "
                "CPU ratio {ratio:.2f}x".format(
                    ratio=r["cpu"]["sop"]["total"]["median"]
                    / r["cpu"]["core"]["total"]["median"],
                    **{
                        part: r["extra_cpu_ms_per_deal"][part]["median"]
                        for part in ("python", "postgresql")
                    },
                ),
            ),
            (
                f"{label} (queries)",
                f"{core['queries']:g}",
                f"{sop['queries']:g}",
                f"{r['extra_queries']:+g}",
                " / ".join(r["databases"].values()),
            ),
        ]
    return rows

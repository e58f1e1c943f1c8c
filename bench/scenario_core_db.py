"""Scenario ``core-db``: what a user meets. One ``create()`` of N
opportunities on the bench database (the addon installed, its default
playbook active) against a database with core ``crm`` alone, same data
seeding, same user and values, both registries in this process, interleaved
(A B, then B A on odd rounds), best of ``--rounds`` with medians beside.

``--probe MODEL.METHOD,...`` wraps more methods (wall time of their outermost
calls, in each database that has them) to locate where a gap comes from;
``--profile PREFIX`` adds one round per database under cProfile (not counted:
profiling inflates Python and hides PostgreSQL's share), saves
``PREFIX-core.prof`` and ``PREFIX-sop.prof`` and logs the functions whose time
differs most between the two."""

import cProfile
import pstats
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

from fixture import Fixture, seed_background, set_mode
from harness import (
    MODULE,
    alternate,
    compare,
    log,
    measure,
    module_state,
    names,
    prepare_database,
    probes,
    rolled_back,
    transaction,
    use_registry,
    vacuum,
)

from odoo.modules.registry import Registry

NAME = "core-db"
ENGINE = "crm.sop.engine._sop_sync"
SIDES = ("core", "sop")  # the database with core crm alone, the addon's


def add_arguments(parser):
    group = parser.add_argument_group("core-db scenario")
    group.add_argument(
        "--core-db",
        metavar="NAME",
        help="database with core crm alone, created when missing "
        "(default: the bench database's name + _core)",
    )
    group.add_argument(
        "--rounds", type=int, default=7, metavar="N", help="rounds (best of N)"
    )
    group.add_argument(
        "--core-db-size",
        type=int,
        default=1000,
        metavar="N",
        help="opportunities per create()",
    )
    group.add_argument(
        "--probe",
        type=names,
        default=[],
        metavar="MODEL.METHOD,...",
        help="more methods to time (wall time of their outermost calls)",
    )
    group.add_argument(
        "--profile",
        type=Path,
        metavar="PREFIX",
        help="one more round per database under cProfile, to locate a gap",
    )


def check_args(args):
    if min(args.rounds, args.core_db_size) < 1:
        return "counts must be positive"
    if args.core_db == args.db:
        return "--core-db must differ from --db"
    return None


def core_db_name(args):
    return args.core_db or f"{args.db}_core"


def prepare_core_db(args):
    """The database with core crm alone (no demo data), created once, and
    the same background opportunities as the bench database."""
    db = core_db_name(args)
    prepare_database(
        db,
        args.addons_path,
        module="crm",
        recreate=args.recreate,
        update=not args.no_update,
    )
    if module_state(db) not in ("uninstalled", "uninstallable"):
        sys.exit(f"error: {db} must have core crm alone, {MODULE} is in it")
    registry = Registry(db)
    seed_background(registry, args.background)
    vacuum(db)
    return registry


def run(registry, args):
    """One create() of N opportunities in each database, per round."""
    registries = {"core": prepare_core_db(args), "sop": registry}
    size = args.core_db_size
    targets = [ENGINE, *(t for t in args.probe if t != ENGINE)]
    samples = {side: [] for side in SIDES}
    cpu = {side: [] for side in SIDES}  # (Python, PostgreSQL) CPU seconds
    probed = {side: {target: [] for target in targets} for side in SIDES}
    tasks = done = 0
    with ExitStack() as stack:
        envs, fixtures, spent = {}, {}, {}
        for side in SIDES:
            use_registry(registries[side])
            envs[side] = env = stack.enter_context(transaction(registries[side]))
            spent[side] = stack.enter_context(probes(registries[side], targets))
            fixtures[side] = Fixture(env)
            if side == "sop":
                set_mode(env, "sop")  # as installed: the default playbook
        for number, order in enumerate(alternate(args.rounds, *SIDES), 1):
            for side in order:
                env, fixture = envs[side], fixtures[side]
                use_registry(registries[side])
                Lead = fixture.env["crm.lead"]
                created = []
                with rolled_back(env, clear_caches=True):
                    env.invalidate_all()  # the warm-up fetches as measure()
                    Lead.create(fixture.lead_vals(5))
                    calls = {t: len(v) for t, v in spent[side].items()}
                    sample = measure(
                        env,
                        lambda c=created, L=Lead, f=fixture: c.append(
                            L.create(f.lead_vals(size))
                        ),
                        spent[side].get(ENGINE),
                        cpu[side],
                    )
                    if side == "sop":
                        Task = env["crm.sop.task"]
                        domain = [("lead_id", "in", created[0].ids)]
                        tasks = Task.search_count(domain)
                        done = Task.search_count([*domain, ("state", "=", "done")])
                for target, values in spent[side].items():
                    probed[side][target].append(sum(values[calls[target] :]))
                samples[side].append(sample)
                log(
                    f"  round {number} {side:4} ({registries[side].db_name}): "
                    f"create {size}: {sample.seconds:6.2f} s, "
                    f"SQL {sample.sql_seconds:5.2f} s, {sample.queries:6} q, CPU "
                    f"{cpu[side][-1][0]:5.2f} + {cpu[side][-1][1]:5.2f} s (PG)"
                    + "".join(
                        f", {target.rpartition('.')[2]} {probed[side][target][-1]:.3f} s"
                        for target in spent[side]
                    )
                )
        if args.profile:
            profile(args.profile, registries, envs, fixtures, size)
    return {
        "size": size,
        "rounds": args.rounds,
        "databases": {side: registries[side].db_name for side in SIDES},
        **compare(samples, *SIDES, best=True),
        "cpu": {side: cpu_summary(cpu[side]) for side in SIDES},
        "probes": {
            side: {
                target: {
                    "median": statistics.median(values),
                    "best": min(values),
                    "samples": [round(v, 4) for v in values],
                }
                for target, values in probed[side].items()
                if target in spent[side]
            }
            for side in SIDES
        },
        "tasks_created": tasks,
        "tasks_completed": done,
    }


def cpu_summary(values):
    """Best and median CPU seconds, Python, PostgreSQL and both."""
    result = {}
    for index, name in enumerate(("python", "postgresql", "total")):
        column = [v[index] if index < 2 else v[0] + v[1] for v in values]
        result[name] = {
            "median": statistics.median(column),
            "best": min(column),
            "samples": [round(v, 3) for v in column],
        }
    return result


def profile(prefix, registries, envs, fixtures, size):
    """One create() per database under cProfile (stats saved, not counted),
    and the functions whose time differs most, SOP minus core."""
    stats = {}
    for side in SIDES:
        env, fixture = envs[side], fixtures[side]
        use_registry(registries[side])
        Lead = fixture.env["crm.lead"]
        with rolled_back(env, clear_caches=True):
            env.invalidate_all()
            Lead.create(fixture.lead_vals(5))
            profiler = cProfile.Profile()
            sample = measure(
                env,
                lambda p=profiler, L=Lead, f=fixture: p.runcall(
                    L.create, f.lead_vals(size)
                ),
            )
        path = Path(f"{prefix}-{side}.prof")
        path.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(path)
        stats[side] = pstats.Stats(str(path)).stats
        log(f"  profiled {side}: {sample.seconds:.2f} s under cProfile, in {path}")

    def label(key):
        filename, line, func = key
        return f"{'/'.join(Path(filename).parts[-3:])}:{line}({func})"

    keys = set(stats["core"]) | set(stats["sop"])
    for index, what in ((2, "own time"), (3, "cumulative time")):
        diffs = sorted(
            (
                stats["sop"].get(key, (0,) * 4)[index]
                - stats["core"].get(key, (0,) * 4)[index],
                key,
            )
            for key in keys
        )
        log(f"  most {what} added (SOP - core, seconds, calls core/SOP):")
        for diff, key in reversed(diffs[-15:]):
            calls = [stats[side].get(key, (0, 0))[1] for side in SIDES]
            log(f"    {diff:+7.3f}  {calls[0]}/{calls[1]}  {label(key)}")


def report_rows(r):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    core, sop = r["core"], r["sop"]
    label = f"core-db create {r['size']}"
    rows = [
        (
            f"{label} (best s)",
            f"{core['best']['seconds']:.2f}",
            f"{sop['best']['seconds']:.2f}",
            f"{r['best_time_ratio']:.2f}x",
            f"best of {r['rounds']}, A B / B A",
        ),
        (
            f"{label} (median s)",
            f"{core['seconds']:.2f}",
            f"{sop['seconds']:.2f}",
            f"{r['time_ratio']:.2f}x",
            f"{r['databases']['core']} / {r['databases']['sop']}",
        ),
        (
            f"{label} (SQL s)",
            f"{core['sql_seconds']:.2f}",
            f"{sop['sql_seconds']:.2f}",
            f"{sop['sql_seconds'] - core['sql_seconds']:+.2f} s",
            "medians, as seen by the client",
        ),
        (
            f"{label} (queries)",
            f"{core['queries']:g}",
            f"{sop['queries']:g}",
            f"{r['extra_queries']:+g}",
            f"{r['tasks_created']} tasks, {r['tasks_completed']} auto-done",
        ),
    ]
    for name in ("total", "python", "postgresql"):
        c, s = r["cpu"]["core"][name], r["cpu"]["sop"][name]
        rows.append(
            (
                f"{label} (CPU {name} s)",
                f"{c['best']:.2f} / {c['median']:.2f}",
                f"{s['best']:.2f} / {s['median']:.2f}",
                f"{s['best'] / c['best']:.2f}x / {s['median'] / c['median']:.2f}x",
                "best / median" if name == "total" else "",
            )
        )
    for target in r["probes"]["sop"]:
        in_core = r["probes"]["core"].get(target)
        rows.append(
            (
                f"{label} {target} (s)",
                f"{in_core['median']:.3f}" if in_core else "",
                f"{r['probes']['sop'][target]['median']:.3f}",
                "",
                "median wall time of its outermost calls",
            )
        )
    return rows

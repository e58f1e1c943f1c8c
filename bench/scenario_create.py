"""Scenario ``create``: one ``create()`` of N opportunities (team,
salesperson, customer), time and queries, core vs SOP in the same database;
the engine's own share (``crm.sop.engine._sop_sync``) is measured apart."""

from fixture import Fixture, set_mode
from harness import (
    alternate,
    compare,
    constant_row,
    log,
    measure,
    probe,
    rolled_back,
    sizes,
    transaction,
    verdict,
)

NAME = "create"
TARGET_CREATE_RATIO = 1.10


def add_arguments(parser):
    parser.add_argument(
        "--create-sizes",
        type=sizes,
        default=[100, 1000],
        metavar="N,N",
        help="opportunities per create()",
    )


def run(registry, args):
    """One create() of N opportunities, core vs SOP. Each measurement follows
    a small create in the same mode (ormcaches filled, as in production)."""
    results = {}
    with (
        transaction(registry) as env,
        probe(registry, "crm.sop.engine", "_sop_sync") as engine,
    ):
        fixture = Fixture(env)
        Lead = fixture.env["crm.lead"]
        Task = env["crm.sop.task"]
        for size in args.create_sizes:
            samples = {"core": [], "sop": []}
            tasks = done = 0
            for order in alternate(args.repeat):
                for mode in order:
                    created = []
                    with rolled_back(env, clear_caches=True):
                        set_mode(env, mode)
                        env.invalidate_all()  # the warm-up fetches as measure()
                        Lead.create(fixture.lead_vals(5))
                        sample = measure(
                            env,
                            lambda n=size, c=created: c.append(
                                Lead.create(fixture.lead_vals(n))
                            ),
                            engine,
                        )
                        if mode == "sop":
                            domain = [("lead_id", "in", created[0].ids)]
                            tasks = Task.search_count(domain)
                            done = Task.search_count([*domain, ("state", "=", "done")])
                    samples[mode].append(sample)
                    log(
                        f"  create {size:5} {mode:4}: {sample.seconds:7.2f} s "
                        f"{sample.queries:6} q, engine {sample.engine_seconds:.3f} s"
                    )
            results[str(size)] = {
                **compare(samples),
                "tasks_created": tasks,
                "tasks_completed": done,
            }
    return results


def report_rows(results):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    rows = []
    for size, r in results.items():
        core, sop = r["core"], r["sop"]
        ratio = r["time_ratio"]
        # the engine's own time added to core's time: a low-noise estimate
        estimate = (core["seconds"] + sop["engine_seconds"]) / core["seconds"]
        rows += [
            (
                f"create {size} (s)",
                f"{core['seconds']:.2f}",
                f"{sop['seconds']:.2f}",
                f"{ratio:.2f}x",
                verdict(ratio <= TARGET_CREATE_RATIO, f"<= {TARGET_CREATE_RATIO}x"),
            ),
            (
                f"create {size} (engine s)",
                f"{core['engine_seconds']:.3f}",
                f"{sop['engine_seconds']:.3f}",
                f"~{estimate:.2f}x",
                "core + engine time",
            ),
            (
                f"create {size} (queries)",
                f"{core['queries']:g}",
                f"{sop['queries']:g}",
                f"{r['extra_queries']:+g}",
                f"{r['tasks_created']} tasks, {r['tasks_completed']} auto-done",
            ),
        ]
    if len(results) > 1:
        rows.append(constant_row("create extra queries", results))
    return rows

"""Scenario ``write``: a write that completes a SOP task on N opportunities,
against a write of two fields no task watches (core's cost)."""

from fixture import Fixture, set_mode
from harness import (
    alternate,
    compare,
    constant_row,
    log,
    measure,
    rolled_back,
    sizes,
    transaction,
)

NAME = "write"
VISIT_TASK = "crm_sales_sop.crm_sop_task_visit_data"
# completes the "Visit data" task (its third field, the source, is set on the
# scenario's opportunities); the core write changes two fields no task watches
WRITE_VALS = {
    "core": {"description": "<p>Seen at the shop</p>", "referred": "A friend"},
    "sop": {"x_sop_companions": "Spouse", "x_sop_decision_makers": "Both"},
}


def add_arguments(parser):
    parser.add_argument(
        "--write-sizes",
        type=sizes,
        default=[1, 100],
        metavar="N,N",
        help="opportunities per write()",
    )


def run(registry, args):
    """A write of two watched fields that completes the "Visit data" task,
    against the same-size write of two fields no task watches (core's cost),
    both in SOP mode: an unwatched write costs the addon nothing."""
    results = {}
    with transaction(registry) as env:
        fixture = Fixture(env)
        set_mode(env, "sop")
        leads = fixture.env["crm.lead"].create(
            fixture.lead_vals(max(args.write_sizes), source_id=fixture.source.id)
        )
        visit = env.ref(VISIT_TASK)
        env.cr.flush()
        for size in args.write_sizes:
            targets = leads[:size]
            samples = {"core": [], "sop": []}
            completed = []
            # the first round warms the ormcaches up and is left out
            for order in alternate(args.repeat * args.fast_factor + 1):
                for mode in order:
                    with rolled_back(env):
                        samples[mode].append(
                            measure(
                                env, lambda v=WRITE_VALS[mode], t=targets: t.write(v)
                            )
                        )
                        if mode == "sop":
                            completed.append(
                                env["crm.sop.task"].search_count(
                                    [
                                        ("lead_id", "in", targets.ids),
                                        ("task_template_id", "=", visit.id),
                                        ("state", "=", "done"),
                                    ]
                                )
                            )
            samples = {mode: values[1:] for mode, values in samples.items()}
            results[str(size)] = {**compare(samples), "tasks_completed": min(completed)}
            log(
                f"  write {size}: core {results[str(size)]['core']['queries']} q, "
                f"SOP {results[str(size)]['sop']['queries']} q, "
                f"{min(completed)} task(s) completed"
            )
    return results


def report_rows(results):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    rows = []
    for size, r in results.items():
        core, sop = r["core"], r["sop"]
        rows += [
            (
                f"write {size} (queries)",
                f"{core['queries']:g}",
                f"{sop['queries']:g}",
                f"{r['extra_queries']:+g}",
                f"{r['tasks_completed']} task(s) completed",
            ),
            (
                f"write {size} (ms)",
                f"{1000 * core['seconds']:.1f}",
                f"{1000 * sop['seconds']:.1f}",
                f"{r['time_ratio']:.2f}x",
                "",
            ),
        ]
    if len(results) > 1:
        rows.append(constant_row("write extra queries", results))
    return rows

"""Scenario ``kanban``: ``web_search_read`` of a kanban page of
opportunities, without and with the SOP fields."""

import datetime

from fixture import Fixture, set_mode
from harness import alternate, compare, log, measure, transaction, verdict

from odoo import Command

NAME = "kanban"
TARGET_KANBAN_EXTRA = 2

# the kanban card of crm.lead as the web client asks for it; the SOP card adds
# the progress bar and the next step
KANBAN_SPEC = {
    "name": {},
    "stage_id": {"fields": {"display_name": {}}},
    "partner_id": {"fields": {"display_name": {}}},
    "user_id": {"fields": {"display_name": {}}},
    "expected_revenue": {},
    "priority": {},
    "tag_ids": {"fields": {"display_name": {}, "color": {}}},
    "activity_ids": {},
    "activity_state": {},
}
KANBAN_SOP_SPEC = {
    **KANBAN_SPEC,
    "sop_progress": {},
    "sop_next_task_id": {"fields": {"display_name": {}}},
}


def add_arguments(parser):
    parser.add_argument(
        "--kanban-leads",
        type=int,
        default=200,
        metavar="N",
        help="opportunities of the kanban scenario",
    )
    parser.add_argument(
        "--kanban-limit", type=int, default=80, metavar="N", help="records read"
    )


def check_args(args):
    if args.kanban_limit < 1:
        return "counts must be positive"
    if args.kanban_leads < args.kanban_limit:
        return "--kanban-leads must be at least --kanban-limit"
    return None


def run(registry, args):
    """web_search_read of a kanban page, without and with the SOP fields, on
    opportunities that have their tasks (SOP mode), cold record cache."""
    with transaction(registry) as env:
        fixture = Fixture(env)
        set_mode(env, "sop")
        vals_list = fixture.lead_vals(args.kanban_leads, source_id=fixture.source.id)
        for index, vals in enumerate(vals_list):
            vals["priority"] = str(index % 4)
            vals["tag_ids"] = [Command.set(fixture.tags[: index % 4].ids)]
            vals["stage_id"] = fixture.stages[index % len(fixture.stages)].id
            vals["expected_revenue"] = 1000 * (index % 7)
        leads = fixture.env["crm.lead"].create(vals_list)
        today = datetime.date.today()
        env["mail.activity"].create(
            [
                {
                    "res_model_id": env["ir.model"]._get_id("crm.lead"),
                    "res_id": lead.id,
                    "activity_type_id": env.ref("mail.mail_activity_data_call").id,
                    "user_id": fixture.salesman.id,
                    "date_deadline": today + datetime.timedelta(days=index % 5 - 2),
                }
                for index, lead in enumerate(leads[::3])
            ]
        )
        Lead = fixture.env["crm.lead"].with_context(bin_size=True)
        specs = {"core": KANBAN_SPEC, "sop": KANBAN_SOP_SPEC}

        def read(spec):
            result = Lead.web_search_read(
                # the pipeline of a salesperson ("My Pipeline")
                [("type", "=", "opportunity"), ("user_id", "=", fixture.salesman.id)],
                spec,
                limit=args.kanban_limit,
                count_limit=10001,
            )
            if len(result["records"]) != args.kanban_limit:
                raise RuntimeError(f"kanban read {len(result['records'])} records")

        for spec in specs.values():  # warm-up: ormcaches
            read(spec)
        samples = {"core": [], "sop": []}
        for order in alternate(args.repeat * args.fast_factor):
            for mode in order:
                samples[mode].append(measure(env, lambda s=specs[mode]: read(s)))
        results = {"records": args.kanban_limit, **compare(samples)}
        log(
            f"  kanban {args.kanban_limit}: core {results['core']['queries']} q, "
            f"SOP {results['sop']['queries']} q"
        )
    return results


def report_rows(kanban):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    core, sop = kanban["core"], kanban["sop"]
    extra = kanban["extra_queries"]
    return [
        (
            f"kanban {kanban['records']} (queries)",
            f"{core['queries']:g}",
            f"{sop['queries']:g}",
            f"{extra:+g}",
            verdict(extra <= TARGET_KANBAN_EXTRA, f"<= +{TARGET_KANBAN_EXTRA}"),
        ),
        (
            f"kanban {kanban['records']} (ms)",
            f"{1000 * core['seconds']:.1f}",
            f"{1000 * sop['seconds']:.1f}",
            f"{kanban['time_ratio']:.2f}x",
            "",
        ),
    ]

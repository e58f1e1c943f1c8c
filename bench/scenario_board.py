"""Scenario ``board``: the achievement board (``crm.sop.board.get_board``)
read by a salesperson of a team of 50, each with won deals this month: every
metric (won revenue, high-value customers, SOP tasks completed, SOP
adherence) and every grouping (user, team, company). Queries must not grow
with the number of reps."""

from fixture import set_mode
from harness import log, measure, summary, transaction, verdict

from odoo import Command, fields

NAME = "board"
TARGET_QUERIES = 10
TARGET_MS = 100
METRICS = ("won_revenue", "high_value_won", "tasks_done", "adherence")
GROUP_BYS = ("user", "team", "company")


def add_arguments(parser):
    parser.add_argument(
        "--board-reps",
        type=int,
        default=50,
        metavar="N",
        help="salespeople of the board scenario's team",
    )


def check_args(args):
    if args.board_reps < 1:
        return "counts must be positive"
    return None


def run(registry, args):
    results = {}
    with transaction(registry) as env:
        set_mode(env, "sop")
        group = env.ref("sales_team.group_sale_salesman")
        reps = (
            env["res.users"]
            .with_context(no_reset_password=True, mail_create_nolog=True)
            .create(
                [
                    {
                        "name": f"Board Rep {index:03d}",
                        "login": f"bench_board_{index:03d}",
                        "email": f"bench.board.{index:03d}@example.com",
                        "groups_id": [Command.set(group.ids)],
                    }
                    for index in range(args.board_reps)
                ]
            )
        )
        team = env["crm.team"].create(
            {"name": "Bench Board Team", "member_ids": [Command.set(reps.ids)]}
        )
        won = env["crm.stage"].search([("is_won", "=", True)], limit=1)
        now = fields.Datetime.now()
        env["crm.lead"].with_context(tracking_disable=True).create(
            [
                {
                    "name": f"Board deal {index}",
                    "type": "opportunity",
                    "user_id": rep.id,
                    "team_id": team.id,
                    "stage_id": won.id,
                    "expected_revenue": 10000 * (1 + index),
                    "date_closed": now,
                }
                for rep in reps
                for index in range(4)
            ]
        )
        env.cr.flush()
        board = env["crm.sop.board"].with_user(reps[0])
        rounds = args.repeat * args.fast_factor
        for metric in METRICS:
            for group_by in GROUP_BYS:

                def call(metric=metric, group_by=group_by):
                    return board.get_board(metric, "month", group_by=group_by)

                call()  # warm the ormcaches up
                samples = [measure(env, call) for _round in range(rounds)]
                results[f"{metric}/{group_by}"] = summary(samples)
        worst = max(results.values(), key=lambda r: r["seconds"])
        log(
            f"  get_board, {args.board_reps} reps: "
            f"{max(r['queries'] for r in results.values())} queries at most, "
            f"{1000 * worst['seconds']:.1f} ms at most (median)"
        )
    return results


def report_rows(results):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    queries = max(r["queries"] for r in results.values())
    ms = 1000 * max(r["seconds"] for r in results.values())
    constant = len({r["queries"] for r in results.values()}) == 1
    return [
        (
            "board get_board (queries)",
            "",
            f"{queries:g}",
            "same for every metric" if constant else "",
            verdict(queries <= TARGET_QUERIES, f"<= {TARGET_QUERIES}"),
        ),
        (
            "board get_board (ms, slowest metric)",
            "",
            f"{ms:.1f}",
            "",
            verdict(ms < TARGET_MS, f"< {TARGET_MS} ms"),
        ),
    ]

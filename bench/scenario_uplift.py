"""Scenario ``uplift``: ``crm.lead.get_sop_uplift()`` of one open deal read by
its salesperson, over the closed deals of its team with their SOP tasks
(1,000, then 10,000 by default): queries (the same whatever the history),
time, and the ``EXPLAIN ANALYZE`` of its two aggregate queries.

Only when asked for (``--only uplift``). Everything is rolled back."""

from contextlib import contextmanager

from fixture import DEFAULT_PLAYBOOK, insert_leads, recount_history, set_mode
from harness import log, measure, sizes, summary, transaction, verdict

import odoo.sql_db
from odoo import Command
from odoo.tools import SQL

NAME = "uplift"
# 10, and one since the working days of the SOP stage's clock are kept per
# worker (what they depend on is read to know they still hold: it replaces
# ~30 ms of calendar intervals computed on every call)
TARGET_QUERIES = 11
TARGET_MS = 100
PREFIX = "Bench Uplift"
# the marker of the method's two aggregate queries (history, then per task)
AGGREGATE = "count(*) FILTER"


def add_arguments(parser):
    parser.add_argument(
        "--uplift-closed",
        type=sizes,
        default=[1000, 10_000],
        metavar="N,N",
        help="uplift: closed deals of the team (with tasks), measured at each size",
    )


def check_args(args):
    if min(args.uplift_closed) < 1:
        return "counts must be positive"
    return None


@contextmanager
def captured_queries(marker):
    """The (code, params) of the queries containing ``marker`` run in this
    process during the block (``Cursor.execute`` wrapped, then restored)."""
    cls = odoo.sql_db.Cursor
    original = cls.execute
    seen = []

    def execute(self, query, params=None, log_exceptions=True):
        code, values = (
            (query.code, query.params) if isinstance(query, SQL) else (query, params)
        )
        if marker in code:
            seen.append((code, values))
        return original(self, query, params, log_exceptions)

    cls.execute = execute
    try:
        yield seen
    finally:
        cls.execute = original


def explain(env, queries):
    """EXPLAIN (ANALYZE, BUFFERS) of each query: its plan as text lines."""
    plans = []
    for code, params in queries:
        env.cr.execute(f"EXPLAIN (ANALYZE, BUFFERS) {code}", params)
        plans.append([row[0] for row in env.cr.fetchall()])
    return plans


def plan_summary(plan):
    """Execution time and the plan's nodes, one line each, shortened."""
    nodes = [
        line.strip().removeprefix("->").strip().split("  (cost")[0]
        for line in plan
        if "(cost" in line
    ]
    timing = [
        line for line in plan if line.startswith(("Planning Time", "Execution Time"))
    ]
    return {"nodes": nodes, "timing": timing}


def add_closed(env, count, team, rep, partners, source, stages):
    """``count`` closed deals of the team (half won, half lost) with the
    default playbook's tasks, inserted in SQL: a task is done on 7 won deals
    in 10 and on 4 lost deals in 10 (by id), the others left open; and
    their stints in the playbook's SOP stages."""
    if count <= 0:
        return
    first_id = insert_leads(env, count, PREFIX, team, rep, partners, source, stages)
    playbook = env.ref(DEFAULT_PLAYBOOK)
    won = env["crm.stage"].search([("is_won", "=", True)], limit=1)
    env.cr.execute(
        SQL(
            """UPDATE crm_lead SET sop_template_id = %s
                WHERE id >= %s AND team_id = %s""",
            playbook.id,
            first_id,
            team.id,
        )
    )
    env.cr.execute(
        SQL(
            """INSERT INTO crm_sop_task (lead_id, task_template_id,
                       state, active, date_done, completion)
                SELECT l.id, tt.id,
                       CASE WHEN mod(l.id * 7 + tt.id * 13, 10)
                                 < CASE WHEN mod(l.id, 2) = 0 THEN 7 ELSE 4 END
                            THEN 'done' ELSE 'todo' END,
                       TRUE,
                       CASE WHEN mod(l.id * 7 + tt.id * 13, 10)
                                 < CASE WHEN mod(l.id, 2) = 0 THEN 7 ELSE 4 END
                            THEN l.write_date END,
                       CASE WHEN mod(l.id * 7 + tt.id * 13, 10)
                                 < CASE WHEN mod(l.id, 2) = 0 THEN 7 ELSE 4 END
                            THEN 'manual' END
                  FROM crm_lead l
                  JOIN crm_sop_task_template tt ON tt.template_id = l.sop_template_id
                 WHERE l.id >= %s AND l.team_id = %s AND tt.active""",
            first_id,
            team.id,
        )
    )
    # even ids won, odd ids lost, as the background opportunities
    env.cr.execute(
        SQL(
            """UPDATE crm_lead
                  SET probability = CASE WHEN mod(id, 2) = 0 THEN 100 ELSE 0 END,
                      automated_probability =
                          CASE WHEN mod(id, 2) = 0 THEN 100 ELSE 0 END,
                      stage_id = CASE WHEN mod(id, 2) = 0 THEN %s ELSE stage_id END,
                      active = mod(id, 2) = 0,
                      date_closed = write_date
                WHERE id >= %s AND team_id = %s""",
            won.id,
            first_id,
            team.id,
        )
    )
    # each closed deal stood in every SOP stage of the playbook in turn, a
    # few days each (2 to 10 by id), up to its closing: what the days in
    # the SOP stage are compared with (the won deals' stints)
    env.cr.execute(
        SQL(
            """INSERT INTO crm_sop_stage_log (lead_id, sop_stage_id, date_start, date_end)
                SELECT l.id, ss.id,
                       l.date_closed - make_interval(days => (
                           (st.stages - st.rank + 1) * (2 + mod(l.id, 9)))::integer),
                       l.date_closed - make_interval(days => (
                           (st.stages - st.rank) * (2 + mod(l.id, 9)))::integer)
                  FROM crm_lead l
                  JOIN crm_sop_stage ss ON ss.template_id = l.sop_template_id
                  JOIN (SELECT id, count(*) OVER () AS stages,
                               row_number() OVER (ORDER BY sequence, id) AS rank
                          FROM crm_sop_stage WHERE template_id = %s) st
                    ON st.id = ss.id
                 WHERE l.id >= %s AND l.team_id = %s""",
            playbook.id,
            first_id,
            team.id,
        )
    )
    env.invalidate_all()
    recount_history(env)
    env.cr.execute("ANALYZE crm_sop_stage_log")
    env.cr.execute("ANALYZE crm_lead")
    env.cr.execute("ANALYZE crm_sop_task")


def run(registry, args):
    results = {}
    with transaction(registry) as env:
        set_mode(env, "sop")
        rep = (
            env["res.users"]
            .with_context(no_reset_password=True, mail_create_nolog=True)
            .create(
                {
                    "name": "Bench Uplift Rep",
                    "login": "bench_uplift_rep",
                    "email": "bench.uplift.rep@example.com",
                    "groups_id": [
                        Command.set([env.ref("sales_team.group_sale_salesman").id])
                    ],
                }
            )
        )
        team = env["crm.team"].create(
            {"name": "Bench Uplift Team", "member_ids": [Command.set(rep.ids)]}
        )
        partners = env["res.partner"].create(
            [{"name": f"Bench Uplift Customer {index}"} for index in range(50)]
        )
        source = env["utm.source"].create({"name": PREFIX})
        stages = env["crm.stage"].search([("is_won", "=", False)])
        # the deal the salesperson looks at, created by the ORM: the engine
        # gives it its tasks (the contact details one done: it has a phone)
        deal = (
            env["crm.lead"]
            .with_context(mail_create_nolog=True, tracking_disable=True)
            .create(
                {
                    "name": f"{PREFIX} Open Deal",
                    "type": "opportunity",
                    "team_id": team.id,
                    "user_id": rep.id,
                    "partner_id": partners[0].id,
                    "phone": "+32 470 000001",
                }
            )
        )
        env.cr.flush()
        closed = 0
        for size in args.uplift_closed:
            add_closed(env, size - closed, team, rep, partners, source, stages)
            closed = size

            def call():
                return deal.with_user(rep).get_sop_uplift()

            answer = call()  # warm the ormcaches up
            rounds = args.repeat * args.fast_factor
            samples = [measure(env, call) for _round in range(rounds)]
            with captured_queries(AGGREGATE) as queries:
                call()
            plans = explain(env, queries)
            results[str(size)] = {
                **summary(samples),
                "won": answer["won"],
                "lost": answer["lost"],
                "enough_history": answer["enough_history"],
                "tasks": len(answer["tasks"]),
                "won_stage_deals": answer["won_stage_deals"],
                "plans": [
                    {"summary": plan_summary(plan), "plan": plan} for plan in plans
                ],
            }
            result = results[str(size)]
            log(
                f"  {size:,} closed deals: {result['queries']} queries, "
                f"{1000 * result['seconds']:.1f} ms (median of {rounds}), "
                f"{answer['won']} won / {answer['lost']} lost, "
                f"{len(answer['tasks'])} tasks explained, days in the SOP stage "
                f"against {answer['won_stage_deals']} won deals' stints"
            )
            for index, plan in enumerate(result["plans"], start=1):
                log(
                    f"    query {index}: {'; '.join(plan['summary']['timing'])}: "
                    f"{' / '.join(plan['summary']['nodes'][:6])}"
                )
    return results


def report_rows(results):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    rows = []
    for size, result in results.items():
        ms = 1000 * result["seconds"]
        rows.append(
            (
                f"uplift {int(size):,} closed (queries)",
                "",
                f"{result['queries']:g}",
                "",
                verdict(result["queries"] <= TARGET_QUERIES, f"<= {TARGET_QUERIES}"),
            )
        )
        rows.append(
            (
                f"uplift {int(size):,} closed (ms)",
                "",
                f"{ms:.1f}",
                f"{result['tasks']} tasks",
                verdict(ms < TARGET_MS, f"< {TARGET_MS} ms"),
            )
        )
    constant = len({r["queries"] for r in results.values()}) == 1
    rows.append(
        (
            "uplift queries",
            "",
            "",
            "constant" if constant else "NOT constant",
            verdict(constant, "constant"),
        )
    )
    return rows

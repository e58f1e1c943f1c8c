"""Scenario ``reports`` (review reports, "Does the SOP work?"): the review
reports over N opportunities of one team, read by its sales manager.

The data, inserted in SQL into a copy of the bench database
(``<db>_reports``, dropped afterwards) and committed, then ``VACUUM
ANALYZE`` as autovacuum leaves a database in use: N opportunities of 10
salespeople given their tasks by the engine's install path and the setup
job's batches (13 per
opportunity), a third of the tasks done and one in 50 of the others set
aside (four reasons), 40 % of the opportunities won and
20 % lost (a third of the closed ones moved to a second playbook, to
compare), one recorded stage move each, and a script sent to a third of
them. (Seeded in a transaction rolled back, every opportunity updated
four times would leave crm_lead five times its size for the reads, which
no database in use carries.) Timed: a pivot ``read_group`` on each report,
the playbooks compared (``compare()``), the team's coaching queue."""

import time

from fixture import Fixture, insert_leads, recount_history, run_setup_job, set_mode
from harness import (
    drop_database,
    log,
    measure,
    summary,
    transaction,
    vacuum,
    verdict,
)

import odoo.service.db
from odoo import SUPERUSER_ID, Command, api
from odoo.modules.registry import Registry
from odoo.tools import SQL

NAME = "reports"
# per grouped read of a report
TARGET_MS = 500
# the coaching queue ranks every open deal of the team (40,000 here): it is
# bounded by them, not by the history (read from the history counts)
COACHING_TARGET_MS = 2000


def add_arguments(parser):
    parser.add_argument(
        "--reports-leads",
        type=int,
        default=100_000,
        metavar="N",
        help="opportunities of the reports scenario",
    )
    parser.add_argument(
        "--reports-keep",
        action="store_true",
        help="keep the reports' copy of the database (<db>_reports) after the "
        "run, to read its plans in psql",
    )


def check_args(args):
    return "counts must be positive" if args.reports_leads < 1 else None


def _seed(env, fixture, count):
    """The history the reports read (see the module's docstring)."""
    group = env.ref("sales_team.group_sale_salesman")
    reps = fixture.salesman | env["res.users"].with_context(
        no_reset_password=True
    ).create(
        [
            {
                "name": f"Bench Reports Rep {index}",
                "login": f"bench_reports_{index}",
                "groups_id": [Command.set(group.ids)],
            }
            for index in range(9)
        ]
    )
    first_id = insert_leads(
        env,
        count,
        "Bench Reports",
        team=fixture.team,
        user=reps,
        partners=fixture.partners,
        source=fixture.source,
        stages=fixture.stages,
    )
    env["crm.sop.engine"]._sop_sync_all(everything=True)
    # beyond what an install sets up at once (SOP_SETUP_INLINE), the other
    # deals by the setup job, batch by batch (without it, only the newest
    # 10,000 had tasks: the reports read a tenth of the history)
    run_setup_job(env)
    cr = env.cr
    cr.execute(
        SQL(
            """SELECT count(*) FROM crm_lead l
                WHERE l.id >= %s
                  AND NOT EXISTS (SELECT 1 FROM crm_sop_task t WHERE t.lead_id = l.id)""",
            first_id,
        )
    )
    missing = cr.fetchone()[0]
    if missing:
        raise RuntimeError(f"{missing:,} opportunities without their tasks")
    # a third of the open tasks done, within 20 days of the deal's creation
    cr.execute(
        SQL(
            """UPDATE crm_sop_task t
                  SET state = 'done', completion = 'auto',
                      date_done = l.create_date + make_interval(days => mod(t.id, 20))
                 FROM crm_lead l
                WHERE l.id = t.lead_id AND l.id >= %s AND t.state = 'todo'
                  AND mod(t.id * 7 + t.lead_id, 3) = 0""",
            first_id,
        )
    )
    # one task in 50 of the others set aside, with one of four reasons
    cr.execute(
        SQL(
            """UPDATE crm_sop_task t
                  SET state = 'na',
                      na_reason = (ARRAY['Customer in a hurry', 'Bought elsewhere',
                                         'No showroom visit', 'Repeat customer']
                                  )[1 + mod(t.lead_id, 4)]
                WHERE t.lead_id >= %s AND t.state = 'todo' AND mod(t.id, 50) = 0""",
            first_id,
        )
    )
    # one recorded stage move each, two days after creation, from the first
    # stage of the pipeline (where the deal was created) to the deal's stage;
    # the leads are inserted in SQL: their creation is recorded here too
    cr.execute(
        SQL(
            """INSERT INTO crm_sop_stage_move
                      (lead_id, stage_from_id, stage_id, date, user_id, company_id)
               SELECT l.id, NULL, %(stage)s, l.create_date, l.user_id, l.company_id
                 FROM crm_lead l WHERE l.id >= %(first)s
            UNION ALL
               SELECT l.id, %(stage)s, l.stage_id, l.create_date + interval '2 days',
                      l.user_id, l.company_id
                 FROM crm_lead l WHERE l.id >= %(first)s""",
            first=first_id,
            stage=fixture.stages[0].id,
        )
    )
    # 40 % won, 20 % lost, closed within 60 days
    won = env["crm.stage"].search([("is_won", "=", True)], limit=1)
    cr.execute(
        SQL(
            """UPDATE crm_lead
                  SET probability = CASE WHEN mod(id, 5) < 2 THEN 100 ELSE 0 END,
                      stage_id = CASE WHEN mod(id, 5) < 2 THEN %s ELSE stage_id END,
                      active = mod(id, 5) < 2,
                      date_closed = create_date + make_interval(days => mod(id, 60))
                WHERE id >= %s AND mod(id, 5) < 3""",
            won.id,
            first_id,
        )
    )
    # a third of the closed ones on a second playbook
    playbook = env.ref("crm_sales_sop.crm_sop_template_default")
    other = env["crm.sop.template"].create(
        {"name": "Bench Reports Playbook B", "active": False}
    )
    cr.execute(
        SQL(
            """UPDATE crm_lead SET sop_template_id = %s
                WHERE id >= %s AND mod(id, 5) < 3 AND mod(id, 3) = 0""",
            other.id,
            first_id,
        )
    )
    # a script of the playbook sent to a third of the deals
    scripts = env["mail.template"].search([("sop_is_script", "=", True)])
    cr.execute(
        SQL(
            """INSERT INTO crm_sop_script_send (lead_id, mail_template_id, user_id,
                          channel, delivery_state, crm_stage_id, date, company_id)
               SELECT l.id, (%(scripts)s::int[])[1 + mod(l.id, %(n)s)], l.user_id,
                      'copy', 'sent', %(stage)s, l.create_date + interval '1 day',
                      l.company_id
                 FROM crm_lead l WHERE l.id >= %(first)s AND mod(l.id, 3) = 0""",
            scripts=scripts.ids,
            n=len(scripts),
            stage=fixture.stages[0].id,
            first=first_id,
        )
    )
    env.invalidate_all()
    recount_history(env)
    for table in ("crm_lead", "crm_sop_task", "crm_sop_stage_move"):
        cr.execute(SQL("ANALYZE %s", SQL.identifier(table)))
    return playbook, other


def run(registry, args):
    db = f"{registry.db_name}_reports"
    drop_database(db)
    log(f"  copying {registry.db_name} into {db}")
    odoo.service.db.exp_duplicate_database(registry.db_name, db)
    try:
        return _run(Registry(db), db, args)
    finally:
        Registry.delete(db)
        if not args.reports_keep:
            drop_database(db)


def _run(registry, db, args):
    results = {}
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        fixture = Fixture(env)
        set_mode(env, "sop")
        started = time.perf_counter()
        playbook, other = _seed(env, fixture, args.reports_leads)
        ids = (fixture.manager.id, fixture.team.id, playbook.id, other.id)
        cr.commit()
    vacuum(db)
    log(
        f"  {args.reports_leads:,} opportunities with their history in "
        f"{time.perf_counter() - started:.0f} s (committed, VACUUM ANALYZE)"
    )
    with transaction(registry) as env:
        manager_id, team_id, playbook_id, other_id = ids
        menv = env(user=manager_id, su=False, context={"lang": "en_US"})
        team = menv["crm.team"].browse(team_id)
        playbook, other = menv["crm.sop.template"].browse([playbook_id, other_id])
        calls = {
            "task report by task": lambda: menv["crm.sop.task.report"].read_group(
                [("team_id", "=", team.id)],
                [
                    "closed_count:sum",
                    "done_rate:avg",
                    "won_rate_done:avg",
                    "won_rate_not_done:avg",
                    "lift:avg",
                ],
                ["task_template_id"],
                lazy=False,
            ),
            "adherence by rep": lambda: menv["crm.sop.task.report"].read_group(
                [("team_id", "=", team.id), ("adherence_count", "=", 1)],
                ["adherence:avg", "adherence_count:sum"],
                ["user_id"],
                lazy=False,
            ),
            "playbook report by playbook": lambda: menv[
                "crm.sop.playbook.report"
            ].read_group(
                [],
                [
                    "deal_count:sum",
                    "won_rate:avg",
                    "ci_low:avg",
                    "ci_high:avg",
                    "cycle_days:avg",
                ],
                ["template_id"],
                lazy=False,
            ),
            "script report by script": lambda: menv["crm.sop.script.report"].read_group(
                [],
                [
                    "send_count:sum",
                    "advanced_rate:avg",
                    "won_rate_got:avg",
                    "won_rate_not_got:avg",
                    "lift:avg",
                ],
                ["mail_template_id"],
                lazy=False,
            ),
            "task feedback by task": lambda: menv["crm.sop.feedback.report"].read_group(
                [("template_id", "=", playbook.id)],
                [
                    "set_aside_count:sum",
                    "set_aside_rate:avg",
                    "suggestion_count:sum",
                    "not_helpful_count:sum",
                    "lift:avg",
                ],
                ["task_template_id"],
                lazy=False,
            ),
            "compare() two playbooks": lambda: menv["crm.sop.playbook.report"].compare(
                [playbook.id, other.id]
            ),
            "coaching queue (team)": lambda: menv["crm.sop.coaching"].get_queue(
                team.id
            ),
        }
        for label, call in calls.items():
            call()  # warm the ormcaches up
            samples = [measure(env, call) for _round in range(args.repeat)]
            results[label] = summary(samples)
            log(
                f"  {label}: {1000 * results[label]['seconds']:.0f} ms, "
                f"{results[label]['queries']:g} queries"
            )
        queue = calls["coaching queue (team)"]()
        results["open deals in the queue"] = queue["count"]
    return results


def report_rows(results):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    rows = []
    for label, result in results.items():
        if not isinstance(result, dict):
            continue
        ms = 1000 * result["seconds"]
        target = COACHING_TARGET_MS if label.startswith("coaching") else TARGET_MS
        rows.append(
            (
                f"reports {label} (ms)",
                "",
                f"{ms:.0f}",
                f"{result['queries']:g} queries",
                verdict(ms < target, f"< {target} ms"),
            )
        )
    return rows

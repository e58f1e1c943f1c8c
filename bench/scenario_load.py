"""Scenario ``load``: many reps at once on a multi-worker Odoo.

Two databases with their demo data, ``<db>_load_core`` (core crm alone) and
``<db>_load_sop`` (crm with the addon), created when missing. In each,
``--load-reps`` salespersons of one team, each with ``--load-deals`` open
opportunities. For each database in turn an Odoo server is started with
``--workers=--load-workers`` and one cron worker, and every rep loops a day
through JSON-RPC as the web client sends it (``tests/load_day.py``:
pipeline, open a deal with its panel, its closing prediction (the
panel's own call), fill in, mark done, move a stage,
create a deal, close a deal (won or lost in turn), the board) for
``--load-seconds``, all at once (one thread each). Reported per operation:
p50 / p95 / max latency on each side, the p95 ratio, every server error (a
refusal is an answer, not an error), the serialization conflicts Odoo
retried, per operation and per table where they were met, and where the
machine's time went while the reps worked: CPU milliseconds per loop of the
reps' client (this process), the Odoo server (its process and workers) and
PostgreSQL (every ``postgres`` process), read from ``/proc``; and, when
PostgreSQL preloads ``pg_stat_statements``, its own view of the side's
database during the run: planning and execution milliseconds per loop, and
the statements whose time per loop differs most between the two sides
(matched by their normalized text).

With the addon, the reminder job is due twice during the run (the reps work
around the clock in UTC): after the run, each prompt has exactly one ledger
row and one message, and every open deal has exactly its playbook's tasks
and a summary that agrees with them, and the history counts equal a recount
of the closed deals (``integrity_problems``, SQL and the engine's own
rule).

On both sides, predictive lead scoring's frequencies have counted each
deal the run closed once (``scoring_counts``): the lowest pipeline stage's
row of the team, which every won deal and every lost one adds to, grew by
as many won and lost as the team's deals did. With the addon, a close that
met another one of its team on those rows leaves its increments to a job
(``crm.sop.scoring.increment``) instead of failing after Odoo's retries:
counted per operation, and waited for before the check.
"""

import importlib.util
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg2
import requests
from harness import checkpoint, log, prepare_database, vacuum, verdict

import odoo
from odoo import SUPERUSER_ID, Command, api, fields
from odoo.modules.registry import Registry
from odoo.sql_db import connection_info_for

NAME = "load"
TARGET_P95_RATIO = 1.25
LOGIN = "load_rep_{:02d}"
SIDES = {"core": "crm", "sop": "crm_sales_sop"}
# operations that are the same in both loops; the others have core's
# nearest as their baseline (mark done: an activity; board: the pipeline
# analysis by salesperson)
SAME = ("pipeline", "open deal", "fill in", "move stage", "create deal", "close deal")
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\d+) (\w+) ")
# what Odoo retries itself (service.model.retrying), in an ERROR record when
# the tries are exhausted (then answered as an error too)
RETRIED = ("could not serialize access", "deadlock detected", "lock not available")
# each retry, logged at INFO by odoo.service.model (a serialization failure,
# a deadlock, a lock not available), before the request's own line
RETRY_LINE = re.compile(
    r" odoo\.service\.model: \w+, (\d+ tries left|maximum number of tries)"
)
# the statement that met the conflict (sql_db logs it at ERROR, "bad
# query"): the table it writes or locks
CONFLICT_TABLE = re.compile(
    r"bad query: .*?\b(?:UPDATE|INSERT INTO|DELETE FROM|FROM)\s+\"?(\w+)", re.S
)
# a close's lead scoring increments left to the job (the addon, at INFO)
SCORING_LOGGER = "odoo.addons.crm_sales_sop.models.crm_sop_scoring_increment"
DEFERRED_LINE = re.compile(
    rf" {re.escape(SCORING_LOGGER)}: Sales SOP: lead scoring's frequencies of "
)
# the request's line (werkzeug), the operation named in its URL by the rep's
# loop: a worker serves one request at a time, so a retry belongs to the
# next request its process logs
REQUEST_LINE = re.compile(r" werkzeug: .*\"POST [^ ?\"]*\?op=([\w()]+) ")
# its end: queries, seconds in SQL, seconds besides (Odoo's request line):
# how long the worker served it, without the wait for a free worker
SERVED = re.compile(r" \d+ (\d+\.\d+) (\d+\.\d+)\s*$")

_spec = importlib.util.spec_from_file_location(
    "load_day", Path(__file__).resolve().parent.parent / "tests" / "load_day.py"
)
load_day = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load_day)


def add_arguments(parser):
    group = parser.add_argument_group("load")
    group.add_argument("--load-reps", type=int, default=16, metavar="N")
    group.add_argument("--load-deals", type=int, default=8, metavar="N")
    group.add_argument("--load-seconds", type=int, default=60, metavar="N")
    group.add_argument("--load-workers", type=int, default=4, metavar="N")
    group.add_argument(
        "--load-rounds",
        type=int,
        default=1,
        metavar="N",
        help="load: core then SOP, N times, alternating which goes first",
    )
    group.add_argument(
        "--load-warmup",
        type=int,
        default=10,
        metavar="N",
        help="load: seconds of the same loop before the measured run, not "
        "counted (the server's workers and PostgreSQL's buffers warm)",
    )
    group.add_argument("--load-http-port", type=int, default=8180, metavar="N")
    group.add_argument(
        "--load-statements",
        type=int,
        default=8,
        metavar="N",
        help="load: with pg_stat_statements preloaded, the N statements whose "
        "time per loop differs most between the sides (0: none)",
    )


def check_args(args):
    if min(args.load_reps, args.load_deals, args.load_seconds) < 1:
        return "load: counts must be positive"
    if args.load_warmup < 0:
        return "load: the warm-up cannot be negative"
    return None


def db_name(args, side):
    return f"{args.db}_load_{side}"


def prepare(db, side, args):
    """The team, its reps (password = login, UTC) and their deals; with the
    addon, a round-the-clock calendar for the reps and the reminder job due
    twice during the run. Returns what the loops need and the run's start."""
    registry = Registry(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        Users = env["res.users"].with_context(no_reset_password=True)
        group = env.ref("sales_team.group_sale_salesman")
        reps = Users.search([("login", "like", "load_rep_")], order="login")
        missing = [LOGIN.format(i) for i in range(args.load_reps)]
        missing = [login for login in missing if login not in reps.mapped("login")]
        reps |= Users.create(
            [
                {
                    "name": f"Load Rep {login[-2:]}",
                    "login": login,
                    "password": login,
                    "email": f"{login}@example.com",
                    "tz": "UTC",
                    "groups_id": [Command.set(group.ids)],
                }
                for login in missing
            ]
        )
        reps = reps.filtered(lambda u: u.login < LOGIN.format(args.load_reps))
        team = env["crm.team"].search([("name", "=", "Load Team")], limit=1)
        if not team:
            team = env["crm.team"].create({"name": "Load Team"})
        team.member_ids = [Command.set(reps.ids)]
        Lead = env["crm.lead"]
        deals = {}
        for rep in reps:
            mine = Lead.search(
                [("user_id", "=", rep.id), ("name", "like", "Load deal ")],
                limit=args.load_deals,
                order="id",
            )
            mine |= Lead.create(
                [
                    {
                        "name": f"Load deal {rep.login} {index}",
                        "type": "opportunity",
                        "team_id": team.id,
                        "user_id": rep.id,
                    }
                    for index in range(len(mine), args.load_deals)
                ]
            )
            # a customer of each deal's own (a shared one would make every
            # rep's phone write contend for one row: core writes it through)
            alone = mine.filtered(lambda lead: lead.partner_id.name != lead.name)
            customers = env["res.partner"].create(
                [{"name": lead.name} for lead in alone]
            )
            for lead, customer in zip(alone, customers, strict=True):
                lead.partner_id = customer
            deals[rep.login] = mine.ids
        stages = env["crm.stage"].search(
            [("is_won", "=", False), ("team_id", "in", [False, team.id])]
        )
        start = fields.Datetime.now()
        # the reps are measured, not the jobs a new database has overdue
        # (lead scoring's daily recompute locks every lead for seconds)
        cr.execute(
            "UPDATE ir_cron SET nextcall = now() AT TIME ZONE 'UTC' + interval '7 days'"
        )
        cr.execute("DELETE FROM ir_cron_trigger")
        # no lead enrichment: this machine has no way to IAP, and each
        # failed try locks a batch of leads (FOR UPDATE NOWAIT) in both
        env["ir.config_parameter"].set_param("crm.iap.lead.enrich.setting", "manual")
        if side == "sop":
            calendar = env["resource.calendar"].search(
                [("name", "=", "Load: around the clock")], limit=1
            ) or env["resource.calendar"].create(
                {
                    "name": "Load: around the clock",
                    "tz": "UTC",
                    "attendance_ids": [Command.clear()]
                    + [
                        Command.create(
                            {
                                "name": f"Day {day}",
                                "dayofweek": str(day),
                                "hour_from": 0,
                                "hour_to": 23.99,
                                "day_period": "morning",
                            }
                        )
                        for day in range(7)
                    ],
                }
            )
            Resource = env["resource.resource"]
            have = Resource.search([("user_id", "in", reps.ids)]).mapped("user_id")
            Resource.create(
                [
                    {"name": rep.name, "user_id": rep.id, "calendar_id": calendar.id}
                    for rep in reps - have
                ]
            )
            Resource.search([("user_id", "in", reps.ids)]).calendar_id = calendar
            # a new day of prompts for each round
            cr.execute(
                "DELETE FROM crm_sop_reminder WHERE user_id = ANY(%s)", [reps.ids]
            )
        cr.commit()
        return {
            "reps": reps.mapped("login"),
            "deals": deals,
            "stages": stages.ids,
            "team_id": team.id,
            "start": start,
            "rep_ids": reps.ids,
        }


@contextmanager
def server(db, args):
    port = args.load_http_port
    # odoo-bin, not -m odoo: in multi-worker mode Odoo starts its gevent
    # process again from sys.argv[0]
    odoo_bin = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
    start = [str(odoo_bin)] if odoo_bin.exists() else ["-m", "odoo"]
    command = [
        sys.executable,
        *start,
        "-d",
        db,
        f"--addons-path={args.addons_path}",
        f"--db-filter=^{db}$",
        "--http-interface=127.0.0.1",
        f"--http-port={port}",
        f"--gevent-port={port + 1}",
        f"--workers={args.load_workers}",
        "--max-cron-threads=1",
        "--limit-time-real=600",
        "--limit-time-cpu=300",
        "--log-level=warn",
        # the retries and the requests' lines, to count retries per operation
        "--log-handler=odoo.service.model:INFO",
        "--log-handler=werkzeug:INFO",
        f"--log-handler={SCORING_LOGGER}:INFO",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    errors, retried, pending, served = [], {}, {}, {}
    deferred, deferring = {}, {}

    def read_log():
        """The server's ERROR records, each with its continuation lines, and
        the retries per operation ({operation: count})."""
        record = None
        for line in process.stderr:
            match = LOG_RECORD.match(line)
            if match:
                if record and " ERROR " in record[0]:
                    errors.append("".join(record))
                record = [line]
                pid = match.group(1)
                if RETRY_LINE.search(line):
                    pending[pid] = pending.get(pid, 0) + 1
                elif DEFERRED_LINE.search(line):
                    deferring[pid] = deferring.get(pid, 0) + 1
                elif request := REQUEST_LINE.search(line):
                    operation = request.group(1).replace("_", " ")
                    if pending.get(pid):
                        retried[operation] = retried.get(operation, 0) + pending.pop(
                            pid
                        )
                    if deferring.get(pid):
                        deferred[operation] = deferred.get(
                            operation, 0
                        ) + deferring.pop(pid)
                    if times := SERVED.search(line):
                        served.setdefault(operation, []).append(
                            1000 * (float(times.group(1)) + float(times.group(2)))
                        )
            elif record is not None:
                record.append(line)
        if record and " ERROR " in record[0]:
            errors.append("".join(record))
        if any(pending.values()):
            retried["(no request line)"] = sum(pending.values())

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _attempt in range(600):
            with suppress(requests.ConnectionError):
                if requests.get(f"{url}/web/login", timeout=5).ok:
                    break
            time.sleep(0.2)
        else:
            sys.exit("error: the Odoo server did not start")
        yield url, errors, retried, served, deferred, process.pid
    finally:
        process.terminate()
        process.wait(60)
        reader.join(5)


def _proc_stats():
    """{pid: (parent pid, command name, CPU seconds so far)} of the
    machine's processes, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            with open(f"/proc/{entry.name}/stat") as stat:
                text = stat.read()
            # the command name is in parentheses and may hold spaces
            name = text[text.index("(") + 1 : text.rindex(")")]
            fields_ = text[text.rindex(")") + 2 :].split()
            # after the name: state, ppid, ... utime (14th) and stime (15th)
            stats[int(entry.name)] = (
                int(fields_[1]),
                name,
                (int(fields_[11]) + int(fields_[12])) / tick,
            )
    return stats


def cpu_snapshot(server_pid):
    """CPU seconds used so far by the Odoo server (its process and its
    workers) and by PostgreSQL (every ``postgres`` process), and by this
    process (the reps' client threads)."""
    stats = _proc_stats()
    odoo_pids, frontier = {server_pid}, [server_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, st in stats.items() if st[0] == parent]
        odoo_pids.update(children)
        frontier.extend(children)
    return {
        "client": time.process_time(),
        "odoo": sum(stats[pid][2] for pid in odoo_pids if pid in stats),
        "postgresql": sum(st[2] for st in stats.values() if st[1] == "postgres"),
    }


@contextmanager
def statements(db):
    """PostgreSQL's own view of what ``db`` ran inside the block, when it
    preloads ``pg_stat_statements`` (``shared_preload_libraries``): yields a
    dict filled at the end with {normalized text: [calls, planning ms,
    execution ms]} (empty when the view is not there). The extension is
    created in the maintenance database ``postgres``, never in the bench's."""
    found = {}
    try:
        # Odoo's own connection settings (host, port, user), as the
        # harness's VACUUM: the server the bench's databases are on
        _name, params = connection_info_for("postgres")
        connection = psycopg2.connect(**params)
    except psycopg2.Error:
        connection = None
    if connection is None:
        yield found
        return
    connection.autocommit = True
    try:
        with connection.cursor() as cr:
            cr.execute("SHOW shared_preload_libraries")
            if "pg_stat_statements" not in cr.fetchone()[0]:
                yield found
                return
            cr.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            cr.execute("SELECT oid FROM pg_database WHERE datname = %s", [db])
            dbid = cr.fetchone()[0]
            cr.execute("SELECT pg_stat_statements_reset(0, %s, 0)", [dbid])
            yield found
            cr.execute(
                """SELECT query, calls, total_plan_time, total_exec_time
                     FROM pg_stat_statements WHERE dbid = %s""",
                [dbid],
            )
            for query, calls, plan, execution in cr.fetchall():
                text = " ".join(query.split())
                entry = found.setdefault(text, [0, 0.0, 0.0])
                entry[0] += calls
                entry[1] += plan
                entry[2] += execution
    finally:
        connection.close()


def statement_rows(core, sop, count):
    """PostgreSQL's time per loop on each side (planning, execution), and
    the ``count`` statements whose time per loop (planning + execution)
    differs most between them: [(text, core (calls, ms), sop (calls, ms))]."""
    loops = {"core": max(core["loops"], 1), "sop": max(sop["loops"], 1)}
    per_loop = {}
    for side, data in (("core", core), ("sop", sop)):
        for text, (calls, plan, execution) in data["statements"].items():
            per_loop.setdefault(text, {})[side] = (
                calls / loops[side],
                (plan + execution) / loops[side],
            )
    ranked = sorted(
        per_loop.items(),
        key=lambda item: (
            -abs(item[1].get("sop", (0, 0))[1] - item[1].get("core", (0, 0))[1])
        ),
    )
    return [
        (text, sides.get("core", (0, 0)), sides.get("sop", (0, 0)))
        for text, sides in ranked[:count]
    ]


def run_side(side, args):
    db = db_name(args, side)
    data = prepare(db, side, args)
    # the database as autovacuum keeps one in use: its statistics known to
    # the planner (a machine without autovacuum would leave the tables the
    # runs fill, the SOP tasks among them, unanalyzed: read by sequential
    # scans, against core's tables analyzed at install); then what the other
    # side's run and the VACUUM left in memory written to disk, which the
    # checkpointer would otherwise do during this side's run: the side that
    # ran second in a round made 4-9 % fewer loops than when it ran first
    # (2026-12-06, three runs of two rounds, either side)
    vacuum(db)
    checkpoint(db)
    samples, lock = [], threading.Lock()
    scoring_before = scoring_counts(db, data["team_id"])
    with server(db, args) as (
        url,
        server_errors,
        retried,
        served,
        deferred,
        server_pid,
    ):
        days = [
            load_day.RepDay(
                url,
                db,
                login,
                login,
                side == "sop",
                data["deals"][login],
                data["stages"],
                data["team_id"],
            )
            for login in data["reps"]
        ]
        # a warm-up first, not counted: the same loop for --load-warmup
        # seconds, so that neither side is measured on workers and buffers
        # the other side's run left cold
        warmed, warm_samples = dict.fromkeys(range(len(days)), 0), []
        if args.load_warmup:
            warm_until = time.perf_counter() + args.load_warmup
            warm = [
                threading.Thread(
                    target=warm_up, args=(day, warm_until, warmed, i, warm_samples)
                )
                for i, day in enumerate(days)
            ]
            for thread in warm:
                thread.start()
            for thread in warm:
                thread.join()
            # the server's retries and serving times of the measured run
            # only; its ERROR records of the warm-up stay (a server error
            # is one whenever it happens)
            retried.clear()
            served.clear()
            deferred.clear()
        deadline = time.perf_counter() + args.load_seconds
        loops = []

        def work(day, index):
            done = 0
            while time.perf_counter() < deadline:
                result = day.step(warmed[index] + done)
                with lock:
                    samples.extend(result)
                done += 1
            loops.append(done)

        threads = [
            threading.Thread(target=work, args=(day, i)) for i, day in enumerate(days)
        ]
        if side == "sop":
            # the reminder job twice during the load: at 5 s and half-way
            for delay in (5, args.load_seconds / 2):
                threads.append(
                    threading.Thread(target=trigger_reminders, args=(db, delay))
                )
        with statements(db) as ran:
            cpu_before = cpu_snapshot(server_pid)
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            cpu_after = cpu_snapshot(server_pid)
        if side == "sop":
            wait_for_reminders(db)
            wait_for_scoring(db)
    scoring_after = scoring_counts(db, data["team_id"])
    result = {
        "loops": sum(loops),
        # where the machine's time went during the run: the reps' client
        # (this process), the Odoo server and PostgreSQL, in CPU seconds
        "cpu_seconds": {
            part: round(cpu_after[part] - cpu_before[part], 2) for part in cpu_before
        },
        "operations": summarize(samples),
        # each operation's latencies, for the p95 over every round (taken
        # out of the result once pooled)
        "_times": latencies(samples),
        # how long a worker served each request of an operation (ms, the
        # server's own line): the operation's latency less this is time
        # spent waiting for a free worker (per request: an operation may
        # send several)
        "served_ms": {
            operation: percentiles(times) for operation, times in served.items()
        },
        # PostgreSQL's own account of the run (pg_stat_statements), when
        # it keeps one: {normalized text: [calls, planning ms, execution ms]}
        "statements": ran,
        "errors": sorted({s[2] for s in samples if s[2] not in ("ok", "refused")}),
        "error_count": sum(1 for s in samples if s[2] not in ("ok", "refused")),
        # errors answered during the warm-up (an error is one whenever)
        "warmup_error_count": sum(
            1 for s in warm_samples if s[2] not in ("ok", "refused")
        ),
        "refused": sum(1 for s in samples if s[2] == "refused"),
        # every retry of the server (Odoo's own, then succeeded or not), per
        # operation; the exhausted ones are also among the errors answered
        "retried_conflicts": sum(retried.values()),
        "retried_by_operation": dict(sorted(retried.items())),
        "errors_by_operation": errors_by_operation(samples),
        # where the conflicts were met: the table of each statement refused
        "conflicts_by_table": conflicts_by_table(server_errors),
        # closes whose lead scoring increments the job made (the addon)
        "scoring_deferred_by_operation": dict(sorted(deferred.items())),
        # the team's deals won and lost during the side's run (warm-up
        # included), and what lead scoring's frequencies counted of them
        "scoring": {
            key: round(scoring_after[key] - scoring_before[key], 1)
            for key in scoring_before
        },
        "server_errors": [
            e[:600] for e in server_errors if not any(r in e for r in RETRIED)
        ][:20],
    }
    if side == "sop":
        result.update(check_sop(db, data))
    log(
        f"  {side}: {result['loops']} loops, {result['error_count']} errors "
        f"answered, {len(result['server_errors'])} errors and "
        f"{result['retried_conflicts']} retried conflicts in the server's log"
    )
    return result


def warm_up(day, until, warmed, index, samples):
    """The rep's loop until ``until``, its latencies not kept; the loops it
    made go in ``warmed[index]`` (the measured loops go on from there), its
    samples in ``samples`` (their errors are counted)."""
    while time.perf_counter() < until:
        samples.extend(day.step(warmed[index]))
        warmed[index] += 1


def trigger_reminders(db, delay):
    """Run the reminder job now (ir.cron._trigger: Odoo's cron worker is
    woken by the NOTIFY it sends at commit)."""
    time.sleep(delay)
    with Registry(db).cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env.ref("crm_sales_sop.ir_cron_sop_reminder")._trigger()
        cr.commit()


def wait_for_reminders(db, timeout=180):
    """Until the cron worker has run every trigger of the reminder job and
    is not running it any more (its row is not locked)."""
    deadline = time.perf_counter() + timeout
    with Registry(db).cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        cron_id = env.ref("crm_sales_sop.ir_cron_sop_reminder").id
        while time.perf_counter() < deadline:
            cr.execute(
                "SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s", [cron_id]
            )
            pending = cr.fetchone()[0]
            cr.execute(
                """SELECT count(*) FROM pg_locks l JOIN pg_class c
                       ON c.oid = l.relation AND c.relname = 'ir_cron'
                    WHERE l.locktype = 'tuple' OR l.mode = 'RowShareLock'"""
            )
            running = cr.fetchone()[0]
            cr.rollback()
            if not pending and not running:
                return
            time.sleep(1)
    log("  warning: the reminder job did not finish in time")


def scoring_counts(db, team_id):
    """The team's deals won and lost (created since predictive lead
    scoring's start date), and what its frequency table counted on the
    lowest pipeline stage's row, which every won deal adds to and every lost
    one too (all stages up to its own): the won and lost counts less the 0.1
    each row starts with (the rows two first closes at once create are two),
    with the increments the addon's job has yet to make."""
    with Registry(db).cursor() as cr:
        cr.execute(
            """SELECT count(*) FILTER (WHERE l.active AND s.is_won),
                      count(*) FILTER (WHERE NOT l.active AND l.probability = 0)
                 FROM crm_lead l LEFT JOIN crm_stage s ON s.id = l.stage_id
                WHERE l.team_id = %s AND l.type = 'opportunity'
                  AND l.create_date >= (SELECT value::date FROM ir_config_parameter
                                         WHERE key = 'crm.pls_start_date')""",
            [team_id],
        )
        won, lost = cr.fetchone()
        cr.execute("SELECT id::text FROM crm_stage ORDER BY sequence, id LIMIT 1")
        first_stage = cr.fetchone()[0]
        cr.execute(
            """SELECT COALESCE(SUM(won_count - 0.1), 0),
                      COALESCE(SUM(lost_count - 0.1), 0)
                 FROM crm_lead_scoring_frequency
                WHERE team_id = %s AND variable = 'stage_id' AND value = %s""",
            [team_id, first_stage],
        )
        counted_won, counted_lost = cr.fetchone()
        cr.execute("SELECT to_regclass('crm_sop_scoring_increment') IS NOT NULL")
        if cr.fetchone()[0]:
            cr.execute(
                """SELECT COALESCE(SUM(step * won_count), 0),
                          COALESCE(SUM(step * lost_count), 0)
                     FROM crm_sop_scoring_increment
                    WHERE team_id = %s AND variable = 'stage_id' AND value = %s""",
                [team_id, first_stage],
            )
            kept_won, kept_lost = cr.fetchone()
            counted_won += kept_won
            counted_lost += kept_lost
    return {
        "won": won,
        "lost": lost,
        "counted_won": float(counted_won),
        "counted_lost": float(counted_lost),
    }


def wait_for_scoring(db, timeout=120):
    """Until the addon's job has made every lead scoring increment a close
    left to it (Odoo's cron worker, woken by its trigger)."""
    deadline = time.perf_counter() + timeout
    with Registry(db).cursor() as cr:
        while time.perf_counter() < deadline:
            cr.execute("SELECT count(*) FROM crm_sop_scoring_increment")
            left = cr.fetchone()[0]
            cr.rollback()
            if not left:
                return
            time.sleep(1)
    log(f"  warning: {left} lead scoring increments still left to the job")


def conflicts_by_table(server_errors):
    tables = {}
    for error in server_errors:
        # the statements refused; not the request's own record when the
        # tries ran out (the same conflict, answered as an error)
        match = CONFLICT_TABLE.search(error)
        if match and any(r in error for r in RETRIED):
            tables[match.group(1)] = tables.get(match.group(1), 0) + 1
    return dict(sorted(tables.items()))


def errors_by_operation(samples):
    errors = {}
    for operation, _seconds, outcome in samples:
        if outcome not in ("ok", "refused"):
            errors.setdefault(operation, {}).setdefault(outcome, 0)
            errors[operation][outcome] += 1
    return errors


def latencies(samples):
    """{operation: [ms]} of the operations answered (a refusal is an answer)."""
    by_operation = {}
    for operation, seconds, outcome in samples:
        if outcome in ("ok", "refused") and operation in load_day.OPERATIONS:
            by_operation.setdefault(operation, []).append(seconds * 1000)
    return by_operation


def summarize(samples):
    return {
        operation: percentiles(times) for operation, times in latencies(samples).items()
    }


def pooled(rounds):
    """{side: {operation: percentiles}} over every round's latencies: the
    rounds alternate which side goes first, so the order a side ran in
    weighs the same on both (one round's p95 follows the few slowest
    requests of one minute)."""
    times = {}
    for round_ in rounds:
        for side, data in round_.items():
            for operation, values in data.pop("_times").items():
                times.setdefault(side, {}).setdefault(operation, []).extend(values)
    return {
        side: {operation: percentiles(values) for operation, values in ops.items()}
        for side, ops in times.items()
    }


def percentiles(times):
    return {
        "n": len(times),
        "p50": statistics.median(times),
        "p95": statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0],
        "max": max(times),
    }


def check_sop(db, data):
    """Integrity of every open deal, and the reminder prompts of the run."""
    registry = Registry(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        problems = load_day.integrity_problems(cr, env["crm.sop.engine"])
        cr.execute(
            """SELECT count(*), count(DISTINCT (user_id, moment, local_date)),
                      count(message_id), count(DISTINCT message_id)
                 FROM crm_sop_reminder
                WHERE user_id = ANY(%s) AND create_date >= %s""",
            [data["rep_ids"], data["start"]],
        )
        ledger, prompts, with_message, messages = cr.fetchone()
        cr.execute(
            """SELECT count(*) FROM mail_message m
                 JOIN res_users u ON u.partner_id = m.res_id
                WHERE m.model = 'res.partner'
                  AND m.message_type = 'user_notification'
                  AND u.id = ANY(%s) AND m.create_date >= %s""",
            [data["rep_ids"], data["start"]],
        )
        notified = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM crm_lead WHERE active AND probability < 100")
        open_deals = cr.fetchone()[0]
    return {
        "integrity": {name: len(rows) for name, rows in problems.items()},
        "integrity_samples": {
            name: [str(row) for row in rows[:3]] for name, rows in problems.items()
        },
        "open_deals_checked": open_deals,
        "reminders": {
            "ledger_rows": ledger,
            "prompts": prompts,
            "with_message": with_message,
            "distinct_messages": messages,
            "messages_to_reps": notified,
        },
    }


def run(registry, args):
    for side, module in SIDES.items():
        prepare_database(
            db_name(args, side),
            args.addons_path,
            module=module,
            recreate=args.recreate,
            update=not args.no_update,
            demo=True,
        )
    rounds = []
    for index in range(args.load_rounds):
        order = ("core", "sop") if index % 2 == 0 else ("sop", "core")
        rounds.append({side: run_side(side, args) for side in order})
    return {
        "reps": args.load_reps,
        "seconds": args.load_seconds,
        "warmup_seconds": args.load_warmup,
        "workers": args.load_workers,
        "pooled": pooled(rounds),
        "statements_listed": args.load_statements,
        "rounds": rounds,
    }


def per_operation(counts):
    return ", ".join(f"{op} {n}" for op, n in counts.items()) or "none"


def served_text(data):
    """The served p95 of the operations whose tails this bench watches."""
    served = data.get("served_ms") or {}
    return " / ".join(
        f"{served[op]['p95']:.0f}" if op in served else "-"
        for op in ("create deal", "close deal", "move stage")
    )


def report_rows(result):
    rows = []
    for index, round_ in enumerate(result["rounds"], 1):
        core, sop = round_["core"], round_["sop"]
        tag = f"load r{index} ({result['reps']} reps, {result['seconds']} s)"
        for operation in load_day.OPERATIONS:
            c, s = core["operations"].get(operation), sop["operations"].get(operation)
            if s and operation in load_day.SOP_ONLY:
                rows.append(
                    (
                        f"{tag} {operation} p95 ms (the addon's own call)",
                        "",
                        f"{s['p95']:.0f} (p50 {s['p50']:.0f})",
                        "",
                        "",
                    )
                )
                continue
            if not (c and s):
                continue
            ratio = s["p95"] / c["p95"]
            same = operation in SAME
            rows.append(
                (
                    f"{tag} {operation} p95 ms{'' if same else ' (core: nearest)'}",
                    f"{c['p95']:.0f} (p50 {c['p50']:.0f})",
                    f"{s['p95']:.0f} (p50 {s['p50']:.0f})",
                    f"{ratio:.2f}x",
                    verdict(ratio <= TARGET_P95_RATIO, f"<= {TARGET_P95_RATIO}x")
                    if same
                    else "",
                )
            )
        answered = {
            side: data["error_count"] + data.get("warmup_error_count", 0)
            for side, data in (("core", core), ("sop", sop))
        }
        rows.append(
            (
                f"{tag} loops / errors (answered, logged; warm-up included) / retried",
                f"{core['loops']} / {answered['core']}, "
                f"{len(core['server_errors'])} / {core['retried_conflicts']}",
                f"{sop['loops']} / {answered['sop']}, "
                f"{len(sop['server_errors'])} / {sop['retried_conflicts']}",
                "",
                verdict(
                    not (answered["core"] or answered["sop"])
                    and not (core["server_errors"] or sop["server_errors"]),
                    "0 errors",
                ),
            )
        )
        if "cpu_seconds" in core and "cpu_seconds" in sop:
            per_loop = {
                side: {
                    part: 1000 * seconds / max(data["loops"], 1)
                    for part, seconds in data["cpu_seconds"].items()
                }
                for side, data in (("core", core), ("sop", sop))
            }
            rows.append(
                (
                    f"{tag} CPU ms per loop (client / Odoo / PostgreSQL)",
                    " / ".join(f"{v:.0f}" for v in per_loop["core"].values()),
                    " / ".join(f"{v:.0f}" for v in per_loop["sop"].values()),
                    f"{sum(per_loop['sop'].values()) / sum(per_loop['core'].values()):.2f}x",
                    "",
                )
            )
        if core.get("statements") and sop.get("statements"):
            planned = {
                side: (
                    sum(v[1] for v in data["statements"].values())
                    / max(data["loops"], 1),
                    sum(v[2] for v in data["statements"].values())
                    / max(data["loops"], 1),
                )
                for side, data in (("core", core), ("sop", sop))
            }
            rows.append(
                (
                    f"{tag} PostgreSQL ms per loop, planning / execution "
                    "(pg_stat_statements)",
                    "{:.1f} / {:.1f}".format(*planned["core"]),
                    "{:.1f} / {:.1f}".format(*planned["sop"]),
                    f"{sum(planned['sop']) / max(sum(planned['core']), 1e-9):.2f}x",
                    "",
                )
            )
            for text, (c_calls, c_ms), (s_calls, s_ms) in statement_rows(
                core, sop, result.get("statements_listed", 8)
            ):
                rows.append(
                    (
                        f"{tag}   {text[:70]}",
                        f"{c_ms:.2f} ms ({c_calls:.1f} calls)" if c_calls else "",
                        f"{s_ms:.2f} ms ({s_calls:.1f} calls)" if s_calls else "",
                        f"{s_ms - c_ms:+.2f} ms",
                        "",
                    )
                )
        rows.append(
            (
                f"{tag} served p95 ms per request (create / close / move)",
                served_text(core),
                served_text(sop),
                "",
                "the rest of a p95: waiting for a worker",
            )
        )
        rows.append(
            (
                f"{tag} retried conflicts per operation",
                per_operation(core["retried_by_operation"]),
                per_operation(sop["retried_by_operation"]),
                "",
                "",
            )
        )
        rows.append(
            (
                f"{tag} conflicts per table (statements refused)",
                per_operation(core["conflicts_by_table"]),
                per_operation(sop["conflicts_by_table"]),
                "",
                "",
            )
        )
        rows.append(
            (
                f"{tag} lead scoring: closes deferred to the job",
                "",
                per_operation(sop.get("scoring_deferred_by_operation", {})),
                "",
                "",
            )
        )
        if "scoring" in core and "scoring" in sop:
            rows.append(
                (
                    f"{tag} lead scoring: won / lost, counted",
                    scoring_text(core["scoring"]),
                    scoring_text(sop["scoring"]),
                    "",
                    verdict(
                        scoring_holds(core["scoring"])
                        and scoring_holds(sop["scoring"]),
                        "each close counted once",
                    ),
                )
            )
        broken = {k: v for k, v in sop["integrity"].items() if v}
        rows.append(
            (
                f"{tag} integrity of {sop['open_deals_checked']} open deals",
                "",
                ", ".join(f"{k}: {v}" for k, v in broken.items()) or "all hold",
                "",
                verdict(not broken, "tasks and summaries agree"),
            )
        )
        reminders = sop["reminders"]
        once = (
            reminders["ledger_rows"]
            == reminders["prompts"]
            == reminders["with_message"]
            == reminders["distinct_messages"]
            == reminders["messages_to_reps"]
            > 0
        )
        rows.append(
            (
                f"{tag} reminder prompts during the run",
                "",
                f"{reminders['prompts']} prompts, {reminders['messages_to_reps']} messages",
                "",
                verdict(once, "each prompt once"),
            )
        )
    rows.extend(pooled_rows(result))
    return rows


def scoring_text(scoring):
    return (
        f"{scoring['won']} / {scoring['lost']}, "
        f"{scoring['counted_won']:g} / {scoring['counted_lost']:g}"
    )


def scoring_holds(scoring):
    return (scoring["won"], scoring["lost"]) == (
        scoring["counted_won"],
        scoring["counted_lost"],
    )


def pooled_rows(result):
    """The p95 of each operation over every round, core's against the
    addon's (with one round, the round's own)."""
    pooled_ = result.get("pooled")
    if not pooled_ or len(result["rounds"]) < 2:
        return []
    tag = f"load, {len(result['rounds'])} rounds pooled"
    rows = []
    for operation in SAME:
        c = pooled_.get("core", {}).get(operation)
        s = pooled_.get("sop", {}).get(operation)
        if not (c and s):
            continue
        ratio = s["p95"] / c["p95"]
        rows.append(
            (
                f"{tag} {operation} p95 ms",
                f"{c['p95']:.0f} (p50 {c['p50']:.0f}, n {c['n']})",
                f"{s['p95']:.0f} (p50 {s['p50']:.0f}, n {s['n']})",
                f"{ratio:.2f}x",
                verdict(ratio <= TARGET_P95_RATIO, f"<= {TARGET_P95_RATIO}x"),
            )
        )
    return rows

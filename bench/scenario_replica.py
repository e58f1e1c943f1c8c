"""Scenario ``replica``: the read-only entry points on a real streaming
replica.

A second PostgreSQL cluster is made from the bench database's cluster with
``pg_basebackup -R`` (a hot standby replaying the primary's WAL), started on
``--replica-port``; an Odoo server is started on the bench database with
``--db_replica_host/--db_replica_port``. Each entry point a client calls is
then called through JSON-RPC as the web client does, and what it ran is
counted on both sides: statements on the replica (``pg_stat_statements``,
preloaded on the replica only) and the server's connections to the primary
that ran something during the call (``pg_stat_activity``, live). A read-only
entry point runs wholly on the replica; a write (the control) runs on the
primary.
The second cluster, the server and the replication rule added to the
primary's ``pg_hba.conf`` (when it had none) are removed at the end.

Needs to run as root (or as the PostgreSQL server's own user): the standby
runs as the ``postgres`` user, as the primary does on Debian.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import time

import psycopg2
import requests
from fixture import set_mode
from harness import log, verdict

from odoo import Command

NAME = "replica"
PG_BIN = "/usr/lib/postgresql/15/bin"
MANAGER_LOGIN = "bench_replica_manager"
# primary settings a hot standby needs at least as high as the primary's
STANDBY_MINIMA = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def add_arguments(parser):
    parser.add_argument(
        "--replica-port",
        type=int,
        default=5433,
        metavar="N",
        help="replica: port of the standby cluster",
    )
    parser.add_argument(
        "--replica-dir",
        default="/tmp/crm_sales_sop_replica",
        metavar="DIR",
        help="replica: the standby's data folder (removed at the end)",
    )
    parser.add_argument(
        "--replica-http-port",
        type=int,
        default=8179,
        metavar="N",
        help="replica: HTTP port of the Odoo server started on the database",
    )


def check_args(args):
    if not os.path.isdir(PG_BIN):
        return f"PostgreSQL 15's programs are not in {PG_BIN}"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "the replica scenario runs as root or as postgres"
    return None


def _as_postgres(command):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _primary(dbname="postgres"):
    return psycopg2.connect(dbname=dbname)


def _fetch(conn, query, params=None):
    with conn.cursor() as cr:
        cr.execute(query, params)
        return cr.fetchall()


@contextlib.contextmanager
def replication_rule():
    """A ``local replication postgres trust`` rule in the primary's
    pg_hba.conf while the base backup and the stream need it, when it has
    none; removed after."""
    conn = _primary()
    conn.autocommit = True
    has_rule = _fetch(
        conn,
        "SELECT count(*) FROM pg_hba_file_rules"
        " WHERE type = 'local' AND 'replication' = ANY(database)",
    )[0][0]
    hba_file = _fetch(conn, "SHOW hba_file")[0][0]
    line = "local replication postgres trust  # crm_sales_sop bench replica\n"
    if not has_rule:
        with open(hba_file, "a") as hba:
            hba.write(line)
        _fetch(conn, "SELECT pg_reload_conf()")
    try:
        yield
    finally:
        if not has_rule:
            with open(hba_file) as hba:
                kept = [row for row in hba if row != line]
            with open(hba_file, "w") as hba:
                hba.writelines(kept)
            _fetch(conn, "SELECT pg_reload_conf()")
        conn.close()


def configure_copy(folder, settings, *owned):
    """A copy of the cluster in ``folder`` configured to run beside it:
    ``settings`` as its whole postgresql.conf, local connections trusted,
    owned (with the folders ``owned``) by the postgres user."""
    with open(f"{folder}/postgresql.conf", "w") as conf:
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
    with open(f"{folder}/pg_hba.conf", "w") as hba:
        hba.write("local all all trust\n")
    open(f"{folder}/pg_ident.conf", "w").close()
    owner = pwd.getpwnam("postgres")
    for path in (folder, *owned):
        subprocess.run(
            ["chown", "-R", f"{owner.pw_uid}:{owner.pw_gid}", path], check=True
        )
    os.chmod(folder, 0o700)


@contextlib.contextmanager
def standby(args):
    """The hot standby: base backup, its own configuration, started, caught
    up with the primary; stopped and removed after."""
    folder, socket_dir = args.replica_dir, args.replica_dir + "_socket"
    for path in (folder, socket_dir):
        shutil.rmtree(path, ignore_errors=True)
    conn = _primary()
    conn.autocommit = True
    minima = {name: _fetch(conn, f"SHOW {name}")[0][0] for name in STANDBY_MINIMA}
    started = time.perf_counter()
    subprocess.run(
        [f"{PG_BIN}/pg_basebackup", "-h", "/var/run/postgresql", "-U", "postgres"]
        + ["-D", folder, "-X", "stream", "-R", "-c", "fast"],
        check=True,
    )
    log(f"  base backup: {time.perf_counter() - started:.1f} s")
    os.makedirs(socket_dir)
    settings = {
        "port": args.replica_port,
        "listen_addresses": "''",
        "unix_socket_directories": f"'{socket_dir}'",
        "hot_standby": "on",
        "hba_file": f"'{folder}/pg_hba.conf'",
        "ident_file": f"'{folder}/pg_ident.conf'",
        "shared_preload_libraries": "'pg_stat_statements'",
        "pg_stat_statements.track": "all",
        **minima,
    }
    configure_copy(folder, settings, socket_dir)
    pg_ctl = [f"{PG_BIN}/pg_ctl", "-D", folder, "-l", f"{folder}/server.log"]
    subprocess.run(_as_postgres([*pg_ctl, "-w", "start"]), check=True)
    try:
        replica = psycopg2.connect(
            dbname="postgres", host=socket_dir, port=args.replica_port
        )
        replica.autocommit = True
        assert _fetch(replica, "SELECT pg_is_in_recovery()")[0][0], "not a standby"
        replica.close()
        yield socket_dir
    finally:
        subprocess.run(_as_postgres([*pg_ctl, "-m", "fast", "stop"]), check=False)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(socket_dir, ignore_errors=True)
        conn.close()


def catch_up(replica):
    """Wait until the standby replayed what the primary wrote so far."""
    conn = _primary()
    target = _fetch(conn, "SELECT pg_current_wal_lsn()")[0][0]
    conn.close()
    for _attempt in range(300):
        query = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
        if _fetch(replica, query, (target,))[0][0]:
            return
        time.sleep(0.1)
    sys.exit("error: the replica does not catch up with the primary")


@contextlib.contextmanager
def odoo_server(args, db, socket_dir):
    command = [
        sys.executable,
        "-m",
        "odoo",
        "-d",
        db,
        f"--addons-path={args.addons_path}",
        f"--db-filter=^{db}$",
        "--http-interface=127.0.0.1",
        f"--http-port={args.replica_http_port}",
        "--max-cron-threads=0",
        f"--db_replica_host={socket_dir}",
        f"--db_replica_port={args.replica_port}",
        "--log-level=warn",
    ]
    server = subprocess.Popen(command)
    url = f"http://127.0.0.1:{args.replica_http_port}"
    try:
        for _attempt in range(600):
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/web/login", timeout=5).ok:
                    break
            time.sleep(0.2)
        else:
            sys.exit("error: the Odoo server did not start")
        yield url, f"odoo-{server.pid}"
    finally:
        server.terminate()
        server.wait(30)


def prepare(registry):
    """The manager who calls (a salesperson too), committed; a deal of the
    default playbook's team assigned to them; the playbook and team ids."""
    with registry.cursor() as cr:
        from odoo.api import SUPERUSER_ID, Environment

        env = Environment(cr, SUPERUSER_ID, {})
        set_mode(env, "sop")
        Users = env["res.users"].with_context(active_test=False)
        manager = Users.search([("login", "=", MANAGER_LOGIN)])
        if not manager:
            manager = Users.with_context(no_reset_password=True).create(
                {
                    "name": "Bench Replica Manager",
                    "login": MANAGER_LOGIN,
                    "email": "bench.replica.manager@example.com",
                    "groups_id": [
                        Command.set(env.ref("sales_team.group_sale_manager").ids)
                    ],
                }
            )
        manager.write({"active": True, "password": MANAGER_LOGIN})
        team = env["crm.team"].search([], limit=1)
        lead = env["crm.lead"].create(
            {
                "name": "Bench replica deal",
                "type": "opportunity",
                "team_id": team.id,
                "user_id": manager.id,
                "partner_id": env["res.partner"]
                .create({"name": "Replica Customer", "email": "r@example.com"})
                .id,
                "expected_revenue": 10000,
            }
        )
        cr.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return {
            "lead": lead.id,
            "team": team.id,
            "playbook": lead.sop_template_id.id,
            "uid": manager.id,
        }


def entry_points(ids):
    """(label, model, method, args, kwargs, read_only) as the web client
    sends them."""
    reports = [
        ("crm.sop.task.report", "task_template_id"),
        ("crm.sop.stage.report", "sop_stage_id"),
        ("crm.sop.script.report", "mail_template_id"),
        ("crm.sop.playbook.report", "template_id"),
    ]
    panel = {
        name: {}
        for name in (
            "sop_progress",
            "sop_next_task_id",
            "sop_stage_id",
            "sop_task_ids",
        )
    }
    # My SOP Day's own filter (the action's domain)
    my_day = [("sop_my_day", "=", True)]
    return [
        ("deal form (panel)", "crm.lead", "web_read", [[ids["lead"]]],
         {"specification": panel}, True),
        ("uplift", "crm.lead", "get_sop_uplift", [[ids["lead"]]], {}, True),
        ("scripts menu", "crm.lead", "sop_get_scripts", [[ids["lead"]]], {}, True),
        ("board", "crm.sop.board", "get_board", ["won_revenue", "month"], {}, True),
        ("coaching queue", "crm.sop.coaching", "get_queue", [ids["team"]], {}, True),
        ("playbooks compared", "crm.sop.playbook.report", "compare",
         [[ids["playbook"]]], {}, True),
        ("My SOP Day", "crm.sop.task", "web_search_read", [],
         {"domain": my_day, "specification": {"name": {}, "lead_id": {}}}, True),
        *[
            (f"{model} grouped", model, "web_read_group", [],
             {"domain": [], "fields": ["__count"], "groupby": [groupby]}, True)
            for model, groupby in reports
        ],
        ("control: rename the deal", "crm.lead", "write",
         [[ids["lead"]], {"name": "Bench replica deal (renamed)"}], {}, False),
    ]  # fmt: skip


def call(session, url, model, method, args, kwargs):
    response = session.post(
        f"{url}/web/dataset/call_kw/{model}/{method}",
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"model": model, "method": method, "args": args,
                       "kwargs": kwargs},
        },
        timeout=120,
    )  # fmt: skip
    body = response.json()
    if "error" in body:
        raise RuntimeError(f"{model}.{method}: {body['error']['data']['message']}")
    return body["result"]


def primary_sessions(conn, db, application, since):
    """The Odoo server's connections to ``db`` on the primary that ran
    something since ``since`` (pg_stat_activity is live; the cumulative
    statistics of pg_stat_database may be reported 10 s late)."""
    return _fetch(
        conn,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        " AND application_name = %s AND state_change >= %s",
        (db, application, since),
    )[0][0]


def run(registry, args):
    db = registry.db_name
    ids = prepare(registry)
    rows = []
    with replication_rule(), standby(args) as socket_dir:
        replica = psycopg2.connect(dbname=db, host=socket_dir, port=args.replica_port)
        replica.autocommit = True
        catch_up(replica)
        primary = _primary()
        primary.autocommit = True
        with odoo_server(args, db, socket_dir) as (url, application):
            session = requests.Session()
            response = session.post(
                f"{url}/web/session/authenticate",
                json={"jsonrpc": "2.0", "method": "call", "params": {
                    "db": db, "login": MANAGER_LOGIN, "password": MANAGER_LOGIN}},
                timeout=60,
            )  # fmt: skip
            if not response.json().get("result", {}).get("uid"):
                sys.exit(f"error: could not log in: {response.text[:300]}")
            for label, model, method, cargs, ckwargs, read_only in entry_points(ids):
                call(session, url, model, method, cargs, ckwargs)  # warm caches
                catch_up(replica)
                since = _fetch(primary, "SELECT clock_timestamp()")[0][0]
                _fetch(replica, "SELECT pg_stat_statements_reset()")
                started = time.perf_counter()
                call(session, url, model, method, cargs, ckwargs)
                elapsed = time.perf_counter() - started
                on_primary = primary_sessions(primary, db, application, since)
                on_replica = _fetch(
                    replica,
                    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)"
                    " AND query NOT ILIKE %s",
                    (db, "%pg_stat_statements%"),
                )[0][0]
                rows.append(
                    {
                        "entry_point": label,
                        "method": f"{model}.{method}",
                        "read_only": read_only,
                        "replica_statements": int(on_replica),
                        "primary_sessions": int(on_primary),
                        "ms": round(elapsed * 1000, 1),
                        "ok": (on_primary == 0 and on_replica > 0)
                        if read_only
                        else on_primary > 0,
                    }
                )
                log(f"  {rows[-1]}")
        replica.close()
        primary.close()
    return {"rows": rows, "ok": all(row["ok"] for row in rows)}


def report_rows(result):
    """(scenario, core, SOP, ratio / extra, target / note) rows: where each
    entry point ran (statements on the replica, transactions on the
    primary)."""
    return [
        (
            f"replica: {row['entry_point']} ({row['ms']} ms)",
            "",
            f"{row['replica_statements']} on replica,"
            f" {row['primary_sessions']} used on primary",
            "",
            verdict(
                row["ok"],
                "replica only" if row["read_only"] else "primary (a write)",
            ),
        )
        for row in result["rows"]
    ]

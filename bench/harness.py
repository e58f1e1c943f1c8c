"""The bench's shared harness: databases, transactions rolled back, measuring
(time, queries, SQL time, time spent in wrapped methods), interleaving, medians
and best of N, report and JSON output. The scenarios (``scenario_*.py``) are
built on it; ``bench.py`` runs them. See bench/README.md."""

import datetime
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import namedtuple
from contextlib import ExitStack, contextmanager
from pathlib import Path

try:
    import psycopg2

    import odoo
    import odoo.modules.registry
    import odoo.release
    import odoo.service.db
    from odoo import SUPERUSER_ID, api
    from odoo.sql_db import connection_info_for, db_connect
    from odoo.tools import SQL
except ImportError as error:
    sys.exit(
        f"error: cannot import odoo with {sys.executable} ({error}).\n"
        "       Install Odoo 18.0 Community into this Python first, or run the "
        "bench with the Python that has it: make bench PYTHON=/path/to/python"
    )

MODULE = "crm_sales_sop"
BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "latest.json"

# one measurement: wall time, queries, time spent in PostgreSQL (as seen by the
# client), time spent in the SOP engine's entry point (create scenarios only)
Sample = namedtuple("Sample", "seconds queries sql_seconds engine_seconds")


def log(message):
    print(message, file=sys.stderr, flush=True)


def sizes(text):
    """``--...-sizes`` options: "100,1000" -> [100, 1000]."""
    return sorted({int(value) for value in text.split(",") if value.strip()})


def names(text):
    return [name.strip() for name in text.split(",") if name.strip()]


# ------------------------------------------------------------
# databases
# ------------------------------------------------------------


def module_state(db, module=MODULE):
    """State of ``module`` in ``db``; None when the database does not exist."""
    with db_connect("postgres").cursor() as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db])
        if not cr.fetchone():
            return None
    with db_connect(db).cursor() as cr:
        cr.execute("SELECT to_regclass('ir_module_module') IS NOT NULL")
        if not cr.fetchone()[0]:
            return "uninstalled"
        cr.execute("SELECT state FROM ir_module_module WHERE name = %s", [module])
        row = cr.fetchone()
        return row[0] if row else "uninstalled"


def drop_database(db):
    """Drop ``db`` and its filestore. Not with Odoo's ``exp_drop``: given a
    database name (as the bench is), Odoo lists that one database only, and
    ``exp_drop`` then leaves any other one in place, silently."""
    if module_state(db, "base") is None:
        return
    log(f"dropping database {db}")
    odoo.modules.registry.Registry.delete(db)
    odoo.sql_db.close_db(db)
    cr = db_connect("postgres").cursor()
    try:
        cr._cnx.autocommit = True  # DROP DATABASE cannot run in a transaction
        cr.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid != pg_backend_pid()",
            [db],
        )
        cr.execute(SQL("DROP DATABASE %s", SQL.identifier(db)))
    finally:
        cr.close()
    shutil.rmtree(odoo.tools.config.filestore(db), ignore_errors=True)


def prepare_database(
    db, addons_path, module=MODULE, recreate=False, update=True, demo=False
):
    """Create ``db`` with ``module`` (no demo data unless ``demo``), or update
    the module in it, so that its schema follows the code being measured."""
    if recreate:
        drop_database(db)
    state = module_state(db, module)
    if state == "installed" and not update:
        return
    if state == "installed":
        action, what = ["-u", module], "updating"
    else:
        action, what = ["-i", module], "installing"
    log(f"{what} {module} in database {db} ({'with' if demo else 'no'} demo data)...")
    command = [
        sys.executable,
        "-m",
        "odoo",
        "-d",
        db,
        "--addons-path",
        addons_path,
        *action,
        *(() if demo else ("--without-demo=all",)),
        "--stop-after-init",
        "--log-level=warn",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode or module_state(db, module) != "installed":
        sys.exit(
            f"error: {what} {module} in {db} failed:\n"
            f"{' '.join(command)}\n{done.stdout}{done.stderr}"
        )
    log(f"  done in {time.perf_counter() - started:.0f} s")


def schema_drift(registry):
    """Columns and indexes of the addon's tables that its code no longer
    defines: an update does not drop them, a fresh install would not have
    them (they cost every insert)."""
    drift = []
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        for model in env.values():
            # the addon's models, and the sop_* fields it adds to others
            own = model._name.startswith("crm.sop.")
            if not model._auto or not (
                own or any(name.startswith("sop_") for name in model._fields)
            ):
                continue
            table = model._table
            stored = {n for n, f in model._fields.items() if f.store and f.column_type}
            cr.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = %s",
                [table],
            )
            drift += [
                f"column {table}.{column}"
                for (column,) in cr.fetchall()
                if column not in stored and (own or column.startswith("sop_"))
            ]
            cr.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [table])
            for (index,) in cr.fetchall():
                prefix, suffix = f"{table}__", "_index"
                if not (index.startswith(prefix) and index.endswith(suffix)):
                    continue
                fname = index[len(prefix) : -len(suffix)]
                if not (own or fname.startswith("sop_")):
                    continue
                field = model._fields.get(fname)
                if field is None or not field.index:
                    drift.append(f"index {index}")
    return sorted(set(drift))


def _outside_transaction(db, statement):
    """Run ``statement`` on ``db`` in a connection of its own, in autocommit
    (VACUUM and CHECKPOINT cannot run in a transaction)."""
    _name, params = connection_info_for(db)
    connection = psycopg2.connect(**params)
    try:
        connection.autocommit = True
        with connection.cursor() as cr:
            cr.execute(statement)
    finally:
        connection.close()


def vacuum(db):
    """VACUUM ANALYZE the database. The scenarios roll back what they insert
    (1.3 million tasks for the install), which leaves dead rows: with
    autovacuum off or late, they would slow the next scenarios down."""
    _outside_transaction(db, "VACUUM (ANALYZE)")


def checkpoint(db):
    """Write every dirty page to disk now (CHECKPOINT), so that what ran
    before (the other side of a load round, a VACUUM) is not flushed by the
    checkpointer during the next measurement. Needs a superuser or the
    pg_checkpoint role: without it, said and skipped."""
    try:
        _outside_transaction(db, "CHECKPOINT")
    except psycopg2.errors.InsufficientPrivilege:
        log("  (no CHECKPOINT: the database user may not run one)")


# ------------------------------------------------------------
# transactions
# ------------------------------------------------------------


@contextmanager
def transaction(registry):
    """A superuser environment on a new cursor, rolled back at the end."""
    cr = registry.cursor()
    try:
        yield api.Environment(cr, SUPERUSER_ID, {})
    finally:
        cr.rollback()
        cr.close()
        registry.clear_cache()


@contextmanager
def rolled_back(env, clear_caches=False):
    """Run the block in a savepoint, then undo it. ``clear_caches``: the block
    changed what ormcaches hold (active playbooks, engine configuration)."""
    savepoint = env.cr.savepoint()
    try:
        yield
    finally:
        savepoint.close(rollback=True)  # clears the environments' caches too
        if clear_caches:
            env.registry.clear_cache()


def use_registry(registry):
    """Make ``registry``'s database the thread's current one (as Registry()
    does): needed when two registries live in the process."""
    threading.current_thread().dbname = registry.db_name


# ------------------------------------------------------------
# measuring
# ------------------------------------------------------------


@contextmanager
def probe(registry, model, method):
    """Collect the seconds spent in the outermost calls of ``model.method``:
    the addon's own share of a measurement, much less noisy than the
    difference of two totals on a busy machine. The method is wrapped on the
    registry's class, in this process only, and restored at the end."""
    cls = registry[model]
    own = method in vars(cls)
    original = getattr(cls, method)
    spent, depth = [], [0]

    def wrapper(self, *args, **kwargs):
        depth[0] += 1
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            depth[0] -= 1
            if not depth[0]:
                spent.append(time.perf_counter() - started)

    setattr(cls, method, wrapper)
    try:
        yield spent
    finally:
        if own:
            setattr(cls, method, original)
        else:
            delattr(cls, method)


@contextmanager
def probes(registry, targets):
    """probe() on each "model.method" of ``targets`` that ``registry`` has:
    {target: list of seconds} (the missing ones are left out)."""
    with ExitStack() as stack:
        spent = {}
        for target in targets:
            model, _dot, method = target.rpartition(".")
            if model in registry and hasattr(registry[model], method):
                spent[target] = stack.enter_context(probe(registry, model, method))
        yield spent


def cpu_seconds(pid="self"):
    """CPU time (user + system) of a process of this machine, from /proc:
    unlike wall time, it does not count the time spent waiting for a core
    that another process holds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(env, func, engine=None, cpu=None):
    """A Sample of ``func()``, with everything it leaves to flush (pending
    writes, precommit hooks such as mail tracking), on a cold record cache.
    ``engine``: the list of a probe() to read the engine's share from.
    ``cpu``: a list to append (Python CPU s, PostgreSQL backend CPU s) to."""
    env.cr.flush()
    env.invalidate_all()
    gc.collect()
    thread = threading.current_thread()
    # odoo.sql_db adds every query's duration to these when they exist
    thread.query_count, thread.query_time = 0, 0.0
    engine_calls = len(engine) if engine is not None else 0
    queries = env.cr.sql_log_count
    if cpu is not None:
        backend = env.cr._cnx.get_backend_pid()
        cpu_started = time.process_time(), cpu_seconds(backend)
    started = time.perf_counter()
    try:
        func()
        env.cr.flush()
        seconds = time.perf_counter() - started
        sql_seconds = thread.query_time
        if cpu is not None:
            cpu.append(
                (
                    time.process_time() - cpu_started[0],
                    cpu_seconds(backend) - cpu_started[1],
                )
            )
    finally:
        del thread.query_count, thread.query_time
    return Sample(
        seconds,
        env.cr.sql_log_count - queries,
        sql_seconds,
        sum(engine[engine_calls:]) if engine is not None else None,
    )


# ------------------------------------------------------------
# statistics
# ------------------------------------------------------------


def summary(samples, best=False):
    """Medians of a list of Samples, and the samples themselves. ``best``:
    also the best (lowest) of each figure: interference only adds time."""
    medians, bests = {}, {}
    for name in Sample._fields:
        values = [getattr(s, name) for s in samples if getattr(s, name) is not None]
        medians[name] = statistics.median(values) if values else None
        bests[name] = min(values) if values else None
    result = {**medians}
    if best:
        result["best"] = bests
    result["samples"] = [
        {k: round(v, 4) if isinstance(v, float) else v for k, v in s._asdict().items()}
        for s in samples
    ]
    return result


def compare(samples, base="core", other="sop", best=False):
    """``base`` vs ``other`` figures of {base: [Sample], other: [Sample]}."""
    first, second = summary(samples[base], best), summary(samples[other], best)
    result = {
        base: first,
        other: second,
        "time_ratio": second["seconds"] / first["seconds"],
        "extra_queries": second["queries"] - first["queries"],
    }
    if best:
        result["best_time_ratio"] = second["best"]["seconds"] / first["best"]["seconds"]
    return result


def alternate(repeat, first="core", second="sop"):
    """The order of the two sides in each of ``repeat`` rounds, alternated
    (A B, then B A on odd rounds) so that a warm-up or a load peak of the
    machine does not always favour the same side."""
    for index in range(repeat):
        yield (first, second) if index % 2 == 0 else (second, first)


# ------------------------------------------------------------
# report
# ------------------------------------------------------------


def verdict(ok, target):
    return f"{target} {'ok' if ok else 'MISSED'}"


def constant_row(label, results):
    """The table row saying whether the extra queries of a scenario are the
    same whatever the batch size."""
    constant = len({r["extra_queries"] for r in results.values()}) == 1
    return (
        label,
        "",
        "",
        "constant" if constant else "NOT constant",
        verdict(constant, "constant"),
    )


def revision():
    """The addon's git revision ("-dirty": uncommitted changes measured)."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=BENCH_DIR.parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def machine_meta():
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "odoo": odoo.release.version,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "machine": platform.platform(),
    }


def write_json(output, meta, results):
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")


def print_report(rows, meta, output):
    """The table of (scenario, core, SOP, ratio / extra, target / note) rows."""
    header = ("scenario", "core", "SOP", "ratio / extra", "target / note")
    rows = [header, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print()
    print(
        f"crm_sales_sop bench, {meta['date']}, revision {meta['revision']}, "
        f"database {meta['db']}, {meta['cpus']} CPU(s), "
        f"median of {meta['repeat']} run(s)"
    )
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    print(f"bench took {meta['duration_seconds']:.0f} s; figures in {output}")

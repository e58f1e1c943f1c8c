"""Scenario ``instructions``: the import of scenario ``import`` counted in
instructions instead of seconds, in Odoo's process and in its PostgreSQL
backend, core ``crm`` alone against crm with the addon.

On a shared machine the speed of a core moves by half or more within
seconds (the same Python loop takes 0.25 to 0.47 s of CPU a minute apart):
a ratio of two 1,000-deal imports measured seconds apart then moves by
±20 %, more than the 10 % the import may cost. Instructions do not depend
on the machine's speed: callgrind counts the same total for the same work
(0.01 % apart between two runs).

How: the cluster is copied (``pg_basebackup``) to ``--instructions-dir``
and the copy started on ``--instructions-port`` under callgrind (its
backends fork from it, counted each), autovacuum and JIT off; a worker
(instructions_worker.py) runs under callgrind too for each database of the
pairs asked for (``--import-pairs``), every one with the same hash seed:
one import of ``--import-size`` opportunities, as a round of scenario
``import`` (warm-up, cold cache, then create and flush). Each process's counters are
zeroed right before the create and dumped right after it (callgrind's
``--zero-before`` / ``--dump-before`` on functions called there alone).
The copy, its counts and the replication rule added to pg_hba.conf (when it
had none) are removed at the end; ``--instructions-keep DIR`` keeps a copy of
each import's two counts, for ``callgrind_annotate``.

An instruction is not a unit of time: what PostgreSQL does per
instruction (index pages, locks, WAL) and what Python does differ. The
ratio says how much more work the addon asks, on any machine; the import
scenario says how long it takes on this one.

Slow: about 25 minutes for both pairs (the worker loads each registry under
callgrind). Runs as root (or as the PostgreSQL server's own user), as the
replica scenario does."""

import contextlib
import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import scenario_core_db
import scenario_import
from harness import log
from scenario_replica import PG_BIN, _as_postgres, configure_copy, replication_rule

NAME = "instructions"
WORKER = Path(__file__).with_name("instructions_worker.py")
TARGET_RATIO = scenario_import.TARGET_IMPORT_RATIO


def add_arguments(parser):
    group = parser.add_argument_group("instructions scenario")
    group.add_argument(
        "--instructions-port",
        type=int,
        default=5436,
        metavar="N",
        help="instructions: port of the cluster's copy run under callgrind",
    )
    group.add_argument(
        "--instructions-dir",
        default="/tmp/crm_sales_sop_callgrind",
        metavar="DIR",
        help="instructions: the copy's data folder (removed at the end)",
    )
    group.add_argument(
        "--instructions-keep",
        metavar="DIR",
        help="instructions: copy the counts of each import (callgrind.<db>.py "
        "and callgrind.<db>.pg) there, to read with callgrind_annotate",
    )


def check_args(args):
    if not shutil.which("valgrind"):
        return "the instructions scenario needs valgrind (Debian's package valgrind)"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "the instructions scenario runs as root or as postgres"
    return None


def summary(path):
    """Instructions (Ir) of a callgrind dump."""
    with open(path) as dump:
        for line in dump:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no summary in {path}")


@contextlib.contextmanager
def counted_cluster(args):
    """A copy of the cluster run under callgrind; yields (socket folder,
    counts folder)."""
    folder = args.instructions_dir
    socket_dir, counts = folder + "_socket", folder + "_counts"
    for path in (folder, socket_dir, counts):
        shutil.rmtree(path, ignore_errors=True)
    with replication_rule():
        subprocess.run(
            [f"{PG_BIN}/pg_basebackup", "-h", "/var/run/postgresql", "-U", "postgres"]
            + ["-D", folder, "-X", "stream", "-c", "fast"],
            check=True,
        )
    os.makedirs(socket_dir)
    os.makedirs(counts)
    settings = {
        "port": args.instructions_port,
        "listen_addresses": "''",
        "unix_socket_directories": f"'{socket_dir}'",
        "hba_file": f"'{folder}/pg_hba.conf'",
        "ident_file": f"'{folder}/pg_ident.conf'",
        # nothing but the worker's statements in the counts
        "autovacuum": "off",
        "jit": "off",
    }
    configure_copy(folder, settings, socket_dir, counts)
    server_log = open(f"{counts}/server.log", "w")
    server = subprocess.Popen(
        _as_postgres(
            [
                "valgrind",
                "--tool=callgrind",
                "--zero-before=pg_backend_pid",
                "--dump-before=pg_postmaster_start_time",
                f"--callgrind-out-file={counts}/pg.%p",
                f"{PG_BIN}/postgres",
                "-D",
                folder,
            ]
        ),
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _attempt in range(300):
            try:
                psycopg2.connect(
                    dbname="postgres", host=socket_dir, port=args.instructions_port
                ).close()
                break
            except psycopg2.OperationalError as error:
                if server.poll() is not None:
                    raise RuntimeError(
                        f"the copy did not start: {counts}/server.log"
                    ) from error
                time.sleep(1)
        else:
            raise RuntimeError("the copy did not accept connections in 300 s")
        yield socket_dir, counts
    finally:
        subprocess.run(
            _as_postgres([f"{PG_BIN}/pg_ctl", "-D", folder, "-m", "fast", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
        )
        server.wait(timeout=300)
        server_log.close()
        for path in (folder, socket_dir, counts):
            shutil.rmtree(path, ignore_errors=True)


def count(args, socket_dir, counts, databases):
    """{db: {'python': Ir, 'postgresql': Ir}} of one import in each."""
    # the same hash seed in every worker: the interpreter's dictionaries and
    # sets then probe the same slots for the same keys (with a random seed,
    # the same import's dictionary lookups moved by 40 million instructions,
    # 0.2 % of the process, from one run to the next)
    env = dict(
        os.environ,
        PGHOST=socket_dir,
        PGPORT=str(args.instructions_port),
        PYTHONHASHSEED="0",
    )
    results = []
    # a worker per database: each import counted in a process with the same
    # history (its registry loaded, the warm-up), whatever was counted before
    # it (one process for all moved its garbage collections)
    for db in databases:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--zero-before=getpgid",
            "--dump-before=getsid",
            f"--callgrind-out-file={counts}/py.%p",
            # the interpreter itself (a pyenv shim would be what callgrind
            # counts)
            os.path.realpath(sys.executable),
            str(WORKER),
            args.addons_path,
            str(args.import_size),
            db,
        ]
        done = subprocess.run(
            command, env=env, cwd=WORKER.parent, capture_output=True, text=True
        )
        found = [
            json.loads(line.removeprefix("RESULT "))
            for line in done.stdout.splitlines()
            if line.startswith("RESULT ")
        ]
        if done.returncode or len(found) != 1:
            raise RuntimeError(f"the worker failed on {db}:\n{done.stderr[-3000:]}")
        results += found
    figures = {}
    for result in results:
        # the backend dumped once: its last dump is the create's
        backend_dumps = sorted(
            glob.glob(f"{counts}/pg.{result['backend']}.*"),
            key=lambda path: int(path.rpartition(".")[2]),
        )
        python_dump = f"{counts}/py.{result['pid']}.{result['dump']}"
        figures[result["db"]] = {
            "python": summary(python_dump),
            "postgresql": summary(backend_dumps[-1]),
        }
        if args.instructions_keep:
            os.makedirs(args.instructions_keep, exist_ok=True)
            for path, part in ((python_dump, "py"), (backend_dumps[-1], "pg")):
                shutil.copy(
                    path,
                    os.path.join(
                        args.instructions_keep, f"callgrind.{result['db']}.{part}"
                    ),
                )
        log(
            f"  {result['db']}: Python {figures[result['db']]['python']:,} Ir, "
            f"PostgreSQL {figures[result['db']]['postgresql']:,} Ir"
        )
    return figures


def run(registry, args):
    pairs = {}
    for pair in args.import_pairs.split(","):
        if pair == "fresh":
            registries = scenario_import.fresh_registries(args)
            pairs[pair] = (
                registries["core"].db_name,
                registries["sop"].db_name,
            )
        else:
            pairs[pair] = (
                scenario_core_db.prepare_core_db(args).db_name,
                registry.db_name,
            )
    databases = [db for pair in pairs.values() for db in pair]
    log(f"instructions: {args.import_size} opportunities per create(), under callgrind")
    with counted_cluster(args) as (socket_dir, counts):
        figures = count(args, socket_dir, counts, databases)
    size = args.import_size
    results = {}
    for pair, (core_db, sop_db) in pairs.items():
        core, sop = figures[core_db], figures[sop_db]
        core["total"] = core["python"] + core["postgresql"]
        sop["total"] = sop["python"] + sop["postgresql"]
        results[pair] = {
            "size": size,
            "databases": {"core": core_db, "sop": sop_db},
            "core": core,
            "sop": sop,
            "ratio": {part: sop[part] / core[part] for part in core},
            "extra_per_deal": {part: (sop[part] - core[part]) / size for part in core},
        }
    return results


def report_rows(results):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    rows = []
    for pair, r in results.items():
        label = f"instructions {r['size']} {pair}"
        for part in ("python", "postgresql", "total"):
            core, sop = r["core"][part] / r["size"], r["sop"][part] / r["size"]
            ratio = r["ratio"][part]
            note = f"+{r['extra_per_deal'][part] / 1e6:.2f} M per deal"
            if part == "total":
                met = "met" if ratio <= TARGET_RATIO else "MISSED"
                note += f"; the import's {TARGET_RATIO:.2f}x, in instructions ({met})"
            rows.append(
                (
                    f"{label} ({part} M Ir/deal)",
                    f"{core / 1e6:.2f}",
                    f"{sop / 1e6:.2f}",
                    f"{ratio:.3f}x",
                    note,
                )
            )
    return rows

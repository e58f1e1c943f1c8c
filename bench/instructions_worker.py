"""The worker of scenario ``instructions`` (scenario_instructions.py), run by
it under callgrind, its PostgreSQL backends in a copy of the cluster that
runs under callgrind too: the import of scenario ``import`` in each
database, each counted in this process (between ``os.getpgid`` and
``os.getsid``: callgrind's ``--zero-before`` and ``--dump-before``) and in
its backend (between ``pg_backend_pid()`` and
``pg_postmaster_start_time()``, the same options of the server's).

    instructions_worker.py ADDONS_PATH SIZE DB [DB ...]

Prints one line ``RESULT {"db": ..., "pid": ..., "backend": ..., "dump":
...}`` per database."""

import json
import os
import sys

from scenario_import import import_round

from odoo.modules.registry import Registry
from odoo.tools import config


def main(addons_path, size, *databases):
    config.parse_config(["--addons-path", addons_path])
    for dump, db in enumerate(databases, 1):
        registry = Registry(db)
        # as scenario import's rounds: a warm-up, then a cold cache
        with import_round(registry, int(size)) as (Lead, vals):
            cr = Lead.env.cr
            backend = cr._cnx.get_backend_pid()
            cr.execute("SELECT pg_backend_pid()")  # zeroes the backend
            os.getpgid(0)  # zeroes this process
            Lead.create(vals)
            Lead.env.flush_all()
            os.getsid(0)  # dumps this process
            cr.execute("SELECT pg_postmaster_start_time()")  # dumps it
        result = {"db": db, "pid": os.getpid(), "backend": backend, "dump": dump}
        print(f"RESULT {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])

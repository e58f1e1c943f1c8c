#!/usr/bin/env python3
"""Where the import's Python work goes, function by function: the import of
scenario ``import`` (warm-up, cold cache, one ``create()`` and its flush)
run in two databases under a tracer that counts the bytecodes each Python
function executes (``sys.settrace`` with ``f_trace_opcodes``), then the
functions compared, the addon's database minus core's.

Scenario ``instructions`` says how much more work the addon asks in all
(callgrind: machine instructions, Python and PostgreSQL); inside Python,
callgrind sees the interpreter's C functions, not the Python functions
they run. Bytecodes executed are what the interpreter spends its
instructions on (some 90 machine instructions each in this import), and
they count the same on every run, loaded machine or not, so a change of a
few hundred per deal is seen at once. The tracer slows Python some
50-fold: 200 deals (the default) take a minute per database.

    python3 bench/import_opcodes.py --addons-path PATHS CORE_DB SOP_DB [--size N]

The databases: those of scenario ``import`` (``<db>_import_core`` and
``<db>_import_sop`` for the fresh pair, made by ``--only import``)."""

import argparse
import collections
import os
import sys

from scenario_import import import_round

import odoo
from odoo.modules.registry import Registry
from odoo.tools import config


def count(db, size):
    """{(file, first line, function): bytecodes} of one import in ``db``."""
    registry = Registry(db)
    counts = collections.Counter()

    def local(frame, event, _arg):
        if event == "opcode":
            counts[frame.f_code] += 1
        return local

    def called(frame, _event, _arg):
        frame.f_trace_opcodes = True
        return local

    with import_round(registry, size) as (Lead, vals):
        sys.settrace(called)
        try:
            Lead.create(vals)
            Lead.env.flush_all()
        finally:
            sys.settrace(None)
    result = collections.Counter()
    for code, number in counts.items():
        path = code.co_filename
        # addons by their folder (crm/..., crm_sales_sop/...), Odoo's own
        # code from its package (odoo/...)
        roots = [*config["addons_path"].split(","), os.path.dirname(odoo.__path__[0])]
        for root in sorted(roots, key=len, reverse=True):
            if path.startswith(root + os.sep):
                path = os.path.relpath(path, root)
                break
        result[(path, code.co_firstlineno, code.co_name)] += number
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--size", type=int, default=200, help="deals per import")
    parser.add_argument("--top", type=int, default=40, help="functions listed")
    parser.add_argument("core_db")
    parser.add_argument("sop_db")
    args = parser.parse_args()
    config.parse_config(["--addons-path", args.addons_path])
    core, sop = count(args.core_db, args.size), count(args.sop_db, args.size)
    size = args.size
    total_core, total_sop = sum(core.values()), sum(sop.values())
    print(
        f"bytecodes per deal: core {total_core / size:,.0f}, "
        f"addon {total_sop / size:,.0f} ({total_sop / total_core:.3f}x, "
        f"+{(total_sop - total_core) / size:,.0f})"
    )
    diff = collections.Counter(sop)
    diff.subtract(core)
    own = sum(n for key, n in diff.items() if "crm_sales_sop" in key[0])
    print(f"of which in the addon's own functions: +{own / size:,.0f}")
    print("functions, extra bytecodes per deal (addon minus core):")
    for (path, line, name), number in diff.most_common(args.top):
        print(f"{number / size:+9,.0f}  {path}:{line} {name}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Compare crm_sales_sop with core Odoo CRM, in the same run and database.

"core" is the database with every Sales SOP playbook archived: the addon's
hooks then do (almost) nothing. "SOP" is the default playbook active (13 tasks
per opportunity). Scenarios:

1. ``create``: one ``create()`` of 100 and of 1,000 opportunities (team,
   salesperson, customer), time and queries, core vs SOP;
2. ``kanban``: ``web_search_read`` of 80 opportunities with a kanban
   specification, without and with the SOP fields;
3. ``write``: a write that completes a SOP task on 1 and on 100 opportunities,
   against a write of two fields no task watches (core's cost);
4. ``install``: the post_init_hook on 100,000 opportunities inserted in SQL.

The database is created when missing (or updated), and receives once some
closed opportunities with their tasks (a database in use). Then every
measurement runs in a savepoint that is rolled back, every scenario in its own
transaction that is rolled back: the database stays reusable. Usage and
figures: bench/README.md.
"""

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import namedtuple
from contextlib import contextmanager
from pathlib import Path

try:
    import psycopg2

    import odoo
    import odoo.release
    import odoo.service.db
    from odoo import SUPERUSER_ID, Command, api
    from odoo.modules.registry import Registry
    from odoo.sql_db import connection_info_for, db_connect
    from odoo.tools import SQL, config
except ImportError as error:
    sys.exit(
        f"error: cannot import odoo with {sys.executable} ({error}).\n"
        "       Install Odoo 18.0 Community into this Python first, or run the "
        "bench with the Python that has it: make bench PYTHON=/path/to/python"
    )

MODULE = "crm_sales_sop"
DEFAULT_PLAYBOOK = "crm_sales_sop.crm_sop_template_default"
VISIT_TASK = "crm_sales_sop.crm_sop_task_visit_data"
BACKGROUND = "Bench Background"
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"

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
# completes the "Visit data" task (its third field, the source, is set on the
# scenario's opportunities); the core write changes two fields no task watches
WRITE_VALS = {
    "core": {"description": "<p>Seen at the shop</p>", "referred": "A friend"},
    "sop": {"sop_companions": "Spouse", "sop_decision_makers": "Both"},
}

# the addon's performance budget: reported, enforced only with --check
TARGET_CREATE_RATIO = 1.10
TARGET_KANBAN_EXTRA = 2

# one measurement: wall time, queries, time spent in PostgreSQL (as seen by the
# client), time spent in the SOP engine's entry point (create scenario only)
Sample = namedtuple("Sample", "seconds queries sql_seconds engine_seconds")


def log(message):
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------
# database
# ------------------------------------------------------------


def module_state(db):
    """State of the addon in ``db``; None when the database does not exist."""
    with db_connect("postgres").cursor() as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db])
        if not cr.fetchone():
            return None
    with db_connect(db).cursor() as cr:
        cr.execute("SELECT to_regclass('ir_module_module') IS NOT NULL")
        if not cr.fetchone()[0]:
            return "uninstalled"
        cr.execute("SELECT state FROM ir_module_module WHERE name = %s", [MODULE])
        row = cr.fetchone()
        return row[0] if row else "uninstalled"


def prepare_database(args):
    """Create the bench database with the addon (no demo data), or update the
    addon in it, so that its schema follows the code being measured."""
    if args.recreate and module_state(args.db) is not None:
        log(f"dropping database {args.db}")
        odoo.service.db.exp_drop(args.db)
    state = module_state(args.db)
    if state == "installed" and args.no_update:
        return
    if state == "installed":
        action, what = ["-u", MODULE], "updating"
    else:
        action, what = ["-i", MODULE], "installing"
    log(f"{what} {MODULE} in database {args.db} (no demo data)...")
    command = [
        sys.executable,
        "-m",
        "odoo",
        "-d",
        args.db,
        "--addons-path",
        args.addons_path,
        *action,
        "--without-demo=all",
        "--stop-after-init",
        "--log-level=warn",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode or module_state(args.db) != "installed":
        sys.exit(
            f"error: {what} {MODULE} in {args.db} failed:\n"
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


def vacuum(db):
    """VACUUM ANALYZE the database. The scenarios roll back what they insert
    (1.3 million tasks for the install), which leaves dead rows: with
    autovacuum off or late, they would slow the next scenarios down."""
    _name, params = connection_info_for(db)
    connection = psycopg2.connect(**params)
    try:
        connection.autocommit = True  # VACUUM cannot run in a transaction
        with connection.cursor() as cr:
            cr.execute("VACUUM (ANALYZE)")
    finally:
        connection.close()


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


def set_mode(env, mode):
    """``core``: every playbook archived; ``sop``: only the default playbook
    active. Toggling re-maps the open opportunities: never timed."""
    Template = env["crm.sop.template"].sudo().with_context(active_test=False)
    default = env.ref(DEFAULT_PLAYBOOK, raise_if_not_found=False)
    if not default:
        sys.exit(f"error: the default playbook {DEFAULT_PLAYBOOK} is missing")
    keep = default if mode == "sop" else Template
    (Template.search([("active", "=", True)]) - keep).action_archive()
    if mode == "sop" and not default.active:
        default.action_unarchive()
    env.cr.flush()


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


def measure(env, func, engine=None):
    """A Sample of ``func()``, with everything it leaves to flush (pending
    writes, precommit hooks such as mail tracking), on a cold record cache.
    ``engine``: the list of a probe() to read the engine's share from."""
    env.cr.flush()
    env.invalidate_all()
    gc.collect()
    thread = threading.current_thread()
    # odoo.sql_db adds every query's duration to these when they exist
    thread.query_count, thread.query_time = 0, 0.0
    engine_calls = len(engine) if engine is not None else 0
    queries = env.cr.sql_log_count
    started = time.perf_counter()
    try:
        func()
        env.cr.flush()
        seconds = time.perf_counter() - started
        sql_seconds = thread.query_time
    finally:
        del thread.query_count, thread.query_time
    return Sample(
        seconds,
        env.cr.sql_log_count - queries,
        sql_seconds,
        sum(engine[engine_calls:]) if engine is not None else None,
    )


def summary(samples):
    """Medians of a list of Samples, and the samples themselves."""
    medians = {}
    for name in Sample._fields:
        values = [getattr(s, name) for s in samples if getattr(s, name) is not None]
        medians[name] = statistics.median(values) if values else None
    return {
        **medians,
        "samples": [
            {
                k: round(v, 4) if isinstance(v, float) else v
                for k, v in s._asdict().items()
            }
            for s in samples
        ],
    }


def compare(samples):
    """core vs SOP figures of {"core": [Sample], "sop": [Sample]}."""
    core, sop = summary(samples["core"]), summary(samples["sop"])
    return {
        "core": core,
        "sop": sop,
        "time_ratio": sop["seconds"] / core["seconds"],
        "extra_queries": sop["queries"] - core["queries"],
    }


def alternate(repeat):
    """core/SOP order of each repeat, alternated so that a warm-up or a load
    peak of the machine does not always favour the same side."""
    for index in range(repeat):
        yield ("core", "sop") if index % 2 == 0 else ("sop", "core")


# ------------------------------------------------------------
# fixture
# ------------------------------------------------------------


class Fixture:
    """Users, team, customers and tags of a scenario, created in its
    transaction: a sales manager who works, a salesperson who is assigned."""

    def __init__(self, env, partners=1000):
        Users = env["res.users"].with_context(no_reset_password=True)
        self.manager, self.salesman = Users.create(
            [
                {
                    "name": f"Bench {role.title()}",
                    "login": f"bench_{role}",
                    "email": f"bench.{role}@example.com",
                    "notification_type": "inbox",
                    "groups_id": [
                        Command.set([env.ref(f"sales_team.group_sale_{role}").id])
                    ],
                }
                for role in ("manager", "salesman")
            ]
        )
        self.team = env.ref("sales_team.team_sales_department")
        env["crm.team.member"].create(
            [
                {"crm_team_id": self.team.id, "user_id": user.id}
                for user in self.manager | self.salesman
            ]
        )
        # half of the customers have a phone: their "contact details" task is
        # completed by the engine when their opportunity is created
        self.partners = env["res.partner"].create(
            [
                {
                    "name": f"Bench Customer {index}",
                    "email": f"customer{index}@example.com",
                    "phone": f"+32 470 {index:06d}" if index % 2 else False,
                }
                for index in range(partners)
            ]
        )
        self.source = env["utm.source"].create({"name": "Bench Shop Visit"})
        self.tags = env["crm.tag"].create(
            [{"name": f"Bench Tag {index}", "color": index} for index in range(3)]
        )
        self.stages = env["crm.stage"].search([("is_won", "=", False)])
        env.cr.flush()
        # the manager works in a regular environment, not as superuser
        self.env = env(user=self.manager.id, su=False, context={"lang": "en_US"})

    def lead_vals(self, count, **extra):
        partners = self.partners
        return [
            {
                "name": f"Bench Opportunity {index}",
                "type": "opportunity",
                "team_id": self.team.id,
                "user_id": self.salesman.id,
                "partner_id": partners[index % len(partners)].id,
                **extra,
            }
            for index in range(count)
        ]


# ------------------------------------------------------------
# scenarios
# ------------------------------------------------------------


def bench_create(registry, args):
    """One create() of N opportunities, core vs SOP. Each measurement follows
    a small create in the same mode (ormcaches filled, as in production)."""
    results = {}
    with (
        transaction(registry) as env,
        probe(registry, "crm.sop.task", "_sop_sync") as engine,
    ):
        fixture = Fixture(env)
        Lead = fixture.env["crm.lead"]
        Task = env["crm.sop.task"]
        for size in args.create_sizes:
            samples = {"core": [], "sop": []}
            tasks = done = 0
            for order in alternate(args.repeat):
                for mode in order:
                    created = []
                    with rolled_back(env, clear_caches=True):
                        set_mode(env, mode)
                        env.invalidate_all()  # the warm-up fetches as measure()
                        Lead.create(fixture.lead_vals(5))
                        sample = measure(
                            env,
                            lambda n=size, c=created: c.append(
                                Lead.create(fixture.lead_vals(n))
                            ),
                            engine,
                        )
                        if mode == "sop":
                            domain = [("lead_id", "in", created[0].ids)]
                            tasks = Task.search_count(domain)
                            done = Task.search_count([*domain, ("state", "=", "done")])
                    samples[mode].append(sample)
                    log(
                        f"  create {size:5} {mode:4}: {sample.seconds:7.2f} s "
                        f"{sample.queries:6} q, engine {sample.engine_seconds:.3f} s"
                    )
            results[str(size)] = {
                **compare(samples),
                "tasks_created": tasks,
                "tasks_completed": done,
            }
    return results


def bench_kanban(registry, args):
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


def bench_write(registry, args):
    """A write of two watched fields that completes the "Visit data" task,
    against the same-size write of two fields no task watches (core's cost),
    both in SOP mode: an unwatched write costs the addon nothing."""
    results = {}
    with transaction(registry) as env:
        fixture = Fixture(env)
        set_mode(env, "sop")
        leads = fixture.env["crm.lead"].create(
            fixture.lead_vals(max(args.write_sizes), source_id=fixture.source.id)
        )
        visit = env.ref(VISIT_TASK)
        env.cr.flush()
        for size in args.write_sizes:
            targets = leads[:size]
            samples = {"core": [], "sop": []}
            completed = []
            # the first round warms the ormcaches up and is left out
            for order in alternate(args.repeat * args.fast_factor + 1):
                for mode in order:
                    with rolled_back(env):
                        samples[mode].append(
                            measure(
                                env, lambda v=WRITE_VALS[mode], t=targets: t.write(v)
                            )
                        )
                        if mode == "sop":
                            completed.append(
                                env["crm.sop.task"].search_count(
                                    [
                                        ("lead_id", "in", targets.ids),
                                        ("task_template_id", "=", visit.id),
                                        ("state", "=", "done"),
                                    ]
                                )
                            )
            samples = {mode: values[1:] for mode, values in samples.items()}
            results[str(size)] = {**compare(samples), "tasks_completed": min(completed)}
            log(
                f"  write {size}: core {results[str(size)]['core']['queries']} q, "
                f"SOP {results[str(size)]['sop']['queries']} q, "
                f"{min(completed)} task(s) completed"
            )
    return results


def insert_leads(env, count, prefix, team, user, partners, source, stages):
    """Insert ``count`` open opportunities in one SQL statement (no ORM, no
    SOP engine), with a mix of customers (two thirds), sources, budgets and
    deadlines so that the engine completes some tasks. Returns the first id."""
    env.cr.execute("SELECT COALESCE(MAX(id), 0) FROM crm_lead")
    first_id = env.cr.fetchone()[0] + 1
    env.cr.execute(
        SQL(
            """INSERT INTO crm_lead (name, type, active, probability,
                    automated_probability, team_id, user_id, company_id,
                    stage_id, partner_id, source_id, priority,
                    expected_revenue, date_deadline, date_open,
                    date_last_stage_update, create_uid, write_uid,
                    create_date, write_date)
             SELECT %(prefix)s || ' ' || g, 'opportunity', TRUE, 10, 10,
                    %(team)s, %(user)s, %(company)s,
                    (%(stages)s::int[])[1 + mod(g, %(stage_count)s)],
                    CASE WHEN mod(g, 3) > 0 THEN (%(partners)s::int[])
                         [1 + mod(g, NULLIF(%(partner_count)s, 0))]
                    END,
                    CASE WHEN mod(g, 2) = 0 THEN %(source)s END,
                    mod(g, 4)::varchar,
                    CASE WHEN mod(g, 2) = 0 THEN 1000 * mod(g, 50) END,
                    CASE WHEN mod(g, 4) = 0 THEN CURRENT_DATE + mod(g, 90) END,
                    %(now)s - make_interval(days => mod(g, 365)), %(now)s,
                    %(uid)s, %(uid)s,
                    %(now)s - make_interval(days => mod(g, 365)), %(now)s
               FROM generate_series(1, %(count)s) AS g""",
            prefix=prefix,
            team=team.id,
            user=user.id,
            company=env.company.id,
            stages=stages.ids,
            stage_count=len(stages),
            partners=partners.ids,
            partner_count=len(partners),
            source=source.id,
            now=env.cr.now(),
            uid=SUPERUSER_ID,
            count=count,
        )
    )
    return first_id


def seed_background(registry, count):
    """Give the bench database closed opportunities (won or lost) with their
    SOP tasks, committed once: tables of a database in use. On near-empty
    tables PostgreSQL caches plans (foreign-key checks among them) that scan
    whole tables, and every insert of a scenario then costs more than the
    previous one. Closed opportunities are never re-mapped when playbooks are
    toggled, so they cost the scenarios nothing else."""
    with registry.cursor() as cr:  # committed
        env = api.Environment(cr, SUPERUSER_ID, {})
        cr.execute(
            "SELECT COUNT(*) FROM crm_lead WHERE name LIKE %s",
            [f"{BACKGROUND} %"],
        )
        missing = count - cr.fetchone()[0]
        if missing <= 0:
            return
        log(f"seeding {missing:,} closed opportunities (once)...")
        started = time.perf_counter()
        set_mode(env, "sop")
        stages = env["crm.stage"].search([("is_won", "=", False)])
        first_id = insert_leads(
            env,
            missing,
            BACKGROUND,
            team=env.ref("sales_team.team_sales_department"),
            user=env.ref("base.user_admin"),
            partners=env["res.partner"],
            source=env["utm.source"].create({"name": BACKGROUND}),
            stages=stages,
        )
        env["crm.sop.task"]._sop_sync_all(everything=True)
        won = env["crm.stage"].search([("is_won", "=", True)], limit=1)
        # even ids won, odd ids lost
        cr.execute(
            SQL(
                """UPDATE crm_lead
                      SET probability = CASE WHEN mod(id, 2) = 0 THEN 100 ELSE 0 END,
                          automated_probability =
                              CASE WHEN mod(id, 2) = 0 THEN 100 ELSE 0 END,
                          stage_id = CASE WHEN mod(id, 2) = 0 THEN %s ELSE stage_id END,
                          active = mod(id, 2) = 0,
                          date_closed = write_date
                    WHERE id >= %s""",
                won.id,
                first_id,
            )
        )
        env.invalidate_all()
        log(f"  done in {time.perf_counter() - started:.0f} s")


def bench_install(registry, args):
    """The post_init_hook on N open opportunities inserted in SQL (as if they
    existed before the install), in a transaction rolled back afterwards."""
    from odoo.addons.crm_sales_sop import _crm_sop_post_init

    with transaction(registry) as env:
        fixture = Fixture(env)
        set_mode(env, "sop")
        started = time.perf_counter()
        first_id = insert_leads(
            env,
            args.leads_100k,
            "Bench Install",
            team=fixture.team,
            user=fixture.salesman,
            partners=fixture.partners,
            source=fixture.source,
            stages=fixture.stages,
        )
        # as before the install: no playbook, no task (the closed background
        # opportunities keep theirs: the hook only maps open ones)
        env.cr.execute(
            SQL(
                """UPDATE crm_lead SET sop_template_id = NULL, sop_progress = 0,
                          sop_stage_id = NULL, sop_next_task_id = NULL
                    WHERE id >= %s""",
                first_id,
            )
        )
        env.cr.execute(SQL("DELETE FROM crm_sop_task WHERE lead_id >= %s", first_id))
        # the planner statistics of a table that has held these rows for long
        env.cr.execute("ANALYZE crm_lead")
        log(
            f"  inserted {args.leads_100k:,} opportunities in "
            f"{time.perf_counter() - started:.1f} s"
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sample = measure(env, lambda: _crm_sop_post_init(env))
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        env.cr.execute(
            SQL(
                """SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'done'),
                          COUNT(DISTINCT lead_id)
                     FROM crm_sop_task WHERE lead_id >= %s""",
                first_id,
            )
        )
        tasks, done, leads_with_tasks = env.cr.fetchone()
        env.cr.execute(
            SQL(
                """SELECT COUNT(*) FILTER (WHERE sop_template_id IS NOT NULL),
                          COUNT(*) FILTER (WHERE sop_next_task_id IS NOT NULL),
                          ROUND(AVG(sop_progress), 1)
                     FROM crm_lead WHERE id >= %s""",
                first_id,
            )
        )
        mapped, with_next, progress = env.cr.fetchone()
    log(
        f"  post_init_hook: {sample.seconds:.1f} s ({sample.sql_seconds:.1f} s in "
        f"SQL), {sample.queries} q, {tasks:,} tasks"
    )
    return {
        "leads": args.leads_100k,
        "seconds": sample.seconds,
        "sql_seconds": sample.sql_seconds,
        "queries": sample.queries,
        "tasks": tasks,
        "tasks_completed": done,
        "leads_with_tasks": leads_with_tasks,
        "leads_with_playbook": mapped,
        "leads_with_next_step": with_next,
        "average_progress": float(progress or 0),
        # ru_maxrss is in KiB on Linux; 0 when the peak was reached earlier
        "peak_rss_growth_mib": round(max(rss_after - rss_before, 0) / 1024, 1),
    }


SCENARIOS = {
    "create": bench_create,
    "kanban": bench_kanban,
    "write": bench_write,
    "install": bench_install,
}


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


def report_rows(results):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    rows = []
    create = results.get("create") or {}
    for size, r in create.items():
        core, sop = r["core"], r["sop"]
        ratio = r["time_ratio"]
        # the engine's own time added to core's time: a low-noise estimate
        estimate = (core["seconds"] + sop["engine_seconds"]) / core["seconds"]
        rows += [
            (
                f"create {size} (s)",
                f"{core['seconds']:.2f}",
                f"{sop['seconds']:.2f}",
                f"{ratio:.2f}x",
                verdict(ratio <= TARGET_CREATE_RATIO, f"<= {TARGET_CREATE_RATIO}x"),
            ),
            (
                f"create {size} (engine s)",
                f"{core['engine_seconds']:.3f}",
                f"{sop['engine_seconds']:.3f}",
                f"~{estimate:.2f}x",
                "core + engine time",
            ),
            (
                f"create {size} (queries)",
                f"{core['queries']:g}",
                f"{sop['queries']:g}",
                f"{r['extra_queries']:+g}",
                f"{r['tasks_created']} tasks, {r['tasks_completed']} auto-done",
            ),
        ]
    if len(create) > 1:
        rows.append(constant_row("create extra queries", create))
    kanban = results.get("kanban")
    if kanban:
        core, sop = kanban["core"], kanban["sop"]
        extra = kanban["extra_queries"]
        rows += [
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
    write = results.get("write") or {}
    for size, r in write.items():
        core, sop = r["core"], r["sop"]
        rows += [
            (
                f"write {size} (queries)",
                f"{core['queries']:g}",
                f"{sop['queries']:g}",
                f"{r['extra_queries']:+g}",
                f"{r['tasks_completed']} task(s) completed",
            ),
            (
                f"write {size} (ms)",
                f"{1000 * core['seconds']:.1f}",
                f"{1000 * sop['seconds']:.1f}",
                f"{r['time_ratio']:.2f}x",
                "",
            ),
        ]
    if len(write) > 1:
        rows.append(constant_row("write extra queries", write))
    install = results.get("install")
    if install:
        rows.append(
            (
                f"install {install['leads']:,} leads",
                "",
                f"{install['seconds']:.1f} s",
                f"{install['tasks']:,} tasks",
                f"{install['queries']} queries, {install['sql_seconds']:.1f} s SQL",
            )
        )
    return rows


def print_report(results, meta, output):
    header = ("scenario", "core", "SOP", "ratio / extra", "target / note")
    rows = [header, *report_rows(results)]
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


def missed_targets(results):
    return [row[0] for row in report_rows(results) if row[4].endswith("MISSED")]


# ------------------------------------------------------------
# main
# ------------------------------------------------------------


def sizes(text):
    return sorted({int(value) for value in text.split(",") if value.strip()})


def names(text):
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare crm_sales_sop with core Odoo CRM (bench/README.md)."
    )
    parser.add_argument(
        "--db", required=True, help="bench database (created when missing)"
    )
    parser.add_argument("--addons-path", required=True, help="Odoo addons path")
    parser.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="runs per figure (median)"
    )
    parser.add_argument(
        "--fast-factor",
        type=int,
        default=5,
        metavar="N",
        help="kanban and write (milliseconds each) run N times --repeat",
    )
    parser.add_argument(
        "--create-sizes",
        type=sizes,
        default=[100, 1000],
        metavar="N,N",
        help="opportunities per create()",
    )
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
    parser.add_argument(
        "--write-sizes",
        type=sizes,
        default=[1, 100],
        metavar="N,N",
        help="opportunities per write()",
    )
    parser.add_argument(
        "--leads-100k",
        type=int,
        default=100_000,
        metavar="N",
        help="opportunities of the install scenario",
    )
    parser.add_argument(
        "--background",
        type=int,
        default=20_000,
        metavar="N",
        help="closed opportunities (with tasks) committed once in the database",
    )
    parser.add_argument(
        "--only",
        type=names,
        default=list(SCENARIOS),
        metavar="NAMES",
        help=f"scenarios to run, among {','.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--no-update",
        action="store_true",
        help="use the database as it is (default: update the addon in it first)",
    )
    parser.add_argument(
        "--recreate",
        action="store_true",
        help="drop the database first and install the addon in a new one",
    )
    parser.add_argument(
        "--drop-db", action="store_true", help="drop the database at the end"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 if a target is missed"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, metavar="FILE", help="JSON file"
    )
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if min(args.repeat, args.fast_factor, args.kanban_limit, args.leads_100k) < 1:
        parser.error("counts must be positive")
    if args.background < 0:
        parser.error("--background cannot be negative")
    if args.kanban_leads < args.kanban_limit:
        parser.error("--kanban-leads must be at least --kanban-limit")
    return args


def revision():
    """The addon's git revision ("-dirty": uncommitted changes measured)."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def main(argv=None):
    args = parse_args(argv)
    if odoo.release.version_info[0] != 18:
        sys.exit(f"error: Odoo 18.0 expected, {odoo.release.version} found")
    config.parse_config(
        ["-d", args.db, "--addons-path", args.addons_path, "--log-level=warn"],
        setup_logging=True,
    )
    started, measured = time.perf_counter(), revision()
    prepare_database(args)
    registry = Registry(args.db)
    drift = schema_drift(registry)
    if drift:
        log(
            f"warning: {args.db} has what the code no longer defines "
            f"({', '.join(drift)}): figures may differ from a fresh install, "
            "run with --recreate"
        )
    seed_background(registry, args.background)
    results = {}
    for name in args.only:
        log(f"{name}...")
        vacuum(args.db)
        results[name] = SCENARIOS[name](registry, args)
    vacuum(args.db)
    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "db": args.db,
        "revision": measured,
        "schema_drift": drift,
        "odoo": odoo.release.version,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "machine": platform.platform(),
        "repeat": args.repeat,
        "fast_factor": args.fast_factor,
        "duration_seconds": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"meta": meta, "results": results}, indent=2) + "\n"
    )
    print_report(results, meta, args.output)
    if args.drop_db:
        log(f"dropping database {args.db}")
        odoo.service.db.exp_drop(args.db)
    missed = missed_targets(results)
    if missed and args.check:
        sys.exit(f"targets missed: {', '.join(missed)}")


if __name__ == "__main__":
    main()

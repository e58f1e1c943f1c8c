"""Scenario ``reminder``: the reminder job (``_cron_sop_reminder``: the stall
pass, then one digest per salesperson due, by batches) over 100,000 open SOP
tasks of 50 salespersons, at a moment when all of them are due; then the same
job again at the same moment (everybody prompted already)."""

import gc
import math
import resource
import statistics
import time
import tracemalloc
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta

import pytz
from fixture import DEFAULT_PLAYBOOK, Fixture, insert_leads, set_mode
from harness import log, measure, rolled_back, sizes, summary, transaction, verdict

from odoo import Command
from odoo.tools import SQL

NAME = "reminder"
# the targets for the whole job, on this machine
TARGET_SECONDS = 60
TARGET_MIB = 50
# the salespersons' time zone: the company's calendar (Monday to Friday,
# 08:00-12:00 and 13:00-17:00) read in it
REP_TZ = "Asia/Shanghai"
# stall days given to some SOP stages of the default playbook (the others:
# never), so that the stall pass has work
STALL_DAYS = {
    "crm_sales_sop.crm_sop_stage_first_contact": 2,
    "crm_sales_sop.crm_sop_stage_build_trust": 3,
}
# how many days back the opportunities' SOP last moved: id modulo this
MOVED_DAYS_SPREAD = 15


def add_arguments(parser):
    parser.add_argument(
        "--reminder-reps",
        type=int,
        default=50,
        metavar="N",
        help="reminder: salespersons (all due at the moment measured)",
    )
    parser.add_argument(
        "--reminder-tasks",
        type=int,
        default=100_000,
        metavar="N",
        help="reminder: open SOP tasks across them (at least)",
    )
    parser.add_argument(
        "--reminder-batch-sizes",
        type=sizes,
        default=[1, 10, 25, 50],
        metavar="N,N",
        help="reminder: salespersons per batch call measured apart",
    )


def check_args(args):
    if min(args.reminder_reps, args.reminder_tasks, *args.reminder_batch_sizes) < 1:
        return "counts must be positive"
    return None


# ------------------------------------------------------------
# what the bench does to the job: commits, time, probes
# ------------------------------------------------------------


@contextmanager
def commits_not_committed(registry):
    """The job commits after the stall pass and after each batch of
    salespersons (``crm.sop.reminder._sop_commit``; not in tests). In the
    bench that helper is replaced, in this process only, by what a commit
    runs before its COMMIT: the flush of pending writes and the precommit
    hooks (the bus notifications of the inbox messages). The calls are
    counted; the scenario's transaction is rolled back at the end, so the
    bench database stays as it was. Yields the list of calls."""
    cls = registry["crm.sop.reminder"]
    own = "_sop_commit" in vars(cls)
    original = cls._sop_commit
    calls = []

    def _sop_commit(self):
        calls.append(self.env.cr.sql_log_count)
        self.env.cr.flush()

    cls._sop_commit = _sop_commit
    try:
        yield calls
    finally:
        if own:
            cls._sop_commit = original
        else:
            del cls._sop_commit


@contextmanager
def calls_probe(registry, model, method):
    """(seconds, queries) of each outermost call of ``model.method``, wrapped
    on the registry's class in this process only: wall time, not a profiler
    (which inflates Python and hides PostgreSQL's share)."""
    cls = registry[model]
    own = method in vars(cls)
    original = getattr(cls, method)
    spent, depth = [], [0]

    def wrapper(self, *args, **kwargs):
        depth[0] += 1
        queries, started = self.env.cr.sql_log_count, time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            depth[0] -= 1
            if not depth[0]:
                spent.append(
                    (
                        time.perf_counter() - started,
                        self.env.cr.sql_log_count - queries,
                    )
                )

    setattr(cls, method, wrapper)
    try:
        yield spent
    finally:
        if own:
            setattr(cls, method, original)
        else:
            delattr(cls, method)


# the parts of the job timed apart
PARTS = {
    "stall pass": ("crm.sop.task", "_sop_flag_stalled"),
    "candidates": ("crm.sop.reminder", "_sop_reminder_candidates"),
    "claim": ("crm.sop.reminder", "_sop_reminder_claim"),
    "digests": ("crm.sop.reminder", "_sop_reminder_digests"),
    "completed today": ("crm.sop.reminder", "_sop_reminder_completed"),
    "posting": ("mail.thread", "message_notify"),
    "batches": ("crm.sop.reminder", "_sop_reminder_batch"),
}


@contextmanager
def part_probes(registry):
    """{part: [(seconds, queries)]} of each of PARTS."""
    with ExitStack() as stack:
        yield {
            part: stack.enter_context(calls_probe(registry, *target))
            for part, target in PARTS.items()
        }


def parts_of(spent):
    """{part: {calls, seconds, queries}} of part_probes' lists."""
    return {
        part: {
            "calls": len(calls),
            "seconds": sum(seconds for seconds, _queries in calls),
            "queries": sum(queries for _seconds, queries in calls),
        }
        for part, calls in spent.items()
    }


# ------------------------------------------------------------
# memory
# ------------------------------------------------------------


def proc_status_kib(key):
    """A "VmRSS"/"VmHWM" line of /proc/self/status, in KiB (None elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_rss_peak():
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux:
    ``echo 5 > /proc/self/clear_refs``). False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


@contextmanager
def rss_growth():
    """The peak RSS growth of the block, in MiB (``result["mib"]``): VmHWM
    after (reset before) less VmRSS before; without /proc/self/clear_refs,
    the growth of ``ru_maxrss`` (0 when the process peaked earlier)."""
    result = {}
    gc.collect()
    if reset_rss_peak() and proc_status_kib("VmRSS") is not None:
        before = proc_status_kib("VmRSS")
        yield result
        result["mib"] = (proc_status_kib("VmHWM") - before) / 1024
        result["how"] = "VmHWM - VmRSS"
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        yield result
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result["mib"] = max(after - before, 0) / 1024
        result["how"] = "ru_maxrss"


# ------------------------------------------------------------
# data
# ------------------------------------------------------------


def due_moment(env, today):
    """The next Tuesday after ``today``, the company's start offset after
    08:00 in the salespersons' time zone (08:30 by default), as naive UTC:
    every salesperson is due for their start-of-day prompt."""
    tuesday = today + timedelta(days=(1 - today.weekday()) % 7 or 7)
    local = datetime.combine(tuesday, datetime.min.time()) + timedelta(
        hours=8, minutes=env.company.sop_reminder_start_offset
    )
    return (
        pytz.timezone(REP_TZ).localize(local).astimezone(pytz.utc).replace(tzinfo=None)
    )


def create_reps(env, count):
    """``count`` salespersons in the Shanghai time zone, inbox notifications,
    an email address each, on the company's calendar (no resource of their
    own: the job falls back to the company's)."""
    return (
        env["res.users"]
        .with_context(no_reset_password=True)
        .create(
            [
                {
                    "name": f"Bench Rep {index:02d}",
                    "login": f"bench_rem_rep_{index:02d}",
                    "email": f"bench.rep{index:02d}@example.com",
                    "tz": REP_TZ,
                    "lang": "en_US",
                    "notification_type": "inbox",
                    "groups_id": [
                        Command.set([env.ref("sales_team.group_sale_salesman").id])
                    ],
                }
                for index in range(count)
            ]
        )
    )


def open_tasks(env, first_id):
    env.cr.execute(
        SQL(
            """SELECT COUNT(*) FROM crm_sop_task
                WHERE lead_id >= %s AND active AND state = 'todo'""",
            first_id,
        )
    )
    return env.cr.fetchone()[0]


def seed(env, args, fixture, moment):
    """Open opportunities assigned in turn to the salespersons, inserted in
    SQL, given their tasks by the engine's install path (``_sop_sync_all``:
    tasks inserted in SQL, evaluated by chunks) until they hold at least
    ``--reminder-tasks`` open tasks; their SOP moved 0 to 14 days before the
    moment measured; stall days on two SOP stages. Untimed. Returns the
    salespersons and the figures of the data."""
    started = time.perf_counter()
    reps = create_reps(env, args.reminder_reps)
    for xmlid, days in STALL_DAYS.items():
        env.ref(xmlid).stall_days = days
    per_lead = len(env.ref(DEFAULT_PLAYBOOK).task_template_ids) or 1
    first_id, tasks, leads = None, 0, 0
    Engine = env["crm.sop.engine"]
    # the engine completes some tasks at once (contact details, source...):
    # top up until the open tasks are there
    while tasks < args.reminder_tasks:
        missing = args.reminder_tasks - tasks
        count = math.ceil(missing / (per_lead if not leads else tasks / leads))
        first = insert_leads(
            env,
            count,
            "Bench Reminder",
            team=fixture.team,
            user=reps,
            partners=fixture.partners,
            source=fixture.source,
            stages=fixture.stages,
        )
        first_id = first_id or first
        leads += count
        Engine._sop_sync_all()
        env.invalidate_all(flush=True)
        tasks = open_tasks(env, first_id)
    env.cr.execute(
        SQL(
            """UPDATE crm_lead
                  SET sop_stage_date = %s - make_interval(days => mod(id, %s))
                WHERE id >= %s""",
            moment,
            MOVED_DAYS_SPREAD,
            first_id,
        )
    )
    env.invalidate_all()
    env.cr.execute("ANALYZE crm_lead")
    env.cr.execute("ANALYZE crm_sop_task")
    env.cr.execute("ANALYZE crm_sop_reminder")
    env.cr.execute(
        SQL(
            """SELECT COUNT(*), COUNT(*) FILTER (WHERE sop_next_task_id IS NOT NULL)
                 FROM crm_lead WHERE id >= %s""",
            first_id,
        )
    )
    leads, with_next = env.cr.fetchone()
    log(
        f"  {len(reps)} salespersons, {leads:,} opportunities ({with_next:,} with a "
        f"next step), {tasks:,} open tasks in {time.perf_counter() - started:.1f} s"
    )
    return (
        reps,
        first_id,
        {
            "reps": len(reps),
            "leads": leads,
            "leads_with_next_step": with_next,
            "open_tasks": tasks,
        },
    )


def ledger_rows(env):
    env.cr.execute("SELECT COUNT(*) FROM crm_sop_reminder")
    return env.cr.fetchone()[0]


def stalled_leads(env):
    env.cr.execute("SELECT COUNT(*) FROM crm_lead WHERE sop_stalled")
    return env.cr.fetchone()[0]


# ------------------------------------------------------------
# the scenario
# ------------------------------------------------------------


def run(registry, args):
    """The whole job as Odoo's cron runs it (superuser, the cron's progress
    record in the context), ``now`` being the moment measured (the cursor's
    transaction timestamp, which the job reads), in a transaction rolled back
    at the end. Each run in a savepoint: the job, then the same job again."""
    with transaction(registry) as env, commits_not_committed(registry) as commits:
        fixture = Fixture(env)
        set_mode(env, "sop")
        moment = due_moment(env, env.cr.now().date())
        reps, first_id, data = seed(env, args, fixture, moment)
        cron = env.ref("crm_sales_sop.ir_cron_sop_reminder")
        progress = env["ir.cron.progress"].create({"cron_id": cron.id})
        Reminder = env["crm.sop.reminder"].with_context(
            lastcall=moment - timedelta(minutes=15), ir_cron_progress_id=progress.id
        )
        env.cr.flush()

        def job():
            env.cr._now = moment  # the job's now: the transaction's timestamp
            Reminder._cron_sop_reminder()

        # the first pair warms the ormcaches (QWeb template, translations) up,
        # as a cron worker in use has them: left out of the medians
        runs = []
        for index in range(args.repeat + 1):
            with rolled_back(env):
                before = ledger_rows(env), len(commits)
                with rss_growth() as rss, part_probes(registry) as spent:
                    first = measure(env, job)
                first_parts = parts_of(spent)
                prompts = ledger_rows(env) - before[0]
                first_commits = len(commits) - before[1]
                stalled = stalled_leads(env)
                progress.invalidate_recordset()
                done = (progress.done, progress.remaining)
                with part_probes(registry) as spent:
                    second = measure(env, job)
                second_parts = parts_of(spent)
                again = ledger_rows(env) - before[0] - prompts
            runs.append(
                {
                    "first": first,
                    "first_parts": first_parts,
                    "prompts": prompts,
                    "commits": first_commits,
                    "stalled": stalled,
                    "progress_done_remaining": done,
                    "rss_growth_mib": rss["mib"],
                    "rss_how": rss["how"],
                    "second": second,
                    "second_parts": second_parts,
                    "second_prompts": again,
                }
            )
            log(
                f"  run {index}{' (warm-up)' if not index else ''}: "
                f"{first.seconds:.2f} s, {first.queries} q, {prompts} prompts, "
                f"{stalled:,} stalled, RSS +{rss['mib']:.1f} MiB; again: "
                f"{1000 * second.seconds:.0f} ms, {second.queries} q, {again} prompts"
            )
        # Python's own allocations, in a run of their own (tracing slows it)
        with rolled_back(env):
            tracemalloc.start()
            try:
                traced = measure(env, job)
                _current, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        log(
            f"  tracemalloc run: peak {peak / 2**20:.1f} MiB "
            f"({traced.seconds:.1f} s under tracing)"
        )
        end = measure_end(env, registry, args, Reminder, moment, first_id)
        batches = measure_batches(env, registry, args, reps, moment)
    measured = runs[1:]
    first = summary([r["first"] for r in measured])
    second = summary([r["second"] for r in measured])
    return {
        **data,
        "moment_utc": moment.isoformat(sep=" "),
        "moment_local": pytz.utc.localize(moment)
        .astimezone(pytz.timezone(REP_TZ))
        .strftime("%a %Y-%m-%d %H:%M %Z"),
        "job": first,
        "parts": median_parts(measured, "first_parts"),
        "prompts": min(r["prompts"] for r in measured),
        "commits": min(r["commits"] for r in measured),
        "stalled": min(r["stalled"] for r in measured),
        "progress_done_remaining": measured[-1]["progress_done_remaining"],
        "rss_growth_mib": max(r["rss_growth_mib"] for r in measured),
        "rss_how": measured[-1]["rss_how"],
        "tracemalloc_peak_mib": peak / 2**20,
        "warm_up": {
            "seconds": runs[0]["first"].seconds,
            "queries": runs[0]["first"].queries,
            "rss_growth_mib": runs[0]["rss_growth_mib"],
        },
        "second": second,
        "second_parts": median_parts(measured, "second_parts"),
        "second_prompts": max(r["second_prompts"] for r in measured),
        "batches": batches,
        "end": end,
    }


def end_moment(env, moment):
    """The end-of-day prompt of the same day: the company's end offset before
    17:00 in the salespersons' time zone (16:00 by default), as naive UTC."""
    return (
        moment
        - timedelta(minutes=env.company.sop_reminder_start_offset)
        + timedelta(hours=9, minutes=-env.company.sop_reminder_end_offset)
    )


def measure_end(env, registry, args, Reminder, moment, first_id):
    """The job at the end-of-day moment, whose digests list the tasks each
    salesperson completed today (the one query of the job that reads
    crm_sop_task): 1 open task in 50 set done at 10:00 local time in SQL
    before each run (untimed; the opportunities' summaries are left as they
    were, the job does not read them from the tasks). A warm-up run first."""
    at = end_moment(env, moment)
    done_at = moment + timedelta(minutes=90)
    samples, parts, prompts, completed = [], [], [], 0
    for index in range(args.repeat + 1):
        with rolled_back(env):
            env.cr.execute(
                SQL(
                    """UPDATE crm_sop_task SET state = 'done', date_done = %s
                        WHERE lead_id >= %s AND active AND state = 'todo'
                          AND mod(id, 50) = 0""",
                    done_at,
                    first_id,
                )
            )
            completed = env.cr.rowcount
            before = ledger_rows(env)

            def job():
                env.cr._now = at
                Reminder._cron_sop_reminder()

            with part_probes(registry) as spent:
                sample = measure(env, job)
            if index:
                samples.append(sample)
                parts.append({"parts": parts_of(spent)})
                prompts.append(ledger_rows(env) - before)
        log(
            f"  end of day{' (warm-up)' if not index else ''}: "
            f"{sample.seconds:.2f} s, {sample.queries} q, {completed:,} tasks "
            f"completed today"
        )
    return {
        "moment_utc": at.isoformat(sep=" "),
        "tasks_completed_today": completed,
        "prompts": min(prompts),
        "job": summary(samples),
        "parts": median_parts(parts, "parts"),
    }


def median_parts(runs, key):
    """{part: {calls, seconds, queries}}: the medians over ``runs``."""
    return {
        part: {
            figure: statistics.median(r[key][part][figure] for r in runs)
            for figure in ("calls", "seconds", "queries")
        }
        for part in PARTS
    }


def measure_batches(env, registry, args, reps, moment):
    """``_sop_reminder_batch`` alone for the first N salespersons, each size
    in a savepoint after the stall pass (untimed), a batch of 1 first to warm
    up: the queries besides the messages should not depend on N."""
    Reminder = env["crm.sop.reminder"]
    Engine = env["crm.sop.engine"]
    user_ids = reps.ids
    results = {}
    for index, size in enumerate([1, *args.reminder_batch_sizes]):
        size = min(size, len(user_ids))
        with rolled_back(env):
            env.cr._now = moment
            Engine._sop_flag_stalled(now=moment)
            with calls_probe(registry, *PARTS["posting"]) as posting:
                sample = measure(
                    env,
                    lambda n=size: Reminder._sop_reminder_batch(user_ids[:n], moment),
                )
        if not index:
            continue  # the warm-up
        posted_queries = sum(queries for _s, queries in posting)
        results[str(size)] = {
            "seconds": sample.seconds,
            "queries": sample.queries,
            "messages": len(posting),
            "posting_queries": posted_queries,
            "posting_seconds": sum(seconds for seconds, _q in posting),
            "other_queries": sample.queries - posted_queries,
        }
    log(
        "  batches: "
        + ", ".join(
            f"{n} reps {r['queries']} q ({r['other_queries']} besides posting)"
            for n, r in results.items()
        )
    )
    return results


def report_rows(r):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    job, parts = r["job"], r["parts"]
    posting = parts["posting"]
    label = f"reminder {r['open_tasks']:,} tasks, {r['reps']} reps"
    rows = [
        (
            f"{label} (s)",
            "",
            f"{job['seconds']:.2f}",
            f"{job['queries']} q, {job['sql_seconds']:.2f} s SQL",
            verdict(job["seconds"] < TARGET_SECONDS, f"< {TARGET_SECONDS} s"),
        ),
        (
            "reminder parts (s / q)",
            "",
            "",
            ", ".join(
                f"{part} {parts[part]['seconds']:.2f}/{parts[part]['queries']}"
                for part in ("stall pass", "candidates", "claim", "digests")
            ),
            f"{r['prompts']} prompts, {r['stalled']:,} stalled, "
            f"{r['commits']} commits (not committed)",
        ),
        (
            "reminder posting messages",
            "",
            f"{posting['seconds']:.2f}",
            f"{100 * posting['seconds'] / job['seconds']:.0f} % of the time",
            f"{posting['calls']} message_notify, {posting['queries']} q",
        ),
        (
            "reminder peak memory (MiB)",
            "",
            f"{r['tracemalloc_peak_mib']:.1f}",
            f"RSS +{r['rss_growth_mib']:.1f}",
            verdict(
                max(r["tracemalloc_peak_mib"], r["rss_growth_mib"]) < TARGET_MIB,
                f"< {TARGET_MIB} MB",
            ),
        ),
    ]
    for size, b in r["batches"].items():
        rows.append(
            (
                f"reminder batch of {size} rep(s) (q)",
                "",
                f"{b['queries']}",
                f"{b['other_queries']} + {b['posting_queries']} posting",
                f"{b['messages']} messages, {1000 * b['seconds']:.0f} ms",
            )
        )
    others = {b["other_queries"] for b in r["batches"].values()}
    rows.append(
        (
            "reminder batch q besides posting",
            "",
            "",
            "constant" if len(others) == 1 else "NOT constant",
            verdict(len(others) == 1, "constant"),
        )
    )
    end, end_parts = r["end"]["job"], r["end"]["parts"]
    rows.append(
        (
            "reminder at the end of the day (s)",
            "",
            f"{end['seconds']:.2f}",
            f"{end['queries']} q, completed today "
            f"{1000 * end_parts['completed today']['seconds']:.0f} ms",
            verdict(end["seconds"] < TARGET_SECONDS, f"< {TARGET_SECONDS} s")
            + f", {r['end']['prompts']} prompts, "
            f"{r['end']['tasks_completed_today']:,} tasks done today",
        )
    )
    second = r["second"]
    rows.append(
        (
            "reminder again, same moment",
            "",
            f"{1000 * second['seconds']:.0f} ms",
            f"{second['queries']} q, of which the stall pass "
            f"{1000 * r['second_parts']['stall pass']['seconds']:.0f} ms "
            f"{r['second_parts']['stall pass']['queries']:g} q",
            verdict(not r["second_prompts"], "0 prompts"),
        )
    )
    return rows

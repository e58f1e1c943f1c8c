"""What the scenarios work on: the playbook modes, a scenario's users, team,
customers and tags, opportunities inserted in SQL, and the closed background
opportunities committed once in a bench database."""

import sys
import time

from harness import log

from odoo import SUPERUSER_ID, Command, api
from odoo.tools import SQL

DEFAULT_PLAYBOOK = "crm_sales_sop.crm_sop_template_default"
BACKGROUND = "Bench Background"


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


def insert_leads(env, count, prefix, team, user, partners, source, stages):
    """Insert ``count`` open opportunities in one SQL statement (no ORM, no
    SOP engine), with a mix of customers (two thirds), sources, budgets and
    deadlines so that the engine completes some tasks. ``user``: their
    salesperson, or several, who take the opportunities in turn. Returns the
    first id."""
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
                    %(team)s, (%(users)s::int[])[1 + mod(g, %(user_count)s)],
                    %(company)s,
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
            users=user.ids,
            user_count=len(user),
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


def recount_history(env):
    """Closed deals inserted in SQL are counted in the history counts the
    uplift and the coaching queue read, as if they had closed through the
    ORM (crm.sop.history.count)."""
    if "crm.sop.history.count" in env:
        env["crm.sop.history.count"]._sop_rebuild()
    if "crm.sop.task.fact" in env:
        env["crm.sop.task.fact"]._sop_rebuild()


def seed_background(registry, count):
    """Give the bench database closed opportunities (won or lost) with their
    SOP tasks, committed once: tables of a database in use. On near-empty
    tables PostgreSQL caches plans (foreign-key checks among them) that scan
    whole tables, and every insert of a scenario then costs more than the
    previous one. Closed opportunities are never re-mapped when playbooks are
    toggled, so they cost the scenarios nothing else. A database with core
    crm alone (no addon) receives the same opportunities, without tasks."""
    with registry.cursor() as cr:  # committed
        env = api.Environment(cr, SUPERUSER_ID, {})
        cr.execute(
            "SELECT COUNT(*) FROM crm_lead WHERE name LIKE %s",
            [f"{BACKGROUND} %"],
        )
        missing = count - cr.fetchone()[0]
        if missing <= 0:
            return
        log(f"seeding {missing:,} closed opportunities in {registry.db_name} (once)...")
        started = time.perf_counter()
        addon = "crm.sop.task" in env
        if addon:
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
        if addon:
            env["crm.sop.engine"]._sop_sync_all(everything=True)
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
        recount_history(env)
        log(f"  done in {time.perf_counter() - started:.0f} s")


def run_setup_job(env, batches=None):
    """The setup job as Odoo's cron runner calls it: a progress record, the
    job's server action, what the commit would run (the review facts
    pending), again while its progress says some deals wait. Each batch's
    seconds go to ``batches`` when given (how long a batch holds its
    deals)."""
    cron = env.ref("crm_sales_sop.ir_cron_sop_setup")
    while True:
        started = time.perf_counter()
        cron_in_progress, progress = cron._add_progress()
        cron_in_progress._callback(cron.cron_name, cron.ir_actions_server_id.id)
        env.flush_all()
        env.cr.precommit.run()
        if batches is not None:
            batches.append(time.perf_counter() - started)
        if not progress.remaining:
            return

"""The demo's history: a year of closed deals for the two demo teams, made by
the product's own paths, then dated in the past.

Run from demo/crm_sop_demo.xml only (``<function model="crm.sop.demo"
name="_sop_demo_history"/>``), so only a database installed with demo data
gets it. Deterministic: one seeded ``random.Random``.

How a deal is made: it is created (``create`` of a list) in the first
pipeline stage with the data its fields tasks want, the engine gives it its
tasks; its scripts are sent (``crm.sop.script.send._sop_record``, copied for a
messenger: delivered), its calls and meetings recorded done
(``crm.sop.activity.done._sop_record``), its tasks ticked by hand
(``action_sop_mark_done``) or set aside with a reason (``_sop_set_aside``),
stage by stage, by its salesperson; it moves through the pipeline by
``write`` (the stage moves and the SOP stage history are the product's own),
and is won or lost. Everything is grouped so that each step is one call per
salesperson. A won deal did more of its SOP than a lost one, so that the
uplift and the playbook comparison have something to show.

Then the history is dated: the ORM writes "now", and neither the ORM nor
the engine can write a past date into the creation of a deal, its stage
moves, its SOP stage history, its tasks done, its scripts sent or its
activities done (the engine's records refuse ORM writes to everyone). A few
batched UPDATEs ... FROM (VALUES ...) give each its date in the deal's
timeline, planned here.
"""

import random
from collections import defaultdict
from datetime import timedelta

from odoo import api, models
from odoo.tools import SQL

# closed deals per demo team over the last year
DEMO_CLOSED_PER_TEAM = 160
# open deals per team: some stalled, all with tasks for today
DEMO_OPEN_PER_TEAM = 8
# closed deals per team in the current month (the board's figures)
DEMO_CLOSED_THIS_MONTH = 10

SURNAMES = [
    "Zhao", "Qian", "Sun", "Zhou", "Wu", "Zheng", "Feng", "Chen", "Chu", "Wei",
    "Jiang", "Shen", "Han", "Yang", "Zhu", "Qin", "Xu", "He", "Lü", "Shi",
    "Zhang", "Kong", "Cao", "Yan", "Hua", "Jin", "Tao", "Xie", "Zou", "Pan",
]  # fmt: skip
GIVEN_NAMES = [
    "Min", "Jing", "Lei", "Yan", "Jun", "Xia", "Tao", "Fang", "Hui", "Qiang",
    "Ling", "Bo", "Na", "Peng", "Yu", "Hao", "Li", "Ting", "Kai", "Xin",
    "Yifan", "Ruoxi", "Zihan", "Haoran", "Yuxuan", "Shuang", "Wenjie", "Lan",
]  # fmt: skip
CITIES = ["Shanghai", "Hangzhou", "Suzhou", "Nanjing", "Ningbo", "Wuxi", "Hefei"]
# (category, revenue range) of what a furniture showroom sells
PRODUCTS = [
    ("Bed", 6000, 28000),
    ("Sofa", 5000, 36000),
    ("Wardrobe", 8000, 30000),
    ("Dining set", 4000, 22000),
    ("Mattress", 2500, 15000),
    ("Bookshelf", 1500, 9000),
    ("Children's room", 7000, 26000),
]
STYLES = ["Modern", "Nordic", "New Chinese", "Minimalist", "Light luxury"]
COMPANIONS = ["Alone", "Spouse", "Husband", "Wife and daughter", "Parents"]
DECISION_MAKERS = ["The customer", "The couple", "Her parents", "The customer's wife"]
ASIDE_REASONS = [
    "The customer asked for a quote by WeChat only",
    "Returning customer: we already know them",
    "Bought online, no visit planned",
]


class CrmSopDemo(models.AbstractModel):
    _name = "crm.sop.demo"
    _description = "Sales SOP Demo History"

    @api.model
    def _sop_demo_history(self):
        """A year of closed deals and a few open ones for the demo teams
        (Sales with the standard playbook, Showroom with its own), made by
        the product's paths and dated in the past (see the module's
        docstring). Called by the demo data only."""
        rng = random.Random(20261204)
        now = self.env.cr.now().replace(microsecond=0)
        month_start = now.replace(day=1, hour=0, minute=0, second=0)
        ref = self.env.ref
        stages = [
            ref("crm.stage_lead1"),
            ref("crm.stage_lead2"),
            ref("crm.stage_lead3"),
        ]
        won_stage = ref("crm.stage_lead4")
        teams = [
            (
                ref("sales_team.team_sales_department"),
                ref("crm_sales_sop.crm_sop_template_default"),
                ref("crm_sales_sop.user_sop_rep_li"),
            ),
            (
                ref("crm_sales_sop.crm_team_sop_showroom"),
                ref("crm_sales_sop.crm_sop_template_showroom"),
                ref("crm_sales_sop.user_sop_rep_han")
                | ref("crm_sales_sop.user_sop_rep_zhang"),
            ),
        ]
        # the pipeline stage (0-2) of each task template's SOP stage
        levels = {stage: level for level, stage in enumerate(stages)}
        plans = []
        for team, playbook, reps in teams:
            task_templates = playbook.stage_ids.task_template_ids
            plans += self._sop_demo_plan(
                rng,
                now,
                month_start,
                (team, playbook, reps),
                {tt: levels[tt.stage_id.crm_stage_id] for tt in task_templates},
            )
        leads = self._sop_demo_make(rng, plans, stages, won_stage)
        self._sop_demo_date(rng, plans, leads)
        # the open deals whose SOP has not moved for long are stalled now
        self.env["crm.sop.engine"]._sop_flag_stalled()

    # ------------------------------------------------------------
    # PLAN: who, what, how far, when
    # ------------------------------------------------------------

    @api.model
    def _sop_demo_plan(self, rng, now, month_start, team_playbook_reps, levels):
        """One dict per deal of the team: its values, its outcome ('won',
        'lost', 'open'), how far in the pipeline it went (0-2), its dates
        (created, entered each stage, closed or now), and which tasks it did
        (``levels``: {task template: its pipeline stage})."""
        team, playbook, reps = team_playbook_reps
        plans = []
        count = DEMO_CLOSED_PER_TEAM + DEMO_OPEN_PER_TEAM
        for index in range(count):
            if index < DEMO_OPEN_PER_TEAM:
                outcome = "open"
            else:
                outcome = "won" if rng.random() < 0.45 else "lost"
            # how far it went: won deals went through; lost ones stopped early
            if outcome == "won":
                reached = 2
            else:
                reached = rng.choices([0, 1, 2], [0.45, 0.35, 0.2])[0]
            if outcome == "open":
                # stalled ones wait for weeks, others moved days ago
                end = now
                days = rng.uniform(8, 40) if index % 2 else rng.uniform(1, 6)
            else:
                closed_index = index - DEMO_OPEN_PER_TEAM
                if closed_index < DEMO_CLOSED_THIS_MONTH:
                    end = month_start + (now - month_start) * rng.uniform(0.05, 0.95)
                else:
                    end = now - timedelta(days=rng.uniform(1, 360))
                days = rng.uniform(14, 70) if outcome == "won" else rng.uniform(3, 45)
            start = end - timedelta(days=days, minutes=rng.randint(0, 600))
            # when it entered each pipeline stage it reached
            cuts = sorted(rng.uniform(0.15, 0.85) for _i in range(reached))
            entered = [start] + [start + (end - start) * cut for cut in cuts]
            category, low, high = rng.choice(PRODUCTS)
            revenue = round(rng.uniform(low, high), -2)
            plan = {
                "team": team,
                "playbook": playbook,
                "user": reps[index % len(reps)],
                "outcome": outcome,
                "reached": reached,
                "start": start,
                "end": end,
                "entered": entered,
                "category": category,
                "revenue": revenue,
                "levels": levels,
                "done": set(),
                "aside": set(),
            }
            # which tasks it did: a task of a stage it reached, more often on
            # a deal it won (the SOP works), never in a stage it never saw
            for task_template, level in levels.items():
                if level > reached:
                    continue
                chance = 0.85 if outcome == "won" else 0.45
                if level < reached and task_template.required:
                    # the block gate of the showroom: required tasks done to
                    # leave the stage
                    if task_template.stage_id.gate == "block":
                        chance = 1.0
                    else:
                        chance += 0.1
                roll = rng.random()
                if roll < chance:
                    plan["done"].add(task_template)
                elif not task_template.required and roll > 0.9:
                    plan["aside"].add(task_template)
            plans.append(plan)
        return plans

    # ------------------------------------------------------------
    # MAKE: the deals, through the product's own paths
    # ------------------------------------------------------------

    @api.model
    def _sop_demo_make(self, rng, plans, stages, won_stage):
        """Create the deals and walk them through their stages; returns the
        leads in the order of ``plans``."""
        partners = self._sop_demo_customers(rng, plans)
        lead_vals = self._sop_demo_lead_vals(rng, plans, partners, stages)
        leads = self._sop_demo_create(plans, lead_vals)
        self._sop_demo_walk(plans, leads, stages)
        self._sop_demo_close(rng, plans, leads, won_stage)
        return leads

    @api.model
    def _sop_demo_customers(self, rng, plans):
        """The customers, one per deal, with the customer fields its done
        tasks want."""
        Partner = self.env["res.partner"].with_context(tracking_disable=True)
        partner_vals = []
        for plan in plans:
            name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN_NAMES)}"
            done_fields = {
                field.name
                for task_template in plan["done"]
                if task_template.kind == "fields" and task_template.scope == "customer"
                for field in task_template.field_ids
            }
            vals = {"name": name, "city": rng.choice(CITIES)}
            if "x_sop_gender" in done_fields:
                vals["x_sop_gender"] = rng.choice(["female", "male"])
            if "x_sop_age_range" in done_fields:
                vals["x_sop_age_range"] = rng.choice(
                    ["25_34", "35_44", "35_44", "45_54", "55_plus"]
                )
            if "phone" in done_fields:
                vals["phone"] = (
                    f"+86 13{rng.randint(0, 9)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
                )
            partner_vals.append(vals)
        return Partner.create(partner_vals)

    @api.model
    def _sop_demo_lead_vals(self, rng, plans, partners, stages):
        """The values of each deal: what its done tasks want (fields,
        conditions), in the first pipeline stage."""
        sources = self.env["utm.source"].search([], limit=5)
        lead_vals = []
        for plan, partner in zip(plans, partners, strict=True):
            done = plan["done"]
            done_fields = {
                field.name
                for task_template in done
                if task_template.kind == "fields"
                and task_template.scope == "opportunity"
                for field in task_template.field_ids
            }
            conditions = " ".join(
                task_template.domain or ""
                for task_template in done
                if task_template.kind == "condition"
            )
            budget = (
                "expected_revenue" in done_fields
                or "expected_revenue" in conditions
                or plan["outcome"] == "won"
            )
            vals = {
                "name": f"{partner.name}: {plan['category'].lower()}",
                "type": "opportunity",
                "partner_id": partner.id,
                "team_id": plan["team"].id,
                "user_id": plan["user"].id,
                "stage_id": stages[0].id,
                "expected_revenue": plan["revenue"] if budget else 0,
                "priority": rng.choice(["2", "3"])
                if "priority" in conditions
                else rng.choice(["0", "1"]),
            }
            optional = {
                "source_id": lambda: rng.choice(sources).id if sources else False,
                "x_sop_companions": lambda: rng.choice(COMPANIONS),
                "x_sop_decision_makers": lambda: rng.choice(DECISION_MAKERS),
                "x_sop_intended_category": lambda p=plan: p["category"],
                "x_sop_intended_style": lambda: rng.choice(STYLES),
                "date_deadline": lambda p=plan: (
                    p["end"] + timedelta(days=rng.randint(0, 20))
                ).date(),
            }
            for name, value in optional.items():
                if name in done_fields:
                    vals[name] = value()
            lead_vals.append(vals)
        return lead_vals

    @api.model
    def _sop_demo_create(self, plans, lead_vals):
        """The deals created by their salesperson: the tasks their data
        completes are theirs (the board credits who completed a task)."""
        Lead = self.env["crm.lead"].with_context(
            tracking_disable=True, mail_create_nolog=True, mail_notrack=True
        )
        by_user = defaultdict(list)
        for index, plan in enumerate(plans):
            by_user[plan["user"]].append(index)
        lead_ids = [None] * len(plans)
        for user, indexes in by_user.items():
            created = Lead.with_user(user).create([lead_vals[i] for i in indexes])
            for index, lead_id in zip(indexes, created.ids, strict=True):
                lead_ids[index] = lead_id
        return Lead.browse(lead_ids)

    @api.model
    def _sop_demo_walk(self, plans, leads, stages):
        """Stage by stage: the SOP of the stage, then the move to the next."""
        for level in range(len(stages)):
            here = [
                (plan, lead)
                for plan, lead in zip(plans, leads, strict=True)
                if plan["reached"] >= level
            ]
            self._sop_demo_work(here, level)
            if level + 1 < len(stages):
                onward = [(p, lead) for p, lead in here if p["reached"] > level]
                self._sop_demo_by_user(
                    onward,
                    lambda batch, s=stages[level + 1]: batch.write({"stage_id": s.id}),
                )

    @api.model
    def _sop_demo_close(self, rng, plans, leads, won_stage):
        """The outcome: won, or lost for a reason."""
        won = [
            (p, lead)
            for p, lead in zip(plans, leads, strict=True)
            if p["outcome"] == "won"
        ]
        self._sop_demo_by_user(
            won, lambda batch: batch.write({"stage_id": won_stage.id})
        )
        reasons = [
            self.env.ref("crm.lost_reason_1"),
            self.env.ref("crm.lost_reason_2"),
            self.env.ref("crm.lost_reason_3"),
        ]
        by_reason = defaultdict(list)
        for plan, lead in zip(plans, leads, strict=True):
            if plan["outcome"] == "lost":
                by_reason[rng.choices(reasons, [0.5, 0.2, 0.3])[0]].append((plan, lead))
        for reason, pairs in by_reason.items():
            self._sop_demo_by_user(
                pairs,
                lambda batch, r=reason: batch.action_set_lost(lost_reason_id=r.id),
            )

    @api.model
    def _sop_demo_by_user(self, pairs, call):
        """``call(leads)`` once per salesperson, as them."""
        by_user = defaultdict(list)
        for plan, lead in pairs:
            by_user[plan["user"]].append(lead.id)
        for user, lead_ids in by_user.items():
            call(
                self.env["crm.lead"]
                .with_user(user)
                .with_context(tracking_disable=True, mail_notrack=True)
                .browse(lead_ids)
            )

    @api.model
    def _sop_demo_work(self, pairs, level):
        """The tasks of the SOP stages of pipeline stage ``level`` the deals
        did by hand, by script or by activity, and those set aside: one call
        per (salesperson, task template)."""
        groups = defaultdict(list)
        for plan, lead in pairs:
            for task_template in plan["done"] | plan["aside"]:
                if plan["levels"][task_template] != level:
                    continue
                aside = task_template in plan["aside"]
                if aside or task_template.kind in ("script", "activity", "manual"):
                    groups[plan["user"], task_template, aside].append(lead.id)
        for (user, task_template, aside), lead_ids in groups.items():
            leads = self.env["crm.lead"].with_user(user).browse(lead_ids)
            tasks = (
                self.env["crm.sop.task"]
                .with_user(user)
                .search(
                    [
                        ("lead_id", "in", lead_ids),
                        ("task_template_id", "=", task_template.id),
                        ("state", "=", "todo"),
                    ]
                )
            )
            if aside:
                reason = ASIDE_REASONS[task_template.id % len(ASIDE_REASONS)]
                tasks._sop_set_aside(reason)
            elif task_template.kind == "manual":
                tasks.action_sop_mark_done()
            elif task_template.kind == "script":
                self.env["crm.sop.script.send"].with_user(user)._sop_record(
                    leads, task_template.mail_template_id, "copy"
                )
            elif task_template.kind == "activity":
                self.env["crm.sop.activity.done"].with_user(user)._sop_record(
                    [
                        (lead_id, task_template.activity_type_id.id)
                        for lead_id in lead_ids
                    ]
                )
                self.env["crm.sop.engine"].with_user(user)._sop_evaluate(leads)

    # ------------------------------------------------------------
    # DATE: the history in the past, in a few batched statements
    # ------------------------------------------------------------

    @api.model
    def _sop_demo_date(self, rng, plans, leads):
        """Give the deals, their stage moves, SOP stage history, tasks done,
        scripts sent, activities done and messages the dates of their
        planned timelines. SQL: these dates are history, which the ORM
        writes as "now" (create_date, date_closed) or not at all (the
        engine's records)."""
        self.env.flush_all()
        self._sop_demo_date_deals(plans, leads)
        self._sop_demo_date_moves(plans, leads)
        self._sop_demo_date_stints(leads)
        self._sop_demo_date_tasks(rng, plans, leads)
        self._sop_demo_date_records(leads)
        self.env.invalidate_all()

    @api.model
    def _sop_demo_date_deals(self, plans, leads):
        """The deals: created, last moved, closed."""
        cr = self.env.cr
        cr.execute(
            SQL(
                """UPDATE crm_lead l
                      SET create_date = v.start, write_date = v.stop,
                          date_open = v.start, date_conversion = v.start,
                          date_last_stage_update = v.moved,
                          sop_stage_date = v.moved,
                          date_closed = CASE WHEN v.closed THEN v.stop END,
                          day_open = 0,
                          day_close = CASE WHEN v.closed
                              THEN EXTRACT(EPOCH FROM v.stop - v.start) / 86400 END
                     FROM (VALUES %s) AS v (id, start, moved, stop, closed)
                    WHERE l.id = v.id""",
                SQL(", ").join(
                    SQL(
                        "(%s, %s::timestamp, %s::timestamp, %s::timestamp, %s)",
                        lead.id,
                        plan["start"],
                        plan["end"]
                        if plan["outcome"] == "won"
                        else plan["entered"][-1],
                        plan["end"],
                        plan["outcome"] != "open",
                    )
                    for plan, lead in zip(plans, leads, strict=True)
                ),
            )
        )

    @api.model
    def _sop_demo_date_moves(self, plans, leads):
        """The pipeline stage moves, in the order they were recorded: created,
        each stage entered, won."""
        cr = self.env.cr
        cr.execute(
            SQL(
                """UPDATE crm_sop_stage_move m
                      SET date = v.date
                     FROM (SELECT id, lead_id, row_number() OVER (
                                  PARTITION BY lead_id ORDER BY id) - 1 AS rank
                             FROM crm_sop_stage_move WHERE lead_id = ANY(%s)) r,
                          (VALUES %s) AS v (lead_id, rank, date)
                    WHERE m.id = r.id AND r.lead_id = v.lead_id AND r.rank = v.rank""",
                leads.ids,
                SQL(", ").join(
                    SQL("(%s, %s, %s::timestamp)", lead.id, rank, date)
                    for plan, lead in zip(plans, leads, strict=True)
                    for rank, date in enumerate(
                        plan["entered"]
                        + ([plan["end"]] if plan["outcome"] == "won" else [])
                    )
                ),
            )
        )

    @api.model
    def _sop_demo_date_stints(self, leads):
        """The SOP stage history: its stints, in their order, spread over the
        deal's life."""
        cr = self.env.cr
        cr.execute(
            SQL(
                """WITH r AS (
                       SELECT g.id, g.date_end IS NULL AS open_end,
                              row_number() OVER w - 1 AS rank, count(*) OVER w AS n,
                              l.create_date AS start,
                              COALESCE(l.date_closed, %(now)s) AS stop
                         FROM crm_sop_stage_log g
                         JOIN crm_lead l ON l.id = g.lead_id
                        WHERE g.lead_id = ANY(%(ids)s)
                       WINDOW w AS (PARTITION BY g.lead_id)
                   )
                   UPDATE crm_sop_stage_log g
                      SET date_start = r.start + (r.stop - r.start) * r.rank / r.n,
                          date_end = CASE WHEN NOT r.open_end
                              THEN r.start + (r.stop - r.start) * (r.rank + 1) / r.n END
                     FROM r WHERE g.id = r.id""",
                now=self.env.cr.now(),
                ids=leads.ids,
            )
        )

    @api.model
    def _sop_demo_date_tasks(self, rng, plans, leads):
        """The tasks done: in the time their deal stood in their pipeline
        stage, a few late (after the deal moved on: not adhered)."""
        cr = self.env.cr
        Task = self.env["crm.sop.task"].sudo()
        tasks = Task.search_fetch(
            [("lead_id", "in", leads.ids), ("state", "=", "done")],
            ["lead_id", "task_template_id"],
        )
        plan_of = dict(zip(leads.ids, plans, strict=True))
        rows = []
        for task in tasks:
            plan = plan_of[task.lead_id.id]
            level = min(plan["levels"].get(task.task_template_id, 0), plan["reached"])
            entered = plan["entered"]
            begin = entered[level]
            leave = entered[level + 1] if level + 1 < len(entered) else plan["end"]
            if leave < plan["end"] and rng.random() < 0.1:
                date = leave + (plan["end"] - leave) * rng.uniform(0.02, 0.3)
            else:
                date = begin + (leave - begin) * rng.uniform(0.05, 0.95)
            rows.append(
                SQL("(%s, %s::timestamp)", task.id, date.replace(microsecond=0))
            )
        if rows:
            cr.execute(
                SQL(
                    """UPDATE crm_sop_task t
                          SET date_done = v.date,
                              date_script_sent = CASE WHEN t.date_script_sent IS NOT NULL
                                  THEN v.date END
                         FROM (VALUES %s) AS v (id, date)
                        WHERE t.id = v.id""",
                    SQL(", ").join(rows),
                )
            )

    @api.model
    def _sop_demo_date_records(self, leads):
        """The scripts sent and activities done: when their task was done;
        the deals' chatter (won, lost, tasks set aside): when they closed."""
        cr = self.env.cr
        cr.execute(
            SQL(
                """UPDATE crm_sop_script_send s
                      SET date = COALESCE(
                              (SELECT t.date_done FROM crm_sop_task t
                                WHERE t.id = s.task_id),
                              l.create_date)
                     FROM crm_lead l
                    WHERE l.id = s.lead_id AND s.lead_id = ANY(%s)""",
                leads.ids,
            )
        )
        cr.execute(
            SQL(
                """UPDATE crm_sop_activity_done a
                      SET date = t.date_done
                     FROM crm_sop_task t
                     JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
                    WHERE t.lead_id = a.lead_id AND tt.kind = 'activity'
                      AND tt.activity_type_id = a.activity_type_id
                      AND t.date_done IS NOT NULL AND a.lead_id = ANY(%s)""",
                leads.ids,
            )
        )
        # their chatter (won, lost, tasks set aside): when the deal closed
        cr.execute(
            SQL(
                """UPDATE mail_message m
                      SET date = COALESCE(l.date_closed, l.date_last_stage_update),
                          create_date = COALESCE(l.date_closed, l.date_last_stage_update)
                     FROM crm_lead l
                    WHERE m.model = 'crm.lead' AND m.res_id = l.id AND l.id = ANY(%s)""",
                leads.ids,
            )
        )

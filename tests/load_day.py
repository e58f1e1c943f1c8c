"""A rep's day through JSON-RPC, as the web client sends it, and the
integrity of the SOP data after many of them at once.

Used by the load test (``bench/scenario_load.py``: many reps against a
multi-worker Odoo, core crm alone against the addon) and by
``tests/test_sop_load.py`` (a small run against the test server). Not a test
module itself.
"""

import random
import time

import requests

# what each operation of the loop is called in reports, in loop order
OPERATIONS = (
    "pipeline",
    "open deal",
    "prediction",
    "fill in",
    "mark done",
    "move stage",
    "create deal",
    "close deal",
    "board",
)
# what core crm has no counterpart of (the SOP panel's closing prediction,
# its own call after the form is read): measured alone
SOP_ONLY = ("prediction",)
# a refusal the server answers on purpose (a gate, an access rule) is an
# answer, not an error
REFUSALS = (
    "odoo.exceptions.UserError",
    "odoo.exceptions.ValidationError",
    "odoo.exceptions.AccessError",
    "odoo.exceptions.RedirectWarning",
)
KANBAN = {
    "name": {},
    "partner_id": {"fields": {"display_name": {}}},
    "expected_revenue": {},
    "probability": {},
    "stage_id": {"fields": {"display_name": {}}},
    "user_id": {"fields": {"display_name": {}}},
    "tag_ids": {"fields": {"display_name": {}}},
    "priority": {},
    "activity_state": {},
    "company_currency": {"fields": {}},
}
SOP_KANBAN = {
    "sop_progress": {},
    "sop_stalled": {},
    "sop_next_task_id": {"fields": {"display_name": {}}},
}
FORM = {
    **KANBAN,
    "email_from": {},
    "phone": {},
    "description": {},
    "team_id": {"fields": {"display_name": {}}},
    "date_deadline": {},
    "lost_reason_id": {"fields": {"display_name": {}}},
}
SOP_FORM = {
    **SOP_KANBAN,
    "sop_template_id": {"fields": {"display_name": {}}},
    "sop_stage_id": {"fields": {"display_name": {}}},
    "x_sop_companions": {},
    "x_sop_decision_makers": {},
    "sop_task_ids": {
        "fields": {
            "name": {},
            "state": {},
            "kind": {},
            "required": {},
            "stage_id": {"fields": {"display_name": {}}},
        }
    },
}


class RpcError(Exception):
    def __init__(self, name, message):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.refusal = name in REFUSALS


class RepDay:
    """One salesperson's session: ``step(i)`` runs the i-th loop of the day
    and returns [(operation, seconds, outcome)] with outcome ``ok``,
    ``refused`` or the server error's name."""

    def __init__(self, url, db, login, password, sop, deals, stages, team_id):
        self.url, self.sop = url, sop
        # what the loop is running, named in each request's URL (?op=):
        # the server's log then tells which operation a retry belongs to
        self.operation = None
        self.deals, self.stages, self.team_id = deals, stages, team_id
        self.session = requests.Session()
        result = self._post(
            "/web/session/authenticate",
            {"db": db, "login": login, "password": password},
        )
        self.uid = result["uid"]
        self.random = random.Random(self.uid)
        self.manual = {}
        # the deals this rep created, closed oldest first (one created and
        # one closed each loop: it never runs out)
        self.created = []
        self.closed = 0
        self.lost_reason = self.call(
            "crm.lost.reason", "search", [[]], {"limit": 1, "order": "id"}
        )[0]
        if sop:
            tasks = self.call(
                "crm.sop.task",
                "search_read",
                [[("lead_id", "in", deals), ("kind", "=", "manual")]],
                {"fields": ["lead_id"], "order": "id"},
            )
            for task in tasks:
                self.manual.setdefault(task["lead_id"][0], task["id"])
        else:
            self.activity_type = self.call(
                "mail.activity.type",
                "search",
                [[("category", "=", "default"), ("res_model", "=", False)]],
                {"limit": 1},
            )[0]
            # an activity of each deal to mark done
            self.pending = dict(zip(deals, self._schedule(deals), strict=True))

    def _post(self, path, params):
        query = f"?op={self.operation.replace(' ', '_')}" if self.operation else ""
        response = self.session.post(
            self.url + path + query,
            json={"jsonrpc": "2.0", "method": "call", "params": params},
            timeout=300,
        )
        if response.status_code != 200:
            raise RpcError(f"HTTP {response.status_code}", response.text[:200])
        body = response.json()
        if "error" in body:
            data = body["error"].get("data") or {}
            raise RpcError(data.get("name", "error"), data.get("message", ""))
        return body["result"]

    def call(self, model, method, args, kwargs=None):
        return self._post(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
        )

    def button(self, model, method, ids, context=None):
        """A button of type object, as the web client calls it."""
        return self._post(
            f"/web/dataset/call_button/{model}/{method}",
            {
                "model": model,
                "method": method,
                "args": [ids],
                "kwargs": {"context": context or {}},
            },
        )

    # the day's operations ------------------------------------------------

    def pipeline(self, deal):
        domain = [("type", "=", "opportunity"), ("user_id", "=", self.uid)]
        spec = {**KANBAN, **(SOP_KANBAN if self.sop else {})}
        self.call(
            "crm.lead",
            "web_read_group",
            [],
            {"domain": domain, "fields": ["expected_revenue:sum"]}
            | {"groupby": ["stage_id"], "lazy": True},
        )
        self.call(
            "crm.lead",
            "web_search_read",
            [],
            {"domain": domain, "specification": spec, "limit": 80},
        )

    def open_deal(self, deal):
        spec = {**FORM, **(SOP_FORM if self.sop else {})}
        self.call("crm.lead", "web_read", [[deal]], {"specification": spec})

    def prediction(self, deal):
        """The SOP panel's closing prediction card, loaded after the form."""
        self.call("crm.lead", "get_sop_uplift", [[deal]])

    def fill_in(self, deal):
        """The customer's details (both), and with the addon the visit's
        fields of the SOP task "Fill in" (the addon's write is the larger)."""
        values = {
            "phone": f"+86 10 {self.random.randrange(10**7):07d}",
            "description": self.random.choice(["Spouse", "Parents", "Alone"]),
        }
        if self.sop:
            values.update(
                x_sop_companions=self.random.choice(["Spouse", "Parents", "Alone"]),
                x_sop_decision_makers=self.random.choice(["Both", "Customer"]),
            )
        self.call("crm.lead", "web_save", [[deal], values], {"specification": {}})

    def mark_done(self, deal):
        """Tick a task by hand (core: mark an activity done). What lets the
        next loop do it again (reopen the task, schedule an activity) is
        returned, run after the timing."""
        if self.sop:
            task = self.manual.get(deal)
            if not task:
                return None
            self.call("crm.sop.task", "action_sop_mark_done", [[task]])
            return lambda: self.call("crm.sop.task", "action_sop_reopen", [[task]])
        self.call("mail.activity", "action_feedback", [[self.pending.pop(deal)]])
        return lambda: self.pending.update({deal: self._schedule([deal])[0]})

    def _schedule(self, deals):
        return self.call(
            "mail.activity",
            "create",
            [
                [
                    {
                        "res_id": deal,
                        "activity_type_id": self.activity_type,
                        "user_id": self.uid,
                        "summary": "Follow up",
                    }
                    for deal in deals
                ]
            ],
            # as the web client's activity dialog: the model by name
            {"context": {"default_res_model": "crm.lead"}},
        )

    def move_stage(self, deal):
        stage = self.call("crm.lead", "read", [[deal], ["stage_id"]])[0]["stage_id"]
        index = self.stages.index(stage[0]) if stage and stage[0] in self.stages else -1
        target = self.stages[(index + 1) % len(self.stages)]
        self.call(
            "crm.lead",
            "web_save",
            [[deal], {"stage_id": target}],
            {"specification": {}},
        )

    def create_deal(self, deal):
        created = self.call(
            "crm.lead",
            "web_save",
            [
                [],
                {
                    "name": f"Walk-in {self.uid}-{self.random.randrange(10**6)}",
                    "type": "opportunity",
                    "team_id": self.team_id,
                    "user_id": self.uid,
                    "expected_revenue": self.random.randrange(1000, 50000),
                },
            ],
            {"specification": {}},
        )
        self.created.append(created[0]["id"])

    def close_deal(self, deal):
        """Close the oldest deal this rep created, won and lost in turn, as
        the web client's buttons do: Won calls ``action_set_won_rainbowman``;
        Lost opens the ``crm.lead.lost`` dialog, saves it and applies it.
        Every close of the team meets its history counts (the addon)."""
        if not self.created:
            raise RpcError("no deal of its own to close", "its creates failed")
        lead = self.created.pop(0)
        self.closed += 1
        context = {"active_model": "crm.lead", "active_id": lead}
        if self.closed % 2:
            self.button("crm.lead", "action_set_won_rainbowman", [lead], context)
            return
        context |= {"active_ids": [lead], "default_lead_ids": [lead]}
        wizard = self.call(
            "crm.lead.lost",
            "web_save",
            [
                [],
                {
                    "lead_ids": [[6, 0, [lead]]],
                    "lost_reason_id": self.lost_reason,
                    "lost_feedback": "<p>Bought elsewhere</p>",
                },
            ],
            {"specification": {}, "context": context},
        )[0]["id"]
        self.button("crm.lead.lost", "action_lost_reason_apply", [wizard], context)

    def board(self, deal):
        if self.sop:
            self.call("crm.sop.board", "get_board", ["won_revenue", "month"])
        else:
            # core's nearest: the pipeline analysis by salesperson
            self.call(
                "crm.lead",
                "web_read_group",
                [],
                {
                    "domain": [("type", "=", "opportunity")],
                    "fields": ["expected_revenue:sum"],
                    "groupby": ["user_id"],
                    "lazy": True,
                },
            )

    def step(self, iteration):
        deal = self.deals[iteration % len(self.deals)]
        samples = []
        for operation in OPERATIONS:
            if operation in SOP_ONLY and not self.sop:
                continue
            method = getattr(self, operation.replace(" ", "_"))
            self.operation = operation
            started = time.perf_counter()
            outcome, after = "ok", None
            try:
                after = method(deal)
            except RpcError as error:
                outcome = "refused" if error.refusal else error.name
            except requests.RequestException as error:
                outcome = type(error).__name__
            samples.append((operation, time.perf_counter() - started, outcome))
            self.operation = f"{operation} (undo)"
            if callable(after):
                try:
                    after()
                except RpcError as error:
                    if not error.refusal:
                        samples.append((f"{operation} (undo)", 0.0, error.name))
        self.operation = None
        return samples


# ---------------------------------------------------------------------------
# integrity after the run
# ---------------------------------------------------------------------------

OPEN_DEALS = """
    SELECT l.id, l.sop_template_id, l.sop_progress, l.sop_next_task_id,
           l.sop_stage_id
      FROM crm_lead l
     WHERE l.active AND COALESCE(l.probability, 0) < 100
       AND l.sop_template_id IS NOT NULL
"""
CHECKS = {
    # each open deal has its playbook's tasks, each once, and no other
    "missing task": f"""
        WITH d AS ({OPEN_DEALS})
        SELECT d.id, tt.id FROM d
          JOIN crm_sop_task_template tt ON tt.template_id = d.sop_template_id
          JOIN crm_sop_stage st ON st.id = tt.stage_id
         WHERE tt.active AND st.active
           AND NOT EXISTS (SELECT 1 FROM crm_sop_task t
                            WHERE t.lead_id = d.id AND t.task_template_id = tt.id
                              AND t.active)""",
    "task of another playbook": f"""
        WITH d AS ({OPEN_DEALS})
        SELECT d.id, t.id FROM d
          JOIN crm_sop_task t ON t.lead_id = d.id AND t.active
          JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
          JOIN crm_sop_stage st ON st.id = tt.stage_id
         WHERE tt.template_id IS DISTINCT FROM d.sop_template_id
            OR NOT tt.active OR NOT st.active""",
    "task twice": """
        SELECT lead_id, task_template_id FROM crm_sop_task
      GROUP BY lead_id, task_template_id HAVING count(*) > 1""",
    # the progress is the share of its applicable tasks done (Python rounds
    # half to even: within half a point)
    "progress": f"""
        WITH d AS ({OPEN_DEALS}),
             c AS (SELECT d.id, d.sop_progress,
                          count(t.id) AS tasks,
                          count(t.id) FILTER (WHERE t.state != 'na') AS applicable,
                          count(t.id) FILTER (WHERE t.state = 'done') AS done
                     FROM d LEFT JOIN crm_sop_task t
                       ON t.lead_id = d.id AND t.active
                 GROUP BY d.id, d.sop_progress)
        SELECT id, sop_progress FROM c
         WHERE abs(COALESCE(sop_progress, 0) - CASE
                   WHEN applicable > 0 THEN 100.0 * done / applicable
                   WHEN tasks > 0 THEN 100 ELSE 0 END) > 0.5""",
    # the next step is an open task of the deal; none only when nothing is
    # open in its SOP stage
    "next step not an open task of the deal": f"""
        WITH d AS ({OPEN_DEALS})
        SELECT d.id, d.sop_next_task_id FROM d
          LEFT JOIN crm_sop_task t ON t.id = d.sop_next_task_id
         WHERE d.sop_next_task_id IS NOT NULL
           AND (t.id IS NULL OR t.lead_id != d.id OR t.state != 'todo'
                OR NOT t.active)""",
    "no next step while its SOP stage has open tasks": f"""
        WITH d AS ({OPEN_DEALS})
        SELECT d.id, d.sop_stage_id FROM d
         WHERE d.sop_next_task_id IS NULL
           AND EXISTS (SELECT 1 FROM crm_sop_task t
                         JOIN crm_sop_task_template tt ON tt.id = t.task_template_id
                        WHERE t.lead_id = d.id AND t.active AND t.state = 'todo'
                          AND tt.stage_id = d.sop_stage_id)""",
    # the history counts (crm_sop_history_count, summed per key) equal a
    # recount of every closed opportunity and its tasks, written here apart
    # from the engine's own rows so that both cannot share a mistake
    "history counts differ from a recount": """
        WITH closed AS (
            SELECT l.id, l.team_id, l.company_id,
                   l.active AND COALESCE(s.is_won, FALSE) AS won,
                   NOT l.active AND COALESCE(l.probability, 0) = 0 AS lost
              FROM crm_lead l LEFT JOIN crm_stage s ON s.id = l.stage_id
             WHERE l.type = 'opportunity'),
        recount AS (
            SELECT team_id, company_id, NULL::integer AS template,
                   count(*) FILTER (WHERE won) AS ww,
                   count(*) FILTER (WHERE lost) AS lw, 0 AS wo, 0 AS lo,
                   0 AS na
              FROM closed WHERE won OR lost
          GROUP BY team_id, company_id
         UNION ALL
            SELECT c.team_id, c.company_id, t.task_template_id,
                   count(*) FILTER (WHERE t.state = 'done' AND c.won),
                   count(*) FILTER (WHERE t.state = 'done' AND c.lost),
                   count(*) FILTER (WHERE t.state = 'todo' AND c.won),
                   count(*) FILTER (WHERE t.state = 'todo' AND c.lost),
                   count(*) FILTER (WHERE t.state = 'na')
              FROM closed c JOIN crm_sop_task t ON t.lead_id = c.id AND t.active
             WHERE c.won OR c.lost
          GROUP BY c.team_id, c.company_id, t.task_template_id),
        stored AS (
            SELECT team_id, company_id, task_template_id AS template,
                   sum(won_with) AS ww, sum(lost_with) AS lw,
                   sum(won_without) AS wo, sum(lost_without) AS lo,
                   sum(set_aside) AS na
              FROM crm_sop_history_count
          GROUP BY team_id, company_id, task_template_id)
        SELECT COALESCE(r.team_id, s.team_id),
               (COALESCE(r.company_id, s.company_id),
                COALESCE(r.template, s.template),
                ARRAY[r.ww, r.lw, r.wo, r.lo, r.na],
                ARRAY[s.ww, s.lw, s.wo, s.lo, s.na])
          FROM recount r FULL JOIN stored s
            ON COALESCE(s.team_id, 0) = COALESCE(r.team_id, 0)
           AND COALESCE(s.company_id, 0) = COALESCE(r.company_id, 0)
           AND COALESCE(s.template, 0) = COALESCE(r.template, 0)
         WHERE ARRAY[COALESCE(r.ww, 0), COALESCE(r.lw, 0), COALESCE(r.wo, 0),
                     COALESCE(r.lo, 0), COALESCE(r.na, 0)]
               != ARRAY[COALESCE(s.ww, 0), COALESCE(s.lw, 0), COALESCE(s.wo, 0),
                        COALESCE(s.lo, 0), COALESCE(s.na, 0)]""",
}


def integrity_problems(cr, engine=None):
    """{check: [(lead id, detail)]} of what is wrong, {} when all holds
    (the history counts': (team id, (company, task template, recounted,
    stored))).
    ``cr``: a cursor (Odoo's or psycopg2's) on the database. ``engine``:
    ``env['crm.sop.engine']`` to also recompute every open deal's summary
    from its tasks with the engine's own rule, which must equal the stored
    one."""
    problems = {}
    for name, query in CHECKS.items():
        cr.execute(query)
        rows = cr.fetchall()
        if rows:
            problems[name] = rows
    if engine is not None:
        cr.execute(OPEN_DEALS)
        leads = engine.env["crm.lead"].browse([row[0] for row in cr.fetchall()])
        stale, _banded = engine._sop_summaries(leads, None, None, set())
        if stale:
            problems["summary differs from the engine's"] = [
                (summary.lead_id, summary) for summary in stale
            ]
    return problems

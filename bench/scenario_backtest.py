"""Scenario ``backtest``: does the SOP progress band help predictive lead
scoring (PLS) predict? A back-test on a generated history where it does
matter: closed opportunities of one team whose outcome follows a stated
logistic model (band strongly, source, e-mail, phone and country weakly),
split in time, PLS trained by core's own code on the first 70 % and scored on
the last 30 %, without and with ``sop_progress_band`` in ``crm.pls_fields``:
AUC (Mann-Whitney) and Brier score on the held-out deals.

Only when asked for (``--only backtest``). Everything is rolled back."""

import math
import random
import time
from datetime import timedelta

from harness import log, rolled_back, transaction

from odoo import SUPERUSER_ID
from odoo.tools import SQL

NAME = "backtest"

# --- the generative model (documented in bench/README.md) ------------------
# logit P(won) = INTERCEPT + BAND_SLOPE * band index (0 for '0' ... 4 for
# '100') + the effects of source, e-mail quality, phone quality and country
INTERCEPT = -2.4
BAND_SLOPE = 1.2
BANDS = ("0", "25", "50", "75", "100")
BAND_WEIGHTS = (0.2, 0.2, 0.2, 0.2, 0.2)
SOURCES = (  # (name, weight, logit effect)
    ("Backtest Web", 0.35, 0.4),
    ("Backtest Referral", 0.15, 0.2),
    ("Backtest Fair", 0.25, -0.1),
    ("Backtest Cold Call", 0.25, -0.4),
)
EMAIL_STATES = ((None, 0.1, 0.0), ("correct", 0.8, 0.3), ("incorrect", 0.1, -0.3))
PHONE_STATES = ((None, 0.3, 0.0), ("correct", 0.6, 0.2), ("incorrect", 0.1, -0.2))
COUNTRIES = (  # (xml id, weight, logit effect): close to noise
    ("base.be", 0.3, 0.1),
    ("base.fr", 0.25, 0.0),
    ("base.de", 0.2, 0.0),
    ("base.cn", 0.15, -0.1),
    ("base.us", 0.1, 0.0),
)
HISTORY_DAYS = 540  # creation dates spread over these days...
CLOSE_DAYS = (5, 60)  # ... each deal closed this many days later
# the PLS variables of both configurations; "with" adds the band
BASE_FIELDS = ("phone_state", "email_state", "source_id", "country_id")
BAND_FIELD = "sop_progress_band"
BOOTSTRAP = 500  # paired resamples of the held-out deals for the differences


def add_arguments(parser):
    parser.add_argument(
        "--backtest-leads",
        type=int,
        default=6000,
        metavar="N",
        help="backtest: closed opportunities generated (one team)",
    )
    parser.add_argument(
        "--backtest-seed",
        type=int,
        default=20261125,
        metavar="N",
        help="backtest: seed of the generator (random.Random)",
    )
    parser.add_argument(
        "--backtest-train",
        type=float,
        default=0.7,
        metavar="F",
        help="backtest: share of the deals, the first closed, PLS learns from",
    )


def check_args(args):
    if args.backtest_leads < 100:
        return "--backtest-leads: at least 100"
    if not 0.1 <= args.backtest_train <= 0.9:
        return "--backtest-train: between 0.1 and 0.9"
    return None


# ------------------------------------------------------------
# measures
# ------------------------------------------------------------


def auc(scores, labels):
    """Area under the ROC curve: the Mann-Whitney U of the won deals' scores
    against the lost deals', ties counted half (average ranks)."""
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    won = sum(labels)
    lost = len(labels) - won
    rank_sum = sum(rank for rank, label in zip(ranks, labels, strict=True) if label)
    return (rank_sum - won * (won + 1) / 2) / (won * lost)


def brier(probabilities, labels):
    """Mean squared error of the probabilities (0-1) against the outcomes."""
    return sum((p - y) ** 2 for p, y in zip(probabilities, labels, strict=True)) / len(
        labels
    )


def pick(rng, choices):
    """A choice of (value, weight, effect) tuples: (value, effect)."""
    value, _weight, effect = rng.choices(choices, weights=[c[1] for c in choices])[0]
    return value, effect


# ------------------------------------------------------------
# the history
# ------------------------------------------------------------


def generate(env, args, team, sources, countries, stages):
    """Insert the closed opportunities in SQL, as the engine would have left
    them (band frozen at closing); returns [(id, date closed, won, true p)]."""
    rng = random.Random(args.backtest_seed)
    now = env.cr.now().replace(microsecond=0)
    start = now - timedelta(days=HISTORY_DAYS + CLOSE_DAYS[1])
    rows = []
    for _index in range(args.backtest_leads):
        created = start + timedelta(seconds=rng.randrange(HISTORY_DAYS * 86400))
        closed = created + timedelta(days=rng.randint(*CLOSE_DAYS))
        band_index = rng.choices(range(len(BANDS)), weights=BAND_WEIGHTS)[0]
        source, source_effect = pick(rng, SOURCES)
        email, email_effect = pick(rng, EMAIL_STATES)
        phone, phone_effect = pick(rng, PHONE_STATES)
        country, country_effect = pick(rng, COUNTRIES)
        logit = (
            INTERCEPT
            + BAND_SLOPE * band_index
            + source_effect
            + email_effect
            + phone_effect
            + country_effect
        )
        p_won = 1 / (1 + math.exp(-logit))
        won = rng.random() < p_won
        rows.append(
            (
                created,
                closed,
                BANDS[band_index],
                sources[source],
                email,
                phone,
                countries[country],
                won,
                p_won,
            )
        )
    columns = list(zip(*rows, strict=True))
    env.cr.execute(
        SQL(
            """INSERT INTO crm_lead (name, type, active, probability,
                    automated_probability, team_id, user_id, company_id,
                    stage_id, source_id, country_id, email_state, phone_state,
                    sop_progress_band, priority, date_open, date_closed,
                    date_last_stage_update, create_uid, write_uid,
                    create_date, write_date)
             SELECT 'Backtest ' || r.n, 'opportunity', r.won,
                    CASE WHEN r.won THEN 100 ELSE 0 END,
                    CASE WHEN r.won THEN 100 ELSE 0 END,
                    %(team)s, %(uid)s, %(company)s,
                    CASE WHEN r.won THEN %(won_stage)s ELSE %(first_stage)s END,
                    r.source, r.country, r.email, r.phone, r.band, '1',
                    r.created, r.closed, r.closed, %(uid)s, %(uid)s,
                    r.created, r.closed
               FROM unnest(%(created)s::timestamp[], %(closed)s::timestamp[],
                           %(band)s::varchar[], %(source)s::int[],
                           %(email)s::varchar[], %(phone)s::varchar[],
                           %(country)s::int[], %(won)s::bool[])
                    WITH ORDINALITY
                    AS r(created, closed, band, source, email, phone, country,
                         won, n)
          RETURNING id, name""",
            team=team.id,
            uid=SUPERUSER_ID,
            company=env.company.id,
            won_stage=stages["won"].id,
            first_stage=stages["first"].id,
            created=list(columns[0]),
            closed=list(columns[1]),
            band=list(columns[2]),
            source=list(columns[3]),
            email=list(columns[4]),
            phone=list(columns[5]),
            country=list(columns[6]),
            won=list(columns[7]),
        )
    )
    # "Backtest <n>": the n-th generated row (from 1)
    ids = {int(name.rpartition(" ")[2]): lead_id for lead_id, name in env.cr.fetchall()}
    env.cr.execute("ANALYZE crm_lead")
    return (
        [
            (ids[n], row[1], row[7], row[8], row[2])
            for n, row in enumerate(rows, start=1)
        ],
        start,
    )


# ------------------------------------------------------------
# one configuration: core's PLS trained on the past, scored on the future
# ------------------------------------------------------------


def score(env, team, test, first_stage, pls_fields):
    """Core's probabilities of the held-out deals, PLS having learnt from the
    training deals only, with ``pls_fields``. In a savepoint rolled back:
    the held-out deals are reopened (active, probability 10, first stage, no
    closing date: open deals to PLS, their outcome hidden), the frequency
    table is rebuilt by core (``_rebuild_pls_frequency_table``: every closed
    deal created since crm.pls_start_date, i.e. the training deals of the
    team), and the held-out deals are scored by core's
    ``_pls_get_naive_bayes_probabilities(batch_mode=True)``, the figures its
    cron writes in automated_probability."""
    Params = env["ir.config_parameter"]
    Params.set_param("crm.pls_fields", ",".join(pls_fields))  # registry set up
    Lead = env["crm.lead"]
    test_ids = [row[0] for row in test]
    with rolled_back(env):
        env.cr.execute(
            SQL(
                """UPDATE crm_lead
                      SET active = TRUE, probability = 10,
                          automated_probability = 10, stage_id = %s,
                          date_closed = NULL
                    WHERE id = ANY(%s)""",
                first_stage.id,
                test_ids,
            )
        )
        env.invalidate_all()
        started = time.perf_counter()
        Lead._rebuild_pls_frequency_table()
        rebuilt = time.perf_counter() - started
        # what the team's model learnt from: the won and lost deals counted
        # on the first stage (core's team totals), each + 0.1
        frequency = env["crm.lead.scoring.frequency"].search(
            [
                ("team_id", "=", team.id),
                ("variable", "=", "stage_id"),
                ("value", "=", str(first_stage.id)),
            ]
        )
        started = time.perf_counter()
        probabilities = Lead.browse(test_ids)._pls_get_naive_bayes_probabilities(
            batch_mode=True
        )
        scored = time.perf_counter() - started
        env.cr.execute(
            SQL(
                "SELECT DISTINCT variable FROM crm_lead_scoring_frequency "
                "WHERE team_id = %s ORDER BY variable",
                team.id,
            )
        )
        variables = [row[0] for row in env.cr.fetchall()]
        learnt = (round(frequency.won_count, 1), round(frequency.lost_count, 1))
    missing = [lead_id for lead_id in test_ids if lead_id not in probabilities]
    if missing:
        raise RuntimeError(f"PLS gave no probability to {len(missing)} held-out deals")
    return {
        "probabilities": [probabilities[lead_id] / 100 for lead_id in test_ids],
        "learnt_won_lost": learnt,
        "variables": variables,
        "rebuild_seconds": rebuilt,
        "score_seconds": scored,
    }


def figures(probabilities, labels):
    return {
        "auc": auc(probabilities, labels),
        "brier": brier(probabilities, labels),
    }


def bootstrap(args, labels, without, with_band):
    """Paired bootstrap of the held-out deals: 95 % intervals of the
    differences (with - without) of AUC and Brier."""
    rng = random.Random(args.backtest_seed + 1)
    size = len(labels)
    auc_diffs, brier_diffs = [], []
    for _round in range(BOOTSTRAP):
        sample = [rng.randrange(size) for _index in range(size)]
        y = [labels[i] for i in sample]
        if not 0 < sum(y) < size:
            continue
        a = [without[i] for i in sample]
        b = [with_band[i] for i in sample]
        auc_diffs.append(auc(b, y) - auc(a, y))
        brier_diffs.append(brier(b, y) - brier(a, y))

    def interval(values):
        values = sorted(values)
        return (
            values[int(0.025 * len(values))],
            values[min(int(0.975 * len(values)), len(values) - 1)],
        )

    return {"auc_diff_95": interval(auc_diffs), "brier_diff_95": interval(brier_diffs)}


def run(registry, args):
    with transaction(registry) as env:
        Params = env["ir.config_parameter"]
        original_fields = Params.get_param("crm.pls_fields")
        try:
            return backtest(env, args)
        finally:
            # the registry was set up for the bench's fields: set it up again
            # for the database's own before the rollback
            Params.set_param("crm.pls_fields", original_fields)


def backtest(env, args):
    team = env["crm.team"].create({"name": "Bench Backtest Team"})
    sources = {
        name: env["utm.source"].create({"name": name}).id for name, *_rest in SOURCES
    }
    countries = {xmlid: env.ref(xmlid).id for xmlid, *_rest in COUNTRIES}
    first_stage = env["crm.stage"].search(
        [("team_id", "=", False)], order="sequence, id", limit=1
    )
    won_stage = env["crm.stage"].search([("is_won", "=", True)], limit=1)
    env.cr.flush()
    started = time.perf_counter()
    deals, start = generate(
        env, args, team, sources, countries, {"first": first_stage, "won": won_stage}
    )
    log(
        f"  {len(deals):,} closed deals generated in {time.perf_counter() - started:.1f} s"
    )
    # the time split: the first closed learn, the last closed are scored
    deals.sort(key=lambda row: (row[1], row[0]))
    cut = int(len(deals) * args.backtest_train)
    train, test = deals[:cut], deals[cut:]
    # PLS learns from the deals created since crm.pls_start_date: the whole
    # generated history (and the database's background deals, another team)
    env["ir.config_parameter"].set_param("crm.pls_start_date", start.date().isoformat())
    labels = [1 if row[2] else 0 for row in test]
    configurations = {
        "without": list(BASE_FIELDS),
        "with": [*BASE_FIELDS, BAND_FIELD],
    }
    results = {}
    for name, pls_fields in configurations.items():
        scored = score(env, team, test, first_stage, pls_fields)
        results[name] = {
            "pls_fields": pls_fields,
            **figures(scored["probabilities"], labels),
            **{k: v for k, v in scored.items() if k != "probabilities"},
        }
        results[name]["probabilities"] = scored["probabilities"]
        log(
            f"  {name} the band: AUC {results[name]['auc']:.4f}, "
            f"Brier {results[name]['brier']:.4f} (learnt from "
            f"{scored['learnt_won_lost'][0]:g} won / "
            f"{scored['learnt_won_lost'][1]:g} lost; variables "
            f"{', '.join(scored['variables'])})"
        )
    train_won = sum(1 for row in train if row[2])
    base_rate = train_won / len(train)
    true_p = [row[3] for row in test]
    result = {
        "seed": args.backtest_seed,
        "deals": len(deals),
        "train": {
            "deals": len(train),
            "won": train_won,
            "closed_until": train[-1][1].isoformat(),
        },
        "test": {
            "deals": len(test),
            "won": sum(labels),
            "closed_from": test[0][1].isoformat(),
            "closed_until": test[-1][1].isoformat(),
        },
        "pls_start_date": start.date().isoformat(),
        "stage": "held constant: lost deals lost at the first stage, "
        "held-out deals scored at the first stage",
        "without": results["without"],
        "with": results["with"],
        # references: the generator's own probabilities (the best any model
        # can do) and the training win rate for everybody
        "oracle": figures(true_p, labels),
        "base_rate": {**figures([base_rate] * len(labels), labels), "p": base_rate},
        **bootstrap(
            args,
            labels,
            results["without"]["probabilities"],
            results["with"]["probabilities"],
        ),
    }
    # calibration by band: observed win rate and mean probabilities
    by_band = {}
    for index, row in enumerate(test):
        band = by_band.setdefault(
            row[4], {"deals": 0, "won": 0, "without": 0.0, "with": 0.0}
        )
        band["deals"] += 1
        band["won"] += labels[index]
        band["without"] += results["without"]["probabilities"][index]
        band["with"] += results["with"]["probabilities"][index]
    result["by_band"] = {
        band: {
            "deals": values["deals"],
            "won_rate": values["won"] / values["deals"],
            "mean_without": values["without"] / values["deals"],
            "mean_with": values["with"] / values["deals"],
        }
        for band, values in sorted(by_band.items(), key=lambda item: int(item[0]))
    }
    for name in ("without", "with"):
        del results[name]["probabilities"]
    log(
        f"  oracle AUC {result['oracle']['auc']:.4f} Brier {result['oracle']['brier']:.4f}; "
        f"base rate Brier {result['base_rate']['brier']:.4f}; "
        f"AUC diff 95% {result['auc_diff_95']}, Brier diff 95% {result['brier_diff_95']}"
    )
    return result


def report_rows(result):
    """(scenario, without band, with band, difference, note) rows."""
    without, with_band = result["without"], result["with"]
    auc_low, auc_high = result["auc_diff_95"]
    brier_low, brier_high = result["brier_diff_95"]
    test = result["test"]
    return [
        (
            "backtest AUC (without / with band)",
            f"{without['auc']:.3f}",
            f"{with_band['auc']:.3f}",
            f"{with_band['auc'] - without['auc']:+.3f} [{auc_low:+.3f}, {auc_high:+.3f}]",
            f"oracle {result['oracle']['auc']:.3f}; {test['deals']} held-out deals",
        ),
        (
            "backtest Brier (without / with band)",
            f"{without['brier']:.4f}",
            f"{with_band['brier']:.4f}",
            f"{with_band['brier'] - without['brier']:+.4f} "
            f"[{brier_low:+.4f}, {brier_high:+.4f}]",
            f"oracle {result['oracle']['brier']:.4f}, "
            f"base rate {result['base_rate']['brier']:.4f}",
        ),
    ]

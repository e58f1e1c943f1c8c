"""What a deal is, for every figure of the product: an open deal, a won deal,
a lost deal, written once here so that the engine, the reminders, the board,
the reviews, the uplift and the coaching queue cannot drift apart. SQL
fragments on crm_lead ``l`` (and its crm_stage ``s``, joined LEFT, for won),
and the same test on a record."""

from odoo.tools import SQL

# Open: active and not at probability 100 (core's won, and what lead scoring
# leaves to it). The engine gives tasks to, reminds about, stalls and ranks
# open deals only.
SOP_OPEN_SQL = "(l.active AND COALESCE(l.probability, 0) < 100)"

# A closed deal, as predictive lead scoring counts it: won when active in a
# won stage, lost when archived at probability 0.
SOP_WON_SQL = "(l.active AND COALESCE(s.is_won, FALSE))"
SOP_LOST_SQL = "(NOT l.active AND COALESCE(l.probability, 0) = 0)"


def sop_won_in_stages_sql(won_stage_ids):
    """SOP_WON_SQL without the stage joined, the won stages' ids given
    (crm.stage._sop_won_ids), true or false as SOP_WON_SQL (a deal without a
    stage is not won): where a join on ``crm_stage`` misleads PostgreSQL's
    estimate of how many deals are won (the days in the SOP stage of the
    closing prediction), and in what a transaction runs for a few deals (a
    close's history counts and review facts), where the join cost more to
    plan than the statement to run (the closed deals of one close: 0.34 ->
    0.08 ms planned)."""
    return SQL(
        "(l.active AND l.stage_id IS NOT NULL AND l.stage_id = ANY(%s))",
        sorted(won_stage_ids),
    )


def sop_is_open(lead):
    """SOP_OPEN_SQL on a record (its active and probability fetched)."""
    return bool(lead.active and (lead.probability or 0) < 100)


# A deal's SOP progress in bands, as predictive lead scoring wants a
# variable: a few values seen often on closed deals, not a float. The engine
# writes the band with the SOP summary (sop_progress_band); lead scoring
# learns from it (crm_sop_prediction.py declares the field).
SOP_PROGRESS_BANDS = [
    ("0", "0-24%"),
    ("25", "25-49%"),
    ("50", "50-74%"),
    ("75", "75-99%"),
    ("100", "100%"),
]


def sop_progress_band(progress):
    """The band of a SOP progress (0-100)."""
    return str(min(max(int(progress or 0), 0) // 25 * 25, 100))

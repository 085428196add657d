"""The overview's figures against a hand-computed week, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from registry.overview import OverviewFilters, figure_sets, overview, percentile
from tests.overview_fixture import END, NOW, START, build


def _overview(sessions, **filters):
    with sessions.begin() as session:
        return overview(session=session, filters=OverviewFilters(start=START, end=END, **filters), now=NOW)


def test_percentile_is_nearest_rank():
    assert percentile([], 0.9) is None
    assert percentile([5], 0.9) == 5
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0.9) == 10


def test_every_figure_of_the_week(sessions):
    build(sessions)
    report = _overview(sessions)
    f = report.figures
    assert (f.created, f.resolved, f.backlog) == (4, 3, 2)
    # C4 is 2 d 14 h old at the period's end, C6 7 d 14 h.
    assert f.backlog_median_age_seconds == (223200 + 655200) / 2
    # First reply: C1 600 s and C2 1800 s of business time; C3's clock stopped at the e-level's end, not a reply.
    assert (f.first_reply.count, f.first_reply.median_seconds, f.first_reply.p90_seconds) == (2, 1200, 1800)
    # Resolution: C1 3600, C2 7200 + 3600 (two cycles, reopened), C3 120.
    assert (f.resolution_time.count, f.resolution_time.median_seconds, f.resolution_time.p90_seconds) == \
        (3, 3600, 10800)
    # People handled C1 and C2: C1 at first contact, at level 1, with one public message; C2 none of these.
    assert (f.first_contact_resolution.count, f.first_contact_resolution.of) == (1, 2)
    assert (f.first_level_resolution.count, f.first_level_resolution.of) == (1, 2)
    assert (f.one_touch.count, f.one_touch.of, f.one_touch.rate) == (1, 2, 0.5)
    assert (f.reopened.count, f.reopened.of) == (1, 3)
    assert (f.deflected.count, f.deflected.of, f.deflected.rate) == (1, 4, 0.25)
    assert (f.rejected_answers.count, f.rejected_answers.of) == (1, 2)
    # Ratings 5, 2, 4: two good of three. NPS 10, 3, 8: one promoter, one detractor, one passive.
    assert (f.csat.count, f.csat.of, f.csat.rate) == (2, 3, 0.6667)
    assert (f.nps, f.nps_answers) == (0.0, 3)
    assert f.escalations == 2
    p = report.previous
    assert (p.created, p.resolved, p.first_reply.median_seconds, p.resolution_time.median_seconds) == (2, 1, 300, 900)
    assert (p.csat.count, p.csat.of, p.nps, p.nps_answers) == (0, 1, None, 0)
    assert [c.comment for c in report.comments] == ["Took too long", "Quick and kind"]


def test_tables_of_the_week(sessions):
    build(sessions)
    t = _overview(sessions).tables
    days = {row["day"]: row for row in t["per_day"]}
    assert len(days) == 7
    assert days["2026-03-02"] == {"day": "2026-03-02", "created_email": 0, "created_web": 1, "created": 1, "resolved": 1}
    assert days["2026-03-03"]["created_email"] == 1
    assert days["2026-03-04"]["created_web"] == 1 and days["2026-03-04"]["resolved"] == 1
    assert days["2026-03-05"]["resolved"] == 1
    by_channel = {row["channel"]: row for row in t["by_channel"]}
    assert by_channel["web"]["created"] == 3 and by_channel["web"]["deflected"] == 1
    assert by_channel["web"]["deflection_rate"] == round(1 / 3, 4) and by_channel["web"]["rejected_answers"] == 1
    assert by_channel["email"]["deflection_rate"] == 0.0
    assert by_channel["phone"]["backlog"] == 1 and by_channel["phone"]["created"] == 0
    assert {r["age"]: r["concerns"] for r in t["backlog_age"]} == {
        "under 1 day": 0, "1-3 days": 1, "3-7 days": 0, "over 7 days": 1}
    assert [r["ratings"] for r in t["csat"]] == [0, 1, 0, 1, 1]
    assert sorted((r["level"], r["reason"]) for r in t["escalations"]) == [(1, "needs billing expert"), (1, "time up")]
    workload = {r["agent"]: r for r in t["workload"]}
    assert workload["Ada"] | {} == {**workload["Ada"], "open": 1, "resolved": 1, "public_messages": 1,
                                    "median_resolution_seconds": 3600.0}
    assert (workload["Bob"]["resolved"], workload["Bob"]["reopened"], workload["Bob"]["public_messages"]) == (1, 1, 2)


@pytest.mark.parametrize("filters, created, resolved, backlog, rated", [
    ({"channel": "email"}, {"C2"}, {"C2"}, set(), {"C2"}),
    ({"category": "account-access"}, {"C3", "C4"}, {"C3"}, {"C4"}, {"C3"}),
    ({"tier": "gold"}, {"C1", "C2"}, {"C1", "C2"}, set(), {"C1", "C2"}),
    ({"level": 1}, {"C1"}, {"C1"}, {"C6"}, {"C1"}),
    ({"priority": "urgent"}, set(), set(), set(), set()),
    ({"sop": "billing", "sop_version": 1}, {"C1", "C2", "C3", "C4"}, {"C1", "C2", "C3"}, {"C4", "C6"},
     {"C1", "C2", "C3"}),
])
def test_filters_narrow_every_figure(sessions, filters, created, resolved, backlog, rated):
    build(sessions)
    with sessions.begin() as session:
        sets = figure_sets(session=session, filters=OverviewFilters(start=START, end=END, **filters), now=NOW)
        everything = figure_sets(session=session, filters=OverviewFilters(start=START, end=END), now=NOW)
    assert (sets.created, sets.resolved, sets.backlog, sets.rated) == (created, resolved, backlog, rated)
    # Every figure narrowed is the unfiltered figure intersected with the concerns the filter selects.
    selected = set(sets.facts)
    for figure in ("created", "resolved", "backlog", "first_reply", "resolution_time", "first_contact_resolution",
                   "first_level_resolution", "one_touch", "reopened", "deflected", "rejected_answers", "satisfied",
                   "promoters", "detractors", "escalations"):
        assert sets.concerns_of(figure) == everything.concerns_of(figure) & selected, figure


def test_an_agent_filter_and_an_organisation(sessions):
    ids = build(sessions)
    f = _overview(sessions, agent=ids["ada"]).figures
    assert (f.created, f.resolved, f.backlog, f.escalations) == (2, 1, 1, 1)
    f = _overview(sessions, organisation=ids["acme"]).figures
    assert (f.created, f.resolved, f.csat.count, f.csat.of) == (2, 2, 1, 2)

"""A hand-computed SLA fixture: five concerns on the Berlin office calendar, recorded through the projection.

Each story drives the workflow's own `ClockBook` with explicit instants (weekends, the 1 May holiday, a
pause, a reopen, a priority change) and writes every batch with `ProjectionActivities.record`, exactly as
the workflow's `record` local activity does. The expected figures below are worked out by hand.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from activities.projection import ProjectionActivities
from registry.models import Concern, Customer, Organisation
from sops.loader import load_calendars, load_policies
from workflows.clocks import ClockBook
from workflows.payloads import ClockEventRecord, ConcernSnapshot, RecordInput, TimelineEntry

BERLIN = ZoneInfo("Europe/Berlin")
POLICY = load_policies()["standard"]
CALENDAR = load_calendars()["office-berlin"].pinned(2026, 2027)


def local(text: str) -> datetime:
    """A Berlin wall-clock time as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(ZoneInfo("UTC"))


class Story:
    """One concern's life, batch by batch, with the clocks the workflow would keep."""

    def __init__(self, sessions, concern_id: str, customer_id: int, *, priority: str, opened: datetime,
                 agent: tuple[int, str] = (7, "Ada")) -> None:
        self.projection = ProjectionActivities(sessions)
        self.id, self.customer_id, self.priority = concern_id, customer_id, priority
        self.book = ClockBook([], CALENDAR, POLICY.warn_at)
        self.seq, self.event_id = 0, 0
        self.agent = agent
        self.assignee: tuple[int, str] | None = None
        self.step, self.level, self.status = "level1", 1, "open"
        self.events: list[ClockEventRecord] = []
        self.timeline: list[TimelineEntry] = []
        self.now = opened
        targets = POLICY.priorities[priority]
        self._clock(self.book.start("first_response", targets.first_response, opened))
        self._clock(self.book.start("resolution", targets.resolution, opened))
        self._note("step", "In the level 1 queue", meta={"step": "level1", "type": "human"})
        self._clock(self.book.start("ola_l1", POLICY.levels[1], opened))
        self.record()

    # -- what the workflow does -------------------------------------------------------------------
    def _clock(self, transitions) -> None:
        self.event_id += 3
        for clock, kind in transitions:
            self.seq += 1
            self.events.append(ClockEventRecord(seq=self.seq, clock=clock.name, kind=kind, at=self.now,
                                                event_id=self.event_id, elapsed=clock.elapsed, target=clock.target,
                                                due_at=clock.due_at))

    def _note(self, kind: str, body: str, **kw) -> None:
        self.seq += 1
        self.timeline.append(TimelineEntry(seq=self.seq, kind=kind, body=body, at=self.now, **kw))

    def record(self) -> None:
        snapshot = ConcernSnapshot(
            concern_id=self.id, seq=self.seq, status=self.status, step=self.step, step_type="human",
            level=self.level, skills=[], assignee_id=self.assignee[0] if self.assignee else None,
            assignee_name=self.assignee[1] if self.assignee else None, priority=self.priority, category="billing",
            sop_id="general-inquiry", sop_version=1, sla_policy=POLICY.id, sla_state="ok", next_due_at=None,
            clocks=self.book.all())
        self.projection.record(RecordInput(workflow_id=f"concern-{self.id}", run_id="run-1",
                                           customer_id=self.customer_id, snapshot=snapshot, timeline=self.timeline,
                                           clock_events=self.events))
        self.events, self.timeline = [], []

    def at(self, moment: datetime) -> Story:
        """Let time pass to `moment`, firing every warning and breach on the way at its own instant."""
        while (due := self.book.next_deadline()) is not None and due <= moment:
            self.now = due
            self._clock(self.book.fire_due(due))
            self.record()
        self.now = moment
        return self

    def claim(self) -> Story:
        self.assignee = self.agent
        self._note("claimed", f"Claimed by {self.agent[1]}", author=self.agent[1], author_user_id=self.agent[0])
        self.record()
        return self

    def reply(self) -> Story:
        self._note("reply", "On it.", direction="out")
        self._clock(self.book.stop("first_response", self.now))
        self._clock(self.book.stop("next_response", self.now))
        self.record()
        return self

    def ask(self) -> Story:
        self._note("question", "Which invoice?", direction="out")
        self._clock(self.book.stop("first_response", self.now))
        self._clock(self.book.stop("next_response", self.now))
        self.status = "waiting_customer"
        for clock in self.book.all():
            if clock.state == "running":
                self._clock(self.book.pause(clock.name, self.now))
        self.record()
        return self

    def customer_writes(self) -> Story:
        self._note("customer_message", "Here you are.", direction="in")
        if self.status == "resolved":
            self.status = "open"
            self._note("reopened", "The customer wrote again; the concern is open again")
            self._clock(self.book.start("resolution", POLICY.priorities[self.priority].resolution, self.now))
            self.step, self.assignee = "level1", None  # back to the last human step, unclaimed
            self._note("step", "In the level 1 queue", meta={"step": "level1", "type": "human"})
            self._clock(self.book.start("ola_l1", POLICY.levels[1], self.now))
        elif self.status == "waiting_customer":
            self.status = "open"
            for clock in self.book.all():
                self._clock(self.book.resume(clock.name, self.now))
        clock = self.book.get("next_response")
        if clock is None or clock.state in ("idle", "stopped"):
            self._clock(self.book.start("next_response", POLICY.priorities[self.priority].next_response, self.now))
        self.record()
        return self

    def set_priority(self, priority: str) -> Story:
        self.priority = priority
        targets = POLICY.priorities[priority]
        self._note("priority", f"Priority → {priority}")
        for name in ("first_response", "next_response", "resolution"):
            self.book.retarget(name, getattr(targets, name), self.now)
        self._clock(self.book.fire_due(self.now))  # a target already passed breaches at once
        self.record()
        return self

    def resolve(self) -> Story:
        self._note("resolution", "Fixed.", direction="out")
        for name in ("first_response", "next_response", "ola_l1", "resolution"):
            self._clock(self.book.stop(name, self.now))
        self.status, self.step = "resolved", "close"
        self.record()
        return self


def seed_fixture(sessions) -> dict[str, str]:
    """The five concerns of the fixture; returns their ids by letter. A and B belong to a premium organisation."""
    with sessions.begin() as session:
        org = session.execute(insert(Organisation).returning(Organisation.id),
                              [{"name": "Acme GmbH", "tier": "premium", "created_at": local("2026-01-01T00:00")}]
                              ).scalar_one()
        ids = {}
        for letter in "ABCDE":
            premium = letter in "AB"
            customer = session.execute(insert(Customer).returning(Customer.id), [{
                "email": f"{letter.lower()}@fixture.test", "name": f"Customer {letter}", "preferences": {},
                "tier": "premium" if premium else "standard", "organisation_id": org if premium else None,
                "created_at": local("2026-01-01T00:00")}]).scalar_one()
            cid = f"CCR-FIX{letter}"
            session.execute(insert(Concern), [{
                "id": cid, "workflow_id": f"concern-{cid}", "customer_id": customer, "subject": f"Fixture {letter}",
                "channel": "email" if letter in "AC" else "web", "clocks": [], "skills": [],
                "created_at": local("2026-04-30T14:00"), "updated_at": local("2026-04-30T14:00")}])
            ids[letter] = (cid, customer)
    a, b, c, d, e = (ids[x] for x in "ABCDE")
    # A, normal: opened Thursday 30 April 14:00; paused over the 1 May holiday and the weekend.
    (Story(sessions, *a, priority="normal", opened=local("2026-04-30T14:00"))
     .at(local("2026-04-30T14:30")).claim().at(local("2026-04-30T15:00")).reply()
     .at(local("2026-04-30T16:00")).ask().at(local("2026-05-04T10:00")).customer_writes()
     .at(local("2026-05-04T15:00")).resolve())
    # B, high: first response breaches at 11:00 (2 business hours), answered at 14:00.
    (Story(sessions, *b, priority="high", opened=local("2026-05-05T09:00"))
     .at(local("2026-05-05T13:30")).claim().at(local("2026-05-05T14:00")).reply()
     .at(local("2026-05-06T10:00")).resolve())
    # C, normal: resolved, reopened the next day (a second resolution cycle, still running).
    (Story(sessions, *c, priority="normal", opened=local("2026-05-11T09:00"))
     .at(local("2026-05-11T09:30")).claim().at(local("2026-05-11T10:00")).reply()
     .at(local("2026-05-11T11:00")).resolve().at(local("2026-05-12T09:00")).customer_writes()
     .at(local("2026-05-12T09:30")).reply())
    # D, normal then urgent at 10:00: first response (now 1 h) is 2 h in and breaches at once.
    (Story(sessions, *d, priority="normal", opened=local("2026-05-13T08:00"))
     .at(local("2026-05-13T09:00")).claim().at(local("2026-05-13T10:00")).set_priority("urgent")
     .at(local("2026-05-13T10:30")).reply().at(local("2026-05-13T17:00")).resolve())
    # E, normal: asked the customer after 30 minutes, still waiting.
    (Story(sessions, *e, priority="normal", opened=local("2026-05-15T09:00"))
     .at(local("2026-05-15T09:10")).claim().at(local("2026-05-15T09:30")).ask())
    return {letter: cid for letter, (cid, _) in ids.items()}


# Worked out by hand from the calendar (08:00-12:00 and 13:00-18:00 Berlin, 1 May a holiday, weekends closed)
# and the standard policy (normal: 4 h / 9 h / 27 h, high: 2 h / 4 h / 18 h, urgent: 1 h / 2 h / 9 h, L1 4 h).
# Per cycle: (concern, clock, outcome, business seconds used, per mille of target).
EXPECTED_CYCLES = sorted([
    ("CCR-FIXA", "first_response", "met", 3600, 250),
    ("CCR-FIXA", "resolution", "met", 21600, 222),         # Thu 14-16 (2 h) + Mon 10-12, 13-15 (4 h)
    ("CCR-FIXA", "next_response", "met", 14400, 444),      # Mon 10-12, 13-15
    ("CCR-FIXA", "ola_l1", "breached", 21600, 1500),       # its 4 h ran out Mon 12:00
    ("CCR-FIXB", "first_response", "breached", 14400, 2000),  # 2 h ran out 11:00; answered 14:00
    ("CCR-FIXB", "resolution", "met", 36000, 555),         # Tue 09-12, 13-18, Wed 08-10
    ("CCR-FIXB", "ola_l1", "breached", 36000, 2500),       # 4 h ran out Tue 14:00
    ("CCR-FIXC", "first_response", "met", 3600, 250),
    ("CCR-FIXC", "resolution", "met", 7200, 74),
    ("CCR-FIXC", "ola_l1", "met", 7200, 500),
    ("CCR-FIXC", "next_response", "met", 1800, 55),
    ("CCR-FIXC", "resolution", "running", 0, None),        # the reopened concern's second cycle
    ("CCR-FIXC", "ola_l1", "running", 0, None),
    ("CCR-FIXD", "first_response", "breached", 9000, 2500),  # 1 h target after the change at 10:00, answered 10:30
    ("CCR-FIXD", "resolution", "met", 28800, 888),         # urgent 9 h; 08-12, 13-17
    ("CCR-FIXD", "ola_l1", "breached", 28800, 2000),       # 4 h ran out 12:00
    ("CCR-FIXE", "first_response", "met", 1800, 125),
    ("CCR-FIXE", "resolution", "paused", 1800, None),
    ("CCR-FIXE", "ola_l1", "paused", 1800, None),
], key=str)

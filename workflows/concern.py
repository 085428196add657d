"""The concern workflow: one customer concern walking one pinned SOP version from intake to close."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.elevel.base import AutomationRequest, AutomationResult
    from sops.schema import (
        AskCustomerStep,
        AutomateStep,
        DecideStep,
        EndStep,
        HumanStep,
        NotifyStep,
        SurveyStep,
    )
    from workflows.clocks import SLA_CLOCKS, ClockBook, Transition, deadline_label, is_step_clock
    from workflows.payloads import (
        AgentAction,
        AgentRef,
        ClockEventRecord,
        ConcernCarry,
        ConcernSnapshot,
        ConcernState,
        CustomerMessage,
        DeliverMail,
        MailRequest,
        MigrateConcern,
        MigrationAnswer,
        MigrationDone,
        OpenConcernInput,
        RecordInput,
        Status,
        SurveyAnswer,
        TimelineEntry,
        UnheardQuery,
    )
    from workflows.migration import enters_afresh, move_clocks
    from workflows.search import (
        CCR_ASSIGNEE,
        CCR_CATEGORY,
        CCR_CHANNEL,
        CCR_CUSTOMER_ID,
        CCR_LEVEL,
        CCR_PRIORITY,
        CCR_SLA_STATE,
        CCR_SOP_ID,
        CCR_SOP_VERSION,
        CCR_STATUS,
        CCR_STEP,
        CCR_WAITING_REOPEN,
        SEARCH_ATTRIBUTES_PATCH,
        changed_attributes,
    )

RECORD_TIMEOUT = timedelta(seconds=30)
AUTOMATION_TIMEOUT = timedelta(seconds=60)
MAIL_TIMEOUT = timedelta(seconds=60)
NEEDS_CLAIM = {"release", "reply", "request_info", "resolve", "escalate"}
# Behaviour added with the intake outbox (see api/handover.py); histories from before it replay without it.
OUTBOX = "intake-outbox"
# Moving running concerns to another SOP version (update `migrate`); histories from before it replay without it.
MIGRATION = "sop-migration"
HEARD_KEPT = 500
NEEDS_TEXT = {"reply": "a reply needs text", "request_info": "a question needs text", "resolve": "describe the resolution"}


@workflow.defn
class ConcernWorkflow:
    """Runs one concern through its pinned SOP, keeping its SLA clocks.

    Update `act(AgentAction) -> ConcernState`: an agent's claim, release, reply, note, request_info,
    resolve, escalate, assign, set_priority or set_category, or a lead's move to any step of the SOP;
    the validator rejects what is not allowed now.
    Signal `customer_message(CustomerMessage)`: the customer wrote (any channel); may reopen a resolved concern;
    intent `human` asks for a person, which takes the concern to the SOP's first human step.
    Signal `survey_answer(SurveyAnswer)`: the customer's rating.
    Update `migrate(MigrateConcern) -> MigrationAnswer`: a process owner moves the concern to another version of
    its SOP; it moves at a safe point (waiting in a human or customer step, nothing leaving it, no agent action in
    flight) by continuing as new on the target version, now or at the next safe point, or is refused.
    Query `state() -> ConcernState`.
    """

    @workflow.init
    def __init__(self, input: OpenConcernInput) -> None:
        self.inp = input
        self.sop = input.sop
        self.policy = input.policy
        carried = input.carried
        self.clocks = ClockBook(carried.clocks if carried else [], input.calendar, input.policy.warn_at)
        self.step_id: str = carried.step if carried else input.sop.start
        self.step_entered_at: datetime = carried.step_entered_at if carried else input.opened_at
        self.status: Status = carried.status if carried else "new"
        self.seq: int = carried.seq if carried else 0
        self.priority = carried.priority if carried else input.priority
        self.category = carried.category if carried else input.category
        self.assignee: AgentRef | None = carried.assignee if carried else None
        self.awaiting_reply = carried.awaiting_reply if carried else False
        self.last_human_step = carried.last_human_step if carried else None
        self.resolved_at = carried.resolved_at if carried else None
        self.closed_at: datetime | None = None
        self.csat = carried.csat if carried else None
        self.nps = carried.nps if carried else None
        # How often each step was entered since the concern last met a person (for `max_visits`).
        self.visits: dict[str, int] = dict(carried.visits) if carried else {}
        # Fields staff set by hand ("category", "priority"); automation leaves them alone.
        self.set_by_staff: set[str] = set(carried.set_by_staff) if carried else set()
        self.moving_to: str | None = None
        self.migration: MigrateConcern | None = None  # accepted, applied at the next safe point
        self.acting = 0  # agent actions whose handler is still running
        self.wants_person = False
        self.outcome: str | None = None
        self.last_answer: str | None = None
        self.customer_intent: str | None = None
        self.reopened = False
        self.changes = 0
        self.timeline: list[TimelineEntry] = []
        self.clock_events: list[ClockEventRecord] = []
        self.mails: list[MailRequest] = []
        self.record_lock = asyncio.Lock()
        # Interaction ids of the customer messages heard, so a message handed over twice counts once.
        self.heard: list[int] = list(carried.heard) if carried else []
        # No SLA clock moves back before its last transition, whatever time a late message says it arrived.
        self.clock_floor: datetime = self.step_entered_at
        # The search attributes this run has set (name → value), so only changes are upserted.
        self.published: dict[str, object] = {}

    # ---- the process -------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: OpenConcernInput) -> ConcernState:
        resumed = input.carried is not None
        if not resumed:
            now = workflow.now()
            if workflow.patched(OUTBOX):
                # The clocks run from when the customer's concern was registered, even if Temporal heard of it later.
                now = min(input.opened_at, now)
            self._note("opened", f"Registered under SOP {self.sop.id} v{self.sop.version}", meta={"sop": self.sop.id})
            targets = self.policy.priorities[self.priority]
            self._clock(self.clocks.start("first_response", targets.first_response, now), at=now)
            self._clock(self.clocks.start("resolution", targets.resolution, now), at=now)
            self.status = "open"
        watcher = asyncio.create_task(self._watch_clocks())
        if input.carried is not None and input.carried.migration is not None:
            self._note_migrated(input.carried.migration)
            await self._record()
            resumed = not input.carried.migration.afresh  # a step of another kind or level is entered anew
        step_id: str | None = self.step_id
        if input.carried is None and input.wants_person and (person := _first_human(self.sop)) is not None:
            self._note("person_requested", f"The customer asked for a person: to '{person}'",
                       meta={"from": step_id, "to": person})
            step_id = person
        while step_id is not None:
            if not resumed:
                step_id = self._within_bounds(step_id)
                self.step_id, self.step_entered_at = step_id, workflow.now()
            step_id = await self._run_step(self.step_id, resumed)
            resumed = False
            if step_id is not None:
                step_id = self._redirect(step_id)
        watcher.cancel()
        await self._record()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state()

    async def _run_step(self, step_id: str, resumed: bool) -> str | None:
        step = self.sop.steps[step_id]
        if isinstance(step, AutomateStep):
            return await self._automate(step_id, step)
        if isinstance(step, DecideStep):
            value = {"priority": self.priority, "category": self.category, "channel": self.inp.channel,
                     "tier": self.inp.customer.tier}[step.on]
            target = step.cases.get(str(value), step.default)
            self._note("decided", f"{step.on} is {value}: to {target}", meta={"step": step_id})
            return target
        if isinstance(step, HumanStep):
            return await self._human(step_id, step, resumed)
        if isinstance(step, AskCustomerStep):
            return await self._ask_customer(step_id, step, resumed)
        if isinstance(step, NotifyStep):
            text = f"Sent '{step.template}' to the {step.to}"
            # The step travels in the meta so the flow chart can mark a notify step the concern passed.
            meta = {"step": step_id, "template": step.template}
            if step.to == "customer":
                # The timeline says, for staff, what was sent; the customer reads the template's own words.
                self._send(step.template, kind="notice", body=text, meta=meta, context=self._promise())
            else:
                self._note("team_notice", text, meta=meta)
            return step.next
        if isinstance(step, SurveyStep):
            self._send("survey", kind="survey", body="Asked the customer to rate the service", meta={"step": step_id})
            return step.next
        if isinstance(step, EndStep):
            return await self._end(step_id, step, resumed)
        raise ApplicationError(f"unknown step type at {step_id}", non_retryable=True)

    def _within_bounds(self, step_id: str) -> str:
        """The step to enter instead of `step_id` once its `max_visits` is used up (following chained bounds)."""
        passed: set[str] = set()
        while step_id not in passed:
            step = self.sop.steps[step_id]
            if isinstance(step, HumanStep):
                self.visits.clear()  # the concern meets a person: automated steps may be tried afresh
                return step_id
            self.visits[step_id] = self.visits.get(step_id, 0) + 1
            if step.max_visits is None or self.visits[step_id] <= step.max_visits:
                return step_id
            passed.add(step_id)
            self._note("bounded", f"Step '{step_id}' has run {step.max_visits} time(s) already: to "
                                  f"'{step.on_max_visits}' instead", meta={"step": step_id, "to": step.on_max_visits,
                                                                           "max_visits": step.max_visits})
            step_id = step.on_max_visits
        return step_id

    def _redirect(self, step_id: str) -> str:
        """Where the concern goes after a step: where a lead moved it, to a person if the customer asked, else `step_id`."""
        if self.moving_to is not None:
            step_id, self.moving_to = self.moving_to, None
            self.visits.clear()
            self.wants_person = False
            if self.awaiting_reply:  # an agent's question is moot once a lead moves the concern on
                self.awaiting_reply, self.status = False, "open"
                self._resume_sla()
            return step_id
        if self.wants_person:
            self.wants_person = False
            person = step_id if isinstance(self.sop.steps.get(step_id), HumanStep) else _first_human(self.sop)
            if person is None:
                self._note("person_requested", "The customer asked for a person; this SOP has no human step")
                return step_id
            self._note("person_requested", f"The customer asked for a person: to '{person}'",
                       meta={"from": self.step_id, "to": person})
            return person
        return step_id

    async def _automate(self, step_id: str, step: AutomateStep) -> str:
        # Recorded together with the action's result, to spend one registry write on the step.
        self._enter(step_id, "open", f"Automated step '{step_id}': {step.action}")
        # Staff who set a field by hand know better than the classifier (new behaviour, so patched).
        kept = self.set_by_staff if self.set_by_staff and workflow.patched("staff-fields-win") else set()
        request = AutomationRequest(
            action=step.action, concern_id=self.inp.concern_id, workflow_id=workflow.info().workflow_id,
            step=step_id, seq=self.seq, customer_id=self.inp.customer.id, customer_email=self.inp.customer.email,
            customer_name=self.inp.customer.name, subject=self.inp.subject, body=self.inp.body,
            category=self.category, category_from_customer=self.inp.category_from_customer or "category" in kept,
            priority=self.priority, channel=self.inp.channel, tier=self.inp.customer.tier,
        )
        try:
            result = await workflow.execute_activity(
                "run_automation", request, result_type=AutomationResult,
                start_to_close_timeout=AUTOMATION_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["UnknownAction"]),
            )
        except ActivityError as err:
            result = AutomationResult(outcome="error", detail=str(err.cause or err))
        outcome = result.outcome if result.outcome in step.outcomes else _fallback_outcome(step.outcomes)
        meta = {"action": step.action, "outcome": result.outcome, "score": result.score,
                "article_id": result.article_id, "detail": result.detail}
        self._note("automated", f"{step.action}: {result.outcome}", author="e-level", meta=meta)
        if result.category and result.category != self.category and "category" not in kept:
            self.category = result.category
        if result.priority and result.priority != self.priority and "priority" not in kept:
            self._set_priority(result.priority)
        target = step.outcomes[outcome]
        if result.message:
            # An answer followed by a question to the customer goes out as one mail, sent by the question.
            mail = not isinstance(self.sop.steps.get(target), AskCustomerStep)
            template = step.action if step.action in ("kb_answer", "password_reset") else "reply"
            self._send(template, kind="automated_answer", body=result.message, author="e-level", meta=meta, mail=mail)
            self.last_answer = result.message
        return target

    async def _human(self, step_id: str, step: HumanStep, resumed: bool) -> str:
        now = workflow.now()
        ola = f"ola_l{step.level}"
        clock_name = f"step:{step_id}"
        if not resumed:
            self.assignee, self.outcome = None, None
            self.last_human_step = step_id
            self._enter(step_id, "open", f"In the level {step.level} queue",
                        meta={"level": step.level, "skills": step.skills})
            if step.level in self.policy.levels:
                self._clock(self.clocks.start(ola, self.policy.levels[step.level], now))
            if step.escalate_after:
                self._clock(self.clocks.start(clock_name, step.escalate_after, now))
            await self._record()
        await self._wait(lambda: self.outcome is not None)
        outcome = self.outcome
        self.outcome = None
        now = workflow.now()
        self._clock(self.clocks.stop(ola, now))
        self._clock(self.clocks.stop(clock_name, now))
        self.clocks.discard(clock_name)
        if outcome == "timeout":
            self._note("escalated", f"Level {step.level} time is up", meta={"reason": "timeout"})
        if outcome != "resolved":
            self.assignee = None
        target = step.outcomes.get(outcome or "") or step.outcomes.get("escalated") or step.outcomes["resolved"]
        return target

    async def _ask_customer(self, step_id: str, step: AskCustomerStep, resumed: bool) -> str:
        clock_name = f"step:{step_id}:wall"
        if not resumed:
            self.customer_intent, self.outcome = None, None
            self._enter(step_id, "waiting_customer", f"Waiting for the customer ({step.message})")
            self._send(step.message, kind="question", body=f"Asked the customer ({step.message})",
                       context={"text": self.last_answer or ""})
            self._pause_sla()
            self._clock(self.clocks.start(clock_name, step.wait, workflow.now()))
            await self._record()
        await self._wait(lambda: self.customer_intent is not None or self.outcome == "no_reply")
        if self.customer_intent is None:
            await self._hear_unheard()  # a reply stored in time but handed over late still counts
        intent, self.customer_intent, self.outcome = self.customer_intent, None, None
        self._clock(self.clocks.stop(clock_name, workflow.now()))
        self.clocks.discard(clock_name)
        self.status = "open"
        self._resume_sla()
        if intent is None:
            return step.outcomes["no_reply"]
        wanted = {"solved": ["solved", "replied"], "not_solved": ["not_solved", "replied"],
                  "message": ["replied", "not_solved"], "human": ["not_solved", "replied"]}[intent]
        for name in wanted:
            if name in step.outcomes:
                return step.outcomes[name]
        return next(t for o, t in step.outcomes.items() if o != "no_reply") if len(step.outcomes) > 1 \
            else step.outcomes["no_reply"]

    async def _end(self, step_id: str, step: EndStep, resumed: bool) -> str | None:
        now = workflow.now()
        if not resumed:
            self._enter(step_id, "resolved" if step.result == "resolved" else "closed", f"Ended: {step.result}")
            for name in SLA_CLOCKS:
                self._clock(self.clocks.stop(name, now))
            self.resolved_at = now
            if step.result != "resolved":
                return await self._close()
            await self._record()
        self.reopened = False
        deadline = self.step_entered_at + timedelta(seconds=self.inp.reopen_window)
        await self._wait(lambda: self.reopened, deadline=lambda: deadline, summary="reopen window ends")
        if not self.reopened:
            await self._hear_unheard()
        if not self.reopened:
            return await self._close()
        self.reopened = False
        self._note("reopened", "The customer wrote again; the concern is open again")
        targets = self.policy.priorities[self.priority]
        self._clock(self.clocks.start("resolution", targets.resolution, workflow.now()))
        self.resolved_at = None
        return self.last_human_step or _first_human(self.sop)

    async def _close(self) -> None:
        if self.migration is not None:
            self._refuse_migration("the concern closed before it reached a safe point")
        self.status, self.closed_at = "closed", workflow.now()
        self._note("closed", "Closed")
        await self._record()
        return None

    async def _wait(self, done: Callable[[], bool], deadline: Callable[[], datetime | None] = lambda: None,
                    summary: str | None = None) -> None:
        """Wait until `done()`, `deadline()` or a lead's move, continuing as new when history grows long."""
        while not done() and self.moving_to is None:
            if self.migration is not None and self._unsafe() is None and workflow.patched(MIGRATION):
                await self._migrate()  # continues as new on the target version, unless the step is not mapped
                continue
            if self._continue_suggested():
                await self._continue_as_new()
            limit = deadline()
            now = workflow.now()
            if limit is not None and now >= limit:
                return
            seen = self.changes
            try:
                await workflow.wait_condition(
                    lambda: done() or self.changes != seen or self._continue_suggested(),
                    timeout=(limit - now) if limit else None, timeout_summary=summary if limit else None,
                )
            except asyncio.TimeoutError:
                return

    # ---- clocks ------------------------------------------------------------------------------

    async def _watch_clocks(self) -> None:
        """Fire warnings and breaches at their instant: one timer for the nearest, re-planned on every change."""
        while True:
            fired = self.clocks.fire_due(workflow.now())
            if fired:
                self._clock(fired)
                for clock, kind in fired:
                    if kind == "breach":
                        self._on_breach(clock.name)
                await self._record()
            upcoming = self.clocks.nearest()
            nearest = upcoming[0] if upcoming else None
            timeout = None if nearest is None else max(nearest - workflow.now(), timedelta(milliseconds=1))
            # The timer's summary names the clock, so its history reads "resolution warning" rather than a number.
            summary = deadline_label(upcoming[1], upcoming[2]) if upcoming else None
            try:
                # Re-plan only when the nearest instant moves, so unrelated changes keep the running timer.
                await workflow.wait_condition(lambda: self.clocks.next_deadline() != nearest, timeout=timeout,
                                              timeout_summary=summary)
            except asyncio.TimeoutError:
                pass

    def _on_breach(self, clock_name: str) -> None:
        step = self.sop.steps.get(self.step_id)
        if isinstance(step, AskCustomerStep) and clock_name == f"step:{self.step_id}:wall":
            self.outcome = "no_reply"
        elif isinstance(step, HumanStep) and self.outcome is None and not self.awaiting_reply:
            if clock_name == f"step:{self.step_id}" or (
                not is_step_clock(clock_name) and "timeout" in step.outcomes
            ):
                self.outcome = "timeout"
        self.changes += 1

    def _clock(self, transitions: list[Transition], at: datetime | None = None) -> None:
        """Record transitions that happened `at` (now unless the cause came earlier, such as a late message)."""
        event_id = workflow.info().get_current_history_length()
        at = at or workflow.now()
        for clock, kind in transitions:
            self.seq += 1
            self.clock_events.append(ClockEventRecord(
                seq=self.seq, clock=clock.name, kind=kind, at=at, event_id=event_id,
                elapsed=clock.elapsed, target=clock.target, due_at=clock.due_at,
            ))
        if transitions:
            if any(not is_step_clock(clock.name) for clock, _ in transitions):
                self.clock_floor = max(self.clock_floor, at)
            self.changes += 1

    def _pause_sla(self) -> None:
        now = workflow.now()
        for clock in self.clocks.all():
            if clock.state == "running" and not clock.name.endswith(":wall"):
                self._clock(self.clocks.pause(clock.name, now))

    def _resume_sla(self, at: datetime | None = None) -> None:
        at = at or workflow.now()
        for clock in self.clocks.all():
            self._clock(self.clocks.resume(clock.name, at), at=at)

    def _responded(self) -> None:
        now = workflow.now()
        self._clock(self.clocks.stop("first_response", now))
        self._clock(self.clocks.stop("next_response", now))

    def _set_priority(self, priority: str) -> None:
        self.priority = priority
        targets = self.policy.priorities[priority]
        now = workflow.now()
        for name in SLA_CLOCKS:
            self.clocks.retarget(name, getattr(targets, name), now)
        self.changes += 1

    # ---- agents and customers ----------------------------------------------------------------

    @workflow.update
    async def act(self, action: AgentAction) -> ConcernState:
        self.acting += 1
        try:
            return await self._act(action)
        finally:
            self.acting -= 1
            if self.migration is not None:
                self.changes += 1  # a migration waiting for this action to finish may move now

    async def _act(self, action: AgentAction) -> ConcernState:
        agent, kind = action.agent, action.type
        author = {"author": agent.name, "author_user_id": agent.id}
        if kind == "claim":
            self.assignee = agent
            self._note("claimed", f"Claimed by {agent.name}", **author)
        elif kind == "release":
            self.assignee = None
            self._note("released", f"Released by {agent.name}", **author)
        elif kind == "assign":
            previous, self.assignee = self.assignee, action.assignee
            if previous is not None and previous.id != action.assignee.id:
                # Naming both, so the agent who held it sees on the timeline where it went and why it left them.
                self._note("assigned", f"Reassigned from {previous.name} to {action.assignee.name} by {agent.name}",
                           meta={"from": previous.name, "to": action.assignee.name}, **author)
            else:
                self._note("assigned", f"Assigned to {action.assignee.name} by {agent.name}", **author)
        elif kind == "reply":
            self._send("reply", kind="reply", body=action.text, **author)
            self._responded()
        elif kind == "note":
            self._note("note", action.text, **author)
        elif kind == "request_info":
            self._send("question", kind="question", body=action.text, **author)
            self._responded()
            self.awaiting_reply, self.status = True, "waiting_customer"
            self._pause_sla()
        elif kind == "resolve":
            self._send("resolution", kind="resolution", body=action.text,
                       meta={"worth_article": action.worth_article, "level": self._level()}, **author)
            self._responded()
            self.outcome = "resolved"
        elif kind == "escalate":
            self._note("escalated", f"Escalated by {agent.name}: {action.reason}", meta={"reason": action.reason},
                       **author)
            self.outcome = "escalated"
        elif kind == "set_priority":
            self._note("priority", f"Priority {self.priority} → {action.priority} by {agent.name}", **author)
            self._set_priority(action.priority or self.priority)
        elif kind == "set_category":
            self._note("category", f"Category {self.category or '-'} → {action.category} by {agent.name}", **author)
            self.category = action.category
        elif kind == "move":
            self._note("moved", f"Moved from '{self.step_id}' to '{action.step}' by {agent.name}: {action.reason}",
                       meta={"from": self.step_id, "to": action.step, "reason": action.reason}, **author)
            self.moving_to = action.step
        if kind in ("set_category", "set_priority"):
            self.set_by_staff.add(kind.removeprefix("set_"))
        self.changes += 1
        if self.outcome is None:
            await self._record()
        # else the main loop leaves the step and records everything in this same workflow task
        return self._state()

    @act.validator
    def _validate_act(self, action: AgentAction) -> None:
        reason = self._rejection(action)
        if reason:
            raise ValueError(reason)

    def _rejection(self, action: AgentAction) -> str | None:
        """Why `action` is not allowed now, or None."""
        kind, agent = action.type, action.agent
        if self.status == "closed":
            return "the concern is closed"
        if self.migration is not None and self._unsafe() is None:
            return (f"the concern is being moved to SOP {self.migration.sop.id} v{self.migration.sop.version} "
                    "right now; act again in a moment, on its new version")
        if kind == "note":
            return None if action.text.strip() else "a note needs text"
        if self.status == "resolved":
            return "the concern is resolved; it reopens when the customer writes again"
        if kind == "set_priority":
            if action.priority is None:
                return "choose a priority"
            return "the priority is already " + action.priority if action.priority == self.priority else None
        if kind == "set_category":
            return None if action.category else "choose a category"
        if kind == "move":
            return self._move_rejection(action)
        step = self.sop.steps.get(self.step_id)
        if not isinstance(step, HumanStep):
            return (f"the concern is at the automated step '{self.step_id}', not in a queue; "
                    "a lead can move it to a step of its SOP (Move on the concern page)")
        if self.outcome is not None:
            return "the concern is already leaving this step"
        if kind == "claim":
            if self.assignee is not None:
                who = "you" if self.assignee.id == agent.id else self.assignee.name
                return f"already claimed by {who}"
            return _fit(agent, step)
        if kind == "assign":
            if not agent.lead:
                return "only a team lead can assign concerns"
            if action.assignee is None:
                return "choose an agent to assign"
            return _fit(action.assignee, step)
        if kind in NEEDS_CLAIM:
            if self.assignee is None:
                return "claim the concern first"
            if self.assignee.id != agent.id:
                return f"claimed by {self.assignee.name}; only they can {kind.replace('_', ' ')}"
        if kind in NEEDS_TEXT and not action.text.strip():
            return NEEDS_TEXT[kind]
        if kind == "request_info" and self.awaiting_reply:
            return "already waiting for the customer's answer"
        if kind == "escalate":
            if not action.reason.strip():
                return "give a reason for the escalation"
            if "escalated" not in step.outcomes:
                return f"there is no higher level after step '{self.step_id}' in this SOP"
        return None

    def _move_rejection(self, action: AgentAction) -> str | None:
        if not action.agent.lead:
            return "only a lead or an admin can move a concern to another step"
        if not action.step:
            return "choose the step to move the concern to"
        if action.step not in self.sop.steps:
            return (f"there is no step '{action.step}' in SOP {self.sop.id} v{self.sop.version} "
                    f"(its steps: {', '.join(self.sop.steps)})")
        if action.step == self.step_id:
            return f"the concern is already at step '{action.step}'"
        if not action.reason.strip():
            return "give a reason for the move; it goes on the timeline"
        if self.moving_to is not None or self.outcome is not None:
            return "the concern is already leaving this step"
        return None

    def _ask_for_person(self) -> None:
        """The customer asked for a person: at a human step they have one; elsewhere the step hands over."""
        step = self.sop.steps.get(self.step_id)
        if isinstance(step, HumanStep):
            self._note("person_requested", f"The customer asked for a person; the concern is already in the level "
                                           f"{step.level} queue", meta={"to": self.step_id})
        elif self.status != "resolved":  # a resolved concern reopens at its last human step anyway
            self.wants_person = True

    @workflow.signal
    async def customer_message(self, message: CustomerMessage) -> None:
        if self._hear(message):
            await self._record()

    def _hear(self, message: CustomerMessage) -> bool:
        """Take a customer's message into account once; False if the concern is closed or heard it before."""
        if self.status == "closed" or message.interaction_id in self.heard:
            return False
        self.heard = [*self.heard, message.interaction_id][-HEARD_KEPT:]
        now = workflow.now()
        if workflow.patched(OUTBOX):
            # Counted from when the customer wrote, which is earlier than now if Temporal heard of it late.
            now = max(min(message.at, now), self.clock_floor)
        if self.status == "resolved":
            if message.intent != "solved":
                self.reopened = True
        elif isinstance(self.sop.steps.get(self.step_id), AskCustomerStep):
            self.customer_intent = message.intent
        elif self.awaiting_reply:
            self.awaiting_reply, self.status = False, "open"
            self._resume_sla(now)
        clock = self.clocks.get("next_response")
        if message.intent != "solved" and (clock is None or clock.state in ("idle", "stopped")):
            # Next response runs from the oldest unanswered customer message, so a running clock keeps going.
            self._clock(self.clocks.start("next_response", self.policy.priorities[self.priority].next_response, now),
                        at=now)
        if message.intent == "human":
            self._ask_for_person()
        self.changes += 1
        return True

    async def _hear_unheard(self) -> None:
        """Before a wait ends for want of an answer, ask the registry (the system of record) whether the customer
        wrote since the step began and Temporal has not heard of it yet (it was stored during an outage)."""
        if not workflow.patched(OUTBOX):
            return
        late = await workflow.execute_local_activity(
            "unheard_messages", UnheardQuery(concern_id=self.inp.concern_id, since=self.step_entered_at,
                                             heard=self.heard),
            result_type=list[CustomerMessage], start_to_close_timeout=RECORD_TIMEOUT)
        for message in late:
            self._hear(message)

    @workflow.signal
    async def survey_answer(self, answer: SurveyAnswer) -> None:
        if self.status == "closed":
            return
        if self.csat is not None and workflow.patched(OUTBOX):
            return  # a concern is rated once (the registry keeps that rating); this is the same one handed over again
        self.csat = answer.csat if answer.csat is not None else self.csat
        self.nps = answer.nps if answer.nps is not None else self.nps
        self._note("rating", answer.comment, author=self.inp.customer.name or "customer",
                   meta={"csat": answer.csat, "nps": answer.nps}, direction="in")
        self.changes += 1
        await self._record()

    @workflow.query
    def state(self) -> ConcernState:
        return self._state()

    # ---- recording ---------------------------------------------------------------------------

    def _enter(self, step_id: str, status: Status, body: str, meta: dict | None = None) -> None:
        self.step_id, self.status = step_id, status
        step = self.sop.steps[step_id]
        self._note("step", body, meta={"step": step_id, "type": step.type, **(meta or {})})

    def _note(self, kind: str, body: str, *, author: str = "", author_user_id: int | None = None,
              meta: dict | None = None, direction: str = "internal") -> TimelineEntry:
        self.seq += 1
        entry = TimelineEntry(seq=self.seq, kind=kind, direction=direction, body=body, author=author,
                              author_user_id=author_user_id, meta=meta or {}, at=workflow.now())
        self.timeline.append(entry)
        return entry

    def _send(self, template: str, *, kind: str, body: str, author: str = "", author_user_id: int | None = None,
              meta: dict | None = None, mail: bool = True, context: dict | None = None) -> None:
        entry = self._note(kind, body, author=author, author_user_id=author_user_id, meta=meta, direction="out")
        if mail and self.inp.customer.email:
            entry.channel = "email"
            self.mails.append(MailRequest(seq=entry.seq, template=template,
                                          context={"text": body} if context is None else context))

    async def _record(self) -> None:
        """Write what changed to the registry in one local activity, idempotent by (concern, seq)."""
        async with self.record_lock:
            batch = RecordInput(
                workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id,
                customer_id=self.inp.customer.id, snapshot=self._snapshot(),
                timeline=self.timeline, clock_events=self.clock_events, mails=self.mails,
            )
            self.timeline, self.clock_events, self.mails = [], [], []
            self._publish_search_attributes(batch.snapshot)
            await workflow.execute_local_activity("record", batch, start_to_close_timeout=RECORD_TIMEOUT)
            if batch.mails and self.inp.deliver_mail:
                for mail in batch.mails:
                    workflow.start_activity("deliver_mail", DeliverMail(concern_id=self.inp.concern_id, seq=mail.seq),
                                            start_to_close_timeout=MAIL_TIMEOUT,
                                            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=10)),
                                            summary=f"mail {self.inp.concern_id}#{mail.seq}")

    def _promise(self) -> dict:
        """When the customer can expect an answer (the nearest running response clock), for a notice's mail."""
        due = [c.due_at for c in self.clocks.all()
               if c.name in ("first_response", "next_response") and c.state == "running" and c.due_at]
        return {"answer_due": min(due).isoformat() if due else "", "timezone": self.inp.calendar.timezone}

    def _publish_search_attributes(self, snap: ConcernSnapshot) -> None:
        """Keep the concern's business fields in Temporal's search attributes, upserting only what changed."""
        if not workflow.patched(SEARCH_ATTRIBUTES_PATCH):
            return
        updates = changed_attributes(self.published, [
            (CCR_STATUS, snap.status), (CCR_STEP, snap.step), (CCR_LEVEL, snap.level),
            (CCR_ASSIGNEE, snap.assignee_name), (CCR_SOP_ID, snap.sop_id), (CCR_SOP_VERSION, snap.sop_version),
            (CCR_PRIORITY, snap.priority), (CCR_CATEGORY, snap.category), (CCR_CHANNEL, self.inp.channel),
            (CCR_SLA_STATE, snap.sla_state), (CCR_CUSTOMER_ID, self.inp.customer.id),
            # A resolved concern's workflow runs on only to hear a reply within the reopen window.
            (CCR_WAITING_REOPEN, snap.status == "resolved"),
        ])
        if updates:
            workflow.upsert_search_attributes(updates)

    def _level(self) -> int | None:
        step = self.sop.steps.get(self.step_id)
        return step.level if isinstance(step, HumanStep) else None

    def _snapshot(self) -> ConcernSnapshot:
        step = self.sop.steps.get(self.step_id)
        return ConcernSnapshot(
            concern_id=self.inp.concern_id, seq=self.seq, status=self.status, step=self.step_id,
            step_type=step.type if step else None,
            level=step.level if isinstance(step, HumanStep) else None,
            skills=list(step.skills) if isinstance(step, HumanStep) else [],
            assignee_id=self.assignee.id if self.assignee else None,
            assignee_name=self.assignee.name if self.assignee else None,
            priority=self.priority, category=self.category, sop_id=self.sop.id, sop_version=self.sop.version,
            sla_policy=self.policy.id, sla_state=self.clocks.sla_state(self.status == "waiting_customer"),
            next_due_at=self.clocks.next_due(), clocks=self.clocks.all(), resolved_at=self.resolved_at,
            closed_at=self.closed_at, csat=self.csat, nps=self.nps,
        )

    def _state(self) -> ConcernState:
        snap = self._snapshot()
        return ConcernState(
            concern_id=snap.concern_id, status=snap.status, step=snap.step, step_type=snap.step_type,
            level=snap.level, skills=snap.skills, assignee_id=snap.assignee_id, assignee_name=snap.assignee_name,
            priority=snap.priority, category=snap.category, sop_id=snap.sop_id, sop_version=snap.sop_version,
            clocks=snap.clocks, waiting_on_customer=self.status == "waiting_customer",
            history_length=workflow.info().get_current_history_length(),
        )

    # ---- continue-as-new ---------------------------------------------------------------------

    def _continue_suggested(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > self.inp.continue_after_events

    async def _continue_as_new(self) -> None:
        await self._record()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self.inp.model_copy(update={"carried": self._carry()}))

    def _carry(self) -> ConcernCarry:
        return ConcernCarry(
            step=self.step_id, step_entered_at=self.step_entered_at, status=self.status, seq=self.seq,
            priority=self.priority, category=self.category, assignee=self.assignee, clocks=self.clocks.all(),
            awaiting_reply=self.awaiting_reply, last_human_step=self.last_human_step, resolved_at=self.resolved_at,
            csat=self.csat, nps=self.nps, heard=self.heard, visits=self.visits,
            set_by_staff=sorted(self.set_by_staff),
        )

    # ---- migration to another SOP version ----------------------------------------------------

    @workflow.update
    async def migrate(self, move: MigrateConcern) -> MigrationAnswer:
        unsafe = self._unsafe()
        answer = MigrationAnswer(concern_id=self.inp.concern_id, outcome="waiting" if unsafe else "moving",
                                 step=self.step_id, target_step=move.mapping.get(self.step_id), reason=unsafe or "")
        if self.migration is not None:  # the same migration sent again (a retry): nothing more to do
            return answer
        self.migration = move
        self.changes += 1
        if unsafe:
            self._note("migration_waiting", f"To be moved to SOP {move.sop.id} v{move.sop.version} by {move.by} at the "
                                            f"next safe point ({unsafe})",
                       meta={"migration_id": move.migration_id, "to_version": move.sop.version, "reason": unsafe},
                       author=move.by, author_user_id=move.by_id)
            await self._record()
        # else the main loop moves the concern in this same workflow task
        return answer

    @migrate.validator
    def _validate_migrate(self, move: MigrateConcern) -> None:
        reason = self._migration_rejection(move)
        if reason:
            raise ValueError(reason)

    def _migration_rejection(self, move: MigrateConcern) -> str | None:
        """Why `move` is refused now, or None (then it moves now or at the next safe point)."""
        if self.status == "closed":
            return "the concern is closed"
        if self.migration is not None:
            if self.migration.migration_id == move.migration_id:
                return None
            return (f"migration {self.migration.migration_id} is already waiting to move this concern "
                    f"(to v{self.migration.sop.version})")
        if move.sop.id != self.sop.id:
            return f"the concern runs on SOP {self.sop.id}, not {move.sop.id}"
        if move.from_version != self.sop.version:
            return f"the concern runs on {self.sop.id} v{self.sop.version}, not v{move.from_version}"
        if move.sop.version == self.sop.version:
            return f"the concern already runs on v{self.sop.version}"
        if not move.reason.strip() or not move.by.strip():
            return "a migration names who moves the concern and why"
        for source, target in move.mapping.items():
            if target not in move.sop.steps:
                return f"step '{source}' is mapped to '{target}', which v{move.sop.version} does not have"
        unsafe = self._unsafe()
        if unsafe is None and self.step_id not in move.mapping:
            return f"the concern waits at step '{self.step_id}', which the mapping leaves out"
        if unsafe is not None and move.when_unsafe == "refuse":
            return f"not at a safe point: {unsafe}"
        return None

    def _unsafe(self) -> str | None:
        """Why the concern cannot move this instant, or None at a safe point."""
        step = self.sop.steps.get(self.step_id)
        if self.status == "closed":
            return "the concern is closed"
        if self.status == "resolved" or not isinstance(step, (HumanStep, AskCustomerStep)):
            return f"it is at the {step.type if step else 'unknown'} step '{self.step_id}', not waiting for a person"
        if self.outcome is not None or self.moving_to is not None or self.customer_intent is not None:
            return f"it is leaving step '{self.step_id}'"
        if self.acting:
            return "an agent's action on it is still being taken"
        return None

    def _refuse_migration(self, reason: str) -> None:
        move, self.migration = self.migration, None
        assert move is not None
        self._note("migration_refused", f"Not moved to SOP {move.sop.id} v{move.sop.version}: {reason}",
                   meta={"migration_id": move.migration_id, "to_version": move.sop.version, "reason": reason},
                   author=move.by, author_user_id=move.by_id)

    async def _migrate(self) -> None:
        """Move onto the target version at this safe point: clocks first (recorded here), then continue as new."""
        move = self.migration
        assert move is not None
        to_id = move.mapping.get(self.step_id)
        if to_id is None:
            self._refuse_migration(f"it reached step '{self.step_id}', which the mapping leaves out")
            await self._record()
            return
        source, target = self.sop.steps[self.step_id], move.sop.steps[to_id]
        afresh = enters_afresh(source, target)
        now = workflow.now()
        book = ClockBook(self.clocks.all(), move.calendar, move.policy.warn_at)
        if afresh and self.status == "waiting_customer":  # the target step decides afresh whether to wait
            for clock in book.all():
                self._clock(book.resume(clock.name, now))
        self._clock(move_clocks(book, from_id=self.step_id, from_step=source, to_id=to_id, to_step=target,
                                afresh=afresh, mode=move.clocks, policy=move.policy, priority=self.priority, now=now))
        self.clocks = book
        done = MigrationDone(
            migration_id=move.migration_id, from_sop=self.sop.id, from_version=self.sop.version,
            to_version=move.sop.version, from_step=self.step_id, to_step=to_id, clocks=move.clocks, afresh=afresh,
            by=move.by, by_id=move.by_id, reason=move.reason, undo_of=move.undo_of)
        await self._record()
        await workflow.wait_condition(workflow.all_handlers_finished)
        carried = self._carry().model_copy(update={"step": to_id, "migration": done})
        if afresh:
            carried = carried.model_copy(update={
                "step_entered_at": now, "status": "open", "assignee": None, "awaiting_reply": False, "visits": {}})
        elif isinstance(target, HumanStep):
            carried = carried.model_copy(update={"last_human_step": to_id})
        workflow.continue_as_new(self.inp.model_copy(update={
            "sop": move.sop, "policy": move.policy, "calendar": move.calendar, "carried": carried}))

    def _note_migrated(self, done: MigrationDone) -> None:
        verb = f"Migration {done.undo_of} undone" if done.undo_of else "Moved"
        self._note("migrated", f"{verb}: SOP {done.from_sop} v{done.from_version} step '{done.from_step}' → "
                               f"v{done.to_version} step '{done.to_step}' by {done.by} (clocks {done.clocks}): "
                               f"{done.reason}", meta=done.model_dump(mode="json"),
                   author=done.by, author_user_id=done.by_id)


def _fit(agent: AgentRef, step: HumanStep) -> str | None:
    if agent.level < step.level:
        return f"this step needs a level {step.level} agent; {agent.name} is level {agent.level}"
    missing = sorted(set(step.skills) - set(agent.skills))
    if missing:
        return f"this step needs the skills {', '.join(missing)}"
    return None


def _fallback_outcome(outcomes: dict[str, str]) -> str:
    for name in ("error", "failed", "no_match", "unavailable", "not_found", "not_eligible", "unclassified"):
        if name in outcomes:
            return name
    return next(iter(outcomes))


def _first_human(sop) -> str | None:
    return next((sid for sid, s in sop.steps.items() if isinstance(s, HumanStep)), None)

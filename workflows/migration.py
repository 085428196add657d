"""Moving a concern's state onto another SOP version: which step it lands on and what its clocks become.

Pure (the caller passes the time), so the workflow applies it and a dry run previews it with the same code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sops.schema import AskCustomerStep, HumanStep, SlaPolicy, Step
from workflows.clocks import SLA_CLOCKS, ClockBook, Transition
from workflows.payloads import Clock

WAITING_TYPES = ("human", "ask_customer")


def waiting_steps(steps: dict[str, Step]) -> list[str]:
    """The steps of a version where a concern can wait (and so be moved): human and customer steps."""
    return [sid for sid, step in steps.items() if step.type in WAITING_TYPES]


def propose_mapping(source: dict[str, Step], target: dict[str, Step]) -> dict[str, str]:
    """For every waiting step of `source`: the step of `target` of the same id, else the first of the same type
    (and level, for a human step); a step with no candidate is left out, so the plan must map it by hand."""
    proposed = {}
    for sid in waiting_steps(source):
        step = source[sid]
        if sid in target and target[sid].type == step.type:
            proposed[sid] = sid
            continue
        same = [tid for tid, t in target.items() if t.type == step.type and (
            not isinstance(step, HumanStep) or getattr(t, "level", None) == step.level)]
        same = same or [tid for tid, t in target.items() if t.type == step.type]
        if same:
            proposed[sid] = same[0]
        elif sid in target:
            proposed[sid] = sid
    return proposed


def enters_afresh(source: Step, target: Step) -> bool:
    """Whether a concern is queued anew at the target step (another type, level or skills) rather than taken over
    where it waits (same type and, for a person's step, the same level and skills)."""
    if source.type != target.type:
        return True
    if isinstance(source, HumanStep) and isinstance(target, HumanStep):
        return (source.level, sorted(source.skills)) != (target.level, sorted(target.skills))
    return False


def _step_timer(step: Step) -> int | None:
    if isinstance(step, HumanStep):
        return step.escalate_after
    if isinstance(step, AskCustomerStep):
        return step.wait
    return None


def _carry_over(book: ClockBook, clock: Clock, name: str, target: int, elapsed: int, now: datetime) -> list[Transition]:
    """Replace `clock` by one named `name` with `target`, keeping `elapsed`: a stop and a start, both recorded."""
    out = book.stop(clock.name, now) if clock.state in ("running", "paused") else []
    was_paused, breached = clock.state == "paused", clock.breached
    book.discard(clock.name)
    new = Clock(name=name, target=target, state="running", elapsed=elapsed, run_started=now,
                breached=breached and elapsed >= target, warned=breached and elapsed >= target)
    book.clocks[name] = new
    book._schedule(new)
    out.append((new, "start"))
    if was_paused:
        out += book.pause(name, now)
    return out


def move_clocks(book: ClockBook, *, from_id: str, from_step: Step, to_id: str, to_step: Step, afresh: bool,
                mode: Literal["keep", "restart"], policy: SlaPolicy, priority: str, now: datetime) -> list[Transition]:
    """Change `book` (already on the target calendar) for the move from `from_id` to `to_id`; the transitions.

    SLA clocks keep their elapsed time under the target policy's targets (`keep`) or start again from nothing
    (`restart`). The step's own timer follows it when the concern is taken over in place; entering afresh,
    the old step's timers end and the target step starts its own."""
    out: list[Transition] = []
    targets = policy.priorities[priority]
    for name in list(book.clocks):
        clock = book.clocks[name]
        if clock.state not in ("running", "paused"):
            continue
        if name in SLA_CLOCKS:
            target = getattr(targets, name)
        elif name.startswith("ola_l"):
            level = int(name.removeprefix("ola_l"))
            if afresh or level not in policy.levels:
                out += book.stop(name, now)  # a fresh entry starts the OLA of its own level
                continue
            target = policy.levels[level]
        else:
            continue
        elapsed = 0 if mode == "restart" else clock.elapsed + (book._elapsed_since(clock, now)
                                                               if clock.state == "running" else 0)
        if mode == "keep" and target == clock.target:
            continue
        out += _carry_over(book, clock, name, target, elapsed, now)
    for suffix in ("", ":wall"):
        old = book.clocks.get(f"step:{from_id}{suffix}")
        if old is None:
            continue
        timer = None if afresh else _step_timer(to_step)
        if timer is None:
            out += book.stop(old.name, now)
            book.discard(old.name)
            continue
        elapsed = 0 if mode == "restart" else old.elapsed + (book._elapsed_since(old, now)
                                                             if old.state == "running" else 0)
        out += _carry_over(book, old, f"step:{to_id}{suffix}", timer, elapsed, now)
    if not afresh and (timer := _step_timer(to_step)) is not None:
        name = f"step:{to_id}" + (":wall" if isinstance(to_step, AskCustomerStep) else "")
        if name not in book.clocks:  # the target step has a timer its source had not: it runs from the move
            out += book.start(name, timer, now)
    return out


def breaching_at_once(clocks: list[Clock]) -> list[str]:
    """The running clocks that are already due (they would breach the moment the concern lands)."""
    return [c.name for c in clocks if c.state in ("running", "paused") and not c.breached and c.elapsed >= c.target]

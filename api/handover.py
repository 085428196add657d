"""Handing what intake stored to Temporal: workflow starts and customer messages, in order, exactly once in effect.

The registry is the outbox. Intake stores a concern or a message together with a pending hand-over
(`registry.handover`), then `Handover.hand_over` gives it to Temporal at once. When Temporal does not
answer, the row stays pending and the process's `HandoverSweeper` tries again, with back-off, until it
does; at start-up it also finishes what a killed process left behind. Every hand-over is idempotent:
the workflow id is the concern's, and a message carries its interaction id, which the workflow ignores
when it has seen it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from anyio import to_thread
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.catalog import Catalog
from registry import handover as outbox
from registry.db import Sessions
from registry.models import Concern, Customer, Interaction
from registry.ratings import rating_of
from registry.settings import Settings
from registry.sop_store import get_version
from sops.schema import SopDefinition, parse_duration
from workflows.concern import ConcernWorkflow
from workflows.payloads import CustomerMessage, CustomerRef, OpenConcernInput, SurveyAnswer, excerpt

log = logging.getLogger(__name__)

# A call Temporal does not answer within this is left to the sweeper, so no request waits on an outage.
RPC_TIMEOUT = timedelta(seconds=4)


Payload = OpenConcernInput | CustomerMessage | SurveyAnswer | None


class TemporalDidNotTake(Exception):
    """Temporal did not acknowledge a hand-over; it stays pending."""


@dataclass
class Handover:
    """Gives a concern's pending hand-overs to Temporal in the order intake stored them."""

    sessions: Sessions
    client: Callable[[], Client | None]
    settings: Settings
    catalog: Catalog
    on_pending: Callable[[], None] | None = None

    async def hand_over(self, concern_id: str) -> bool:
        """Deliver everything pending for the concern; False (and the sweeper woken) if something stays pending."""
        client = self.client()
        if client is None:
            self._left_pending()
            return False
        items = await to_thread.run_sync(self._pending, concern_id)
        for handover_id, payload in items:
            try:
                outcome = await self._deliver(client, concern_id, payload)
            except TemporalDidNotTake as err:
                await to_thread.run_sync(self._failed, handover_id, str(err))
                self._left_pending()
                return False
            await to_thread.run_sync(self._delivered, handover_id, outcome)
        return True

    def _left_pending(self) -> None:
        if self.on_pending is not None:
            self.on_pending()

    # ---- the registry side ---------------------------------------------------------------------

    def _pending(self, concern_id: str) -> list[tuple[int, Payload]]:
        """The pending rows with what each must send; None for a start Temporal already has."""
        with self.sessions.begin() as session:
            items: list[tuple[int, Payload]] = []
            concern = session.get(Concern, concern_id)
            for row in outbox.pending_for(session=session, concern_id=concern_id):
                if row.kind == "start":
                    # Once the workflow has written the projection it runs; the start needs no second try.
                    items.append((row.id, self.workflow_input(session, concern) if concern.status == "new" else None))
                elif row.kind == "rating":
                    rating = rating_of(session=session, concern_id=concern_id)
                    items.append((row.id, SurveyAnswer(csat=rating.csat, nps=rating.nps, comment=rating.comment)))
                else:
                    message = session.get(Interaction, row.interaction_id)
                    items.append((row.id, CustomerMessage(
                        interaction_id=message.id, text=excerpt(message.body), channel=message.channel,
                        intent=(message.meta or {}).get("intent", "message"), at=message.created_at)))
            return items

    def _delivered(self, handover_id: int, outcome: str) -> None:
        with self.sessions.begin() as session:
            outbox.mark_delivered(session=session, handover_id=handover_id, outcome=outcome)

    def _failed(self, handover_id: int, error: str) -> None:
        with self.sessions.begin() as session:
            outbox.mark_failed(session=session, handover_id=handover_id, error=error)

    def workflow_input(self, session: Session, concern: Concern) -> OpenConcernInput:
        """The workflow's whole input, built from the registry alone (so a retried start is identical).

        It carries ids and a bounded excerpt of the customer's text, never the whole text: the registry
        holds that, and a workflow input must stay far below Temporal's payload limit."""
        customer = session.get(Customer, concern.customer_id)
        first = session.exec(
            select(Interaction).where(Interaction.concern_id == concern.id).order_by(Interaction.id)
        ).first()
        version = get_version(session=session, sop_id=concern.sop_id, version=concern.sop_version)
        sop = SopDefinition.model_validate(version.definition)
        policy, calendar = self.catalog.pinned(sop.sla, concern.created_at.year)
        return OpenConcernInput(
            concern_id=concern.id,
            customer=CustomerRef(id=customer.id, email=customer.email, name=customer.name, tier=customer.tier),
            subject=concern.subject, body=excerpt(first.body if first else ""), channel=concern.channel,
            priority=concern.priority, category=concern.category,
            category_from_customer=concern.category is not None, opened_at=concern.created_at,
            wants_person=bool(first and (first.meta or {}).get("intent") == "human"),
            sop=sop, policy=policy, calendar=calendar,
            reopen_window=parse_duration(self.settings.reopen_window),
            deliver_mail=self.settings.relay_host is not None,
            continue_after_events=self.settings.continue_after_events,
        )

    # ---- the Temporal side ---------------------------------------------------------------------

    async def _deliver(self, client: Client, concern_id: str, payload: Payload) -> str:
        workflow_id = f"{self.settings.workflow_id_prefix}{concern_id}"
        if payload is None:
            return "already running"
        try:
            if isinstance(payload, OpenConcernInput):
                try:
                    await asyncio.wait_for(client.start_workflow(
                        ConcernWorkflow.run, payload, id=workflow_id, task_queue=self.settings.temporal_task_queue,
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                        static_summary=f"{concern_id}: {payload.subject[:80]}", rpc_timeout=RPC_TIMEOUT,
                    ), RPC_TIMEOUT.total_seconds() * 2)
                except WorkflowAlreadyStartedError:
                    return "already started"
                return "started"
            handle = client.get_workflow_handle(workflow_id)
            signal = ConcernWorkflow.survey_answer if isinstance(payload, SurveyAnswer) else ConcernWorkflow.customer_message
            try:
                await asyncio.wait_for(handle.signal(signal, payload, rpc_timeout=RPC_TIMEOUT),
                                       RPC_TIMEOUT.total_seconds() * 2)
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND and "namespace" not in err.message.lower():
                    # The workflow has ended since the message was stored; it stays on the concern's timeline.
                    return "the concern's workflow had ended; kept on the timeline"
                raise
            return "delivered"
        except (RPCError, RuntimeError, asyncio.TimeoutError, OSError) as err:
            detail = err.message if isinstance(err, RPCError) else (str(err) or type(err).__name__)
            raise TemporalDidNotTake(f"Temporal did not take it: {detail}") from err


class HandoverSweeper:
    """Finishes pending hand-overs of every concern: at start-up, when woken, and every `interval` for
    what other processes left behind; backs off while Temporal does not answer."""

    def __init__(self, handover_for: Callable[[], Awaitable[Handover | None]], sessions: Sessions, *,
                 interval: float = 10.0, max_backoff: float = 30.0) -> None:
        self.handover_for = handover_for
        self.sessions = sessions
        self.interval, self.max_backoff = interval, max_backoff
        self.woken = asyncio.Event()
        self.backoff = 0.0

    def wake(self) -> None:
        """Ask for a sweep soon (a hand-over just failed, or Temporal may be back)."""
        self.woken.set()

    async def sweep(self, *, settled_for: float = 0.0) -> bool:
        """One pass over the pending concerns; True if nothing is left pending."""
        handover = await self.handover_for()
        if handover is None:
            return False
        settled = outbox.settled_since(settled_for) if settled_for else None
        concern_ids = await to_thread.run_sync(self._concerns, settled)
        for concern_id in concern_ids:
            if not await handover.hand_over(concern_id):
                return False
        if concern_ids:
            log.info("handed %d concerns' pending intake to Temporal", len(concern_ids))
        return True

    def _concerns(self, settled) -> list[str]:
        with self.sessions.begin() as session:
            return outbox.concerns_pending(session=session, settled_before=settled)

    async def run(self) -> None:
        """Sweep until cancelled."""
        first = True
        while True:
            self.woken.clear()
            try:
                # At start-up everything pending is a leftover; later, skip rows a request is handing over now.
                done = await self.sweep(settled_for=0.0 if first or self.backoff else 2.0)
            except Exception:  # noqa: BLE001 - the registry may be down too; the sweeper must outlive it
                log.exception("handing pending intake to Temporal failed")
                done = False
            first = False
            self.backoff = 0.0 if done else min(max(self.backoff * 2, 0.5), self.max_backoff)
            if self.backoff:
                log.warning("intake is waiting for Temporal; next try in %.1fs", self.backoff)
            if self.backoff:  # a wake-up during the back-off (another failed request) does not shorten it
                await asyncio.sleep(self.backoff)
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.woken.wait(), self.interval)


def sweeper_on(client: Client, sessions: Sessions, settings: Settings, catalog: Catalog) -> HandoverSweeper:
    """A sweeper for a process that holds a connected client (worker, SMTP listener)."""
    handover = Handover(sessions=sessions, client=lambda: client, settings=settings, catalog=catalog)

    async def ready() -> Handover:
        return handover

    sweeper = HandoverSweeper(ready, sessions)
    handover.on_pending = sweeper.wake
    return sweeper

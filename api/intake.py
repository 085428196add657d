"""The one service path every channel uses to open and continue concerns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.client import Client

from api.catalog import Catalog
from api.handover import Handover
from registry import concerns as store
from registry.customers import find_or_create_customer
from registry.db import Sessions
from registry.handover import add_handover, is_pending
from registry.logs import about_concern
from registry.models import Concern, Interaction
from registry.settings import Settings
from registry.sop_store import choose_sop
from workflows.payloads import OpenConcernInput


class IntakeError(Exception):
    """A request the desk cannot take, with the HTTP status and what to fix."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


log = logging.getLogger(__name__)


@dataclass
class Intake:
    """Opens concerns and passes customer messages on, for the API, the portal, e-mail and phone logs.

    Everything is stored in the registry first, together with a hand-over (the intake outbox); Temporal
    then gets it at once, or, while it is unreachable, from the process's `HandoverSweeper` later."""

    sessions: Sessions
    client: Client | None
    settings: Settings
    catalog: Catalog
    # Wakes this process's sweeper when a hand-over could not be finished now.
    on_pending: Callable[[], None] | None = None
    # Told the channel of each concern this intake registers (not of one a retry finds again): the metrics.
    on_opened: Callable[[str], None] | None = None
    handover: Handover = field(init=False)

    def __post_init__(self) -> None:
        self.handover = Handover(sessions=self.sessions, client=lambda: self.client, settings=self.settings,
                                 catalog=self.catalog, on_pending=self.on_pending)

    async def open(
        self, *, email: str | None, phone: str | None = None, name: str = "", subject: str, body: str,
        channel: str, priority: str | None = None, category: str | None = None,
        idempotency_key: str | None = None, source_key: str | None = None, meta: dict | None = None,
    ) -> Concern:
        """Register a concern (or find the one this key already made) and make sure its workflow runs."""
        if not email and not phone:
            raise IntakeError(422, "give the customer's e-mail or phone number")
        # Database work runs on a worker thread: a write waiting for SQLite's lock must not stall the event loop.
        try:
            concern, fresh = await to_thread.run_sync(self._register, email, phone, name, subject, body, channel,
                                                      priority, category, idempotency_key, source_key, meta)
        except IntegrityError:
            # A concurrent request with the same key or message won the race; answer with its concern.
            concern, fresh = await to_thread.run_sync(self._existing, idempotency_key, source_key), False
            if concern is None:
                raise
        if fresh and self.on_opened is not None:
            self.on_opened(channel)
        with about_concern(concern.id, concern.workflow_id):
            log.info("concern registered from %s", channel)
            await self.handover.hand_over(concern.id)
        return concern

    def _existing(self, idempotency_key: str | None, source_key: str | None) -> Concern | None:
        with self.sessions.begin() as session:
            if idempotency_key:
                found = store.find_by_idempotency_key(session=session, key=idempotency_key)
                if found:
                    return found
            if source_key:
                row = session.exec(select(Interaction).where(Interaction.source_key == source_key)).first()
                if row and row.concern_id:
                    return session.get(Concern, row.concern_id)
        return None

    def _register(self, email, phone, name, subject, body, channel, priority, category, idempotency_key,
                  source_key, meta) -> tuple[Concern, bool]:
        existing = self._existing(idempotency_key, source_key)
        if existing is not None:
            return existing, False
        with self.sessions.begin() as session:
            customer, _ = find_or_create_customer(session=session, email=email, phone=phone, name=name)
            sop = choose_sop(session=session, category=category, channel=channel)
            if sop is None:
                raise IntakeError(503, "no SOP is published yet; run `ccr sop publish sops/definitions/*.yaml`")
            concern = store.register_concern(
                session=session, customer=customer, subject=subject.strip(), body=body, channel=channel,
                priority=priority or "normal", category=category,
                workflow_id_prefix=self.settings.workflow_id_prefix, idempotency_key=idempotency_key,
                source_key=source_key, meta=meta,
            )
            concern.sop_id, concern.sop_version = sop.sop_id, sop.version
            concern.sla_policy = sop.definition["sla"]
            session.add(concern)
            add_handover(session=session, concern_id=concern.id, kind="start")
            return concern, True

    def workflow_input(self, session: Session, concern: Concern) -> OpenConcernInput:
        """The workflow's whole input, built from the registry alone (so a retried start is identical)."""
        return self.handover.workflow_input(session, concern)

    async def start(self, concern: Concern) -> bool:
        """Hand the concern's workflow start (and anything after it) to Temporal; False if it is still pending."""
        return await self.handover.hand_over(concern.id)

    def is_pending(self, concern_id: str) -> bool:
        """Whether Temporal has yet to hear of the concern or of a message its customer sent."""
        with self.sessions.begin() as session:
            return is_pending(session=session, concern_id=concern_id)

    async def message(
        self, *, concern_id: str, text: str, channel: str, author: str, intent: str = "message",
        source_key: str | None = None, meta: dict | None = None,
    ) -> tuple[Interaction, bool]:
        """Store a customer's message with its hand-over, then hand it to the workflow; returns it and whether it
        reopens the concern. While Temporal is unreachable the message stays pending and is handed over later."""
        row, fresh, reopens = await to_thread.run_sync(self._store_message, concern_id, text, channel, author,
                                                       intent, source_key, meta)
        if fresh:
            await self.handover.hand_over(concern_id)
        return row, reopens

    def _store_message(self, concern_id, text, channel, author, intent, source_key, meta
                       ) -> tuple[Interaction, bool, bool]:
        with self.sessions.begin() as session:
            concern = session.get(Concern, concern_id)
            if concern is None:
                raise IntakeError(404, f"no concern {concern_id}")
            if concern.status == "closed":
                raise IntakeError(409, f"concern {concern_id} is closed; open a new concern instead")
            if source_key:
                dup = session.exec(select(Interaction).where(Interaction.source_key == source_key)).first()
                if dup is not None:
                    return dup, False, False
            row = store.add_customer_message(session=session, concern=concern, body=text, channel=channel,
                                             author=author, source_key=source_key, meta={"intent": intent, **(meta or {})})
            add_handover(session=session, concern_id=concern.id, kind="message", interaction_id=row.id)
            return row, True, concern.status == "resolved" and intent != "solved"

"""The one service path every channel uses to open and continue concerns."""

from __future__ import annotations

from dataclasses import dataclass

from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.catalog import Catalog
from registry import concerns as store
from registry.customers import find_or_create_customer
from registry.db import Sessions
from registry.models import Concern, Customer, Interaction
from registry.settings import Settings
from registry.sop_store import choose_sop, get_version
from sops.schema import SopDefinition, parse_duration
from workflows.concern import ConcernWorkflow
from workflows.payloads import CustomerMessage, CustomerRef, OpenConcernInput


class IntakeError(Exception):
    """A request the desk cannot take, with the HTTP status and what to fix."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class Intake:
    """Opens concerns and passes customer messages on, for the API, the portal, e-mail and phone logs."""

    sessions: Sessions
    client: Client
    settings: Settings
    catalog: Catalog

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
            concern = await to_thread.run_sync(self._register, email, phone, name, subject, body, channel, priority,
                                               category, idempotency_key, source_key, meta)
        except IntegrityError:
            # A concurrent request with the same key or message won the race; answer with its concern.
            concern = await to_thread.run_sync(self._existing, idempotency_key, source_key)
            if concern is None:
                raise
        await self.start(concern)
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
                  source_key, meta) -> Concern:
        existing = self._existing(idempotency_key, source_key)
        if existing is not None:
            return existing
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
            return concern

    def workflow_input(self, session: Session, concern: Concern) -> OpenConcernInput:
        """The workflow's whole input, built from the registry alone (so a retried start is identical)."""
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
            subject=concern.subject, body=first.body if first else "", channel=concern.channel,
            priority=concern.priority, category=concern.category,
            category_from_customer=concern.category is not None, opened_at=concern.created_at,
            sop=sop, policy=policy, calendar=calendar,
            reopen_window=parse_duration(self.settings.reopen_window),
            deliver_mail=self.settings.relay_host is not None,
            continue_after_events=self.settings.continue_after_events,
        )

    def _start_input(self, concern_id: str) -> OpenConcernInput | None:
        with self.sessions.begin() as session:
            row = session.get(Concern, concern_id)
            return self.workflow_input(session, row) if row.status == "new" else None

    async def start(self, concern: Concern) -> None:
        """Start the concern's workflow unless it already runs (or ran)."""
        payload = await to_thread.run_sync(self._start_input, concern.id)
        if payload is None:
            return
        try:
            await self.client.start_workflow(
                ConcernWorkflow.run, payload, id=concern.workflow_id, task_queue=self.settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"{concern.id}: {concern.subject[:80]}",
            )
        except WorkflowAlreadyStartedError:
            pass
        except Exception as err:
            raise IntakeError(
                503, f"concern {concern.id} is registered but its workflow could not start ({err}); "
                "send the same request again with the same Idempotency-Key",
            ) from err

    async def message(
        self, *, concern_id: str, text: str, channel: str, author: str, intent: str = "message",
        source_key: str | None = None, meta: dict | None = None,
    ) -> tuple[Interaction, bool]:
        """Store a customer's message first, then signal the workflow; returns it and whether it reopens."""
        row, workflow_id, reopens = await to_thread.run_sync(self._store_message, concern_id, text, channel, author,
                                                             intent, source_key, meta)
        if workflow_id is None:  # the same message came before
            return row, False
        handle = self.client.get_workflow_handle(workflow_id)
        await handle.signal(ConcernWorkflow.customer_message,
                            CustomerMessage(interaction_id=row.id, text=text, channel=channel, intent=intent,
                                            at=row.created_at))
        return row, reopens

    def _store_message(self, concern_id, text, channel, author, intent, source_key, meta
                       ) -> tuple[Interaction, str | None, bool]:
        with self.sessions.begin() as session:
            concern = session.get(Concern, concern_id)
            if concern is None:
                raise IntakeError(404, f"no concern {concern_id}")
            if concern.status == "closed":
                raise IntakeError(409, f"concern {concern_id} is closed; open a new concern instead")
            if source_key:
                dup = session.exec(select(Interaction).where(Interaction.source_key == source_key)).first()
                if dup is not None:
                    return dup, None, False
            row = store.add_customer_message(session=session, concern=concern, body=text, channel=channel,
                                             author=author, source_key=source_key, meta={"intent": intent, **(meta or {})})
            return row, concern.workflow_id, concern.status == "resolved" and intent != "solved"

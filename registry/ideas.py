"""Ideas to product: concerns tagged with a product and marked as feedback in the customer's own words, grouped by
product and theme for product management, and the customers told through their concern when a theme ships."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from registry import audit
from registry.models import Concern, Customer, Interaction
from registry.ratings import Rating
from registry.types import UTCDateTime, utcnow

KINDS = {"bug": "Bug", "missing_feature": "Missing feature", "usability": "Usability problem", "praise": "Praise"}
STATUSES = {"new": "New", "under_review": "Under review", "planned": "Planned", "shipped": "Shipped",
            "declined": "Declined"}
# The customer's own words: only what they sent in on the concern can be quoted.
QUOTABLE = ("in",)
NO_THEME = "(no theme yet)"


class IdeaTheme(SQLModel, table=True):
    """A theme of feedback on one product, with where product management stands on it."""

    __table_args__ = (UniqueConstraint("product", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    product: str = Field(max_length=100)
    name: str = Field(max_length=200)
    status: str = Field(default="new", max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProductFeedback(SQLModel, table=True):
    """A concern marked as feedback on a product, quoting one of its customer's messages verbatim."""

    __table_args__ = (UniqueConstraint("concern_id", "interaction_id"),
                      Index("ix_productfeedback_product", "product", "created_at"))

    id: int | None = Field(default=None, primary_key=True)
    concern_id: str = Field(foreign_key="concern.id", max_length=20, index=True)
    customer_id: int = Field(foreign_key="customer.id")
    product: str = Field(max_length=100)
    kind: str = Field(max_length=20)
    theme_id: int | None = Field(default=None, foreign_key="ideatheme.id", index=True)
    interaction_id: int = Field(foreign_key="interaction.id")
    quote: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    by_user_id: int | None = None
    by_name: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdeaNotice(SQLModel, table=True):
    """That a concern's customer was told its theme shipped: once per theme and concern."""

    __table_args__ = (UniqueConstraint("theme_id", "concern_id"),)

    id: int | None = Field(default=None, primary_key=True)
    theme_id: int = Field(foreign_key="ideatheme.id")
    concern_id: str = Field(foreign_key="concern.id", max_length=20)
    customer_id: int = Field(foreign_key="customer.id")
    interaction_id: int | None = None
    outbox_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FeedbackRefused(ValueError):
    """The feedback cannot be recorded as given; the message says why."""


def quotable_messages(*, session: Session, concern_id: str) -> list[Interaction]:
    """The concern's messages from its customer, oldest first: what an agent may quote."""
    return list(session.exec(select(Interaction).where(
        Interaction.concern_id == concern_id, col(Interaction.direction).in_(QUOTABLE),
        Interaction.body != "").order_by(Interaction.created_at, Interaction.id)))


def feedback_of(*, session: Session, concern_id: str) -> list[ProductFeedback]:
    """The feedback recorded on a concern, oldest first."""
    return list(session.exec(select(ProductFeedback).where(ProductFeedback.concern_id == concern_id)
                             .order_by(ProductFeedback.id)))


def theme_names(*, session: Session) -> list[tuple[str, str]]:
    """Every (product, theme) known, so agents reuse a theme's name rather than coin a near twin."""
    return [tuple(r) for r in session.exec(select(IdeaTheme.product, IdeaTheme.name)
                                           .order_by(IdeaTheme.product, IdeaTheme.name)).all()]


def _theme(session: Session, product: str, name: str) -> IdeaTheme:
    theme = session.exec(select(IdeaTheme).where(IdeaTheme.product == product, IdeaTheme.name == name)).first()
    if theme is None:
        theme = IdeaTheme(product=product, name=name)
        session.add(theme)
        session.flush()
    return theme


def record_feedback(*, session: Session, concern_id: str, interaction_id: int, product: str, kind: str,
                    theme: str = "", by_user_id: int | None = None, by_name: str = "") -> ProductFeedback:
    """Mark a concern as product feedback quoting one of its customer's messages, word for word."""
    product, theme = " ".join(product.split())[:100], " ".join(theme.split())[:200]
    if not product:
        raise FeedbackRefused("name the product or service the feedback is about")
    if kind not in KINDS:
        raise FeedbackRefused(f"the kind is one of: {', '.join(KINDS.values())}")
    concern = session.get(Concern, concern_id)
    if concern is None:
        raise FeedbackRefused(f"no concern {concern_id}")
    message = session.get(Interaction, interaction_id)
    if message is None or message.concern_id != concern_id or message.direction not in QUOTABLE or not message.body:
        raise FeedbackRefused("pick a quote from this concern's customer messages")
    if session.exec(select(ProductFeedback.id).where(ProductFeedback.concern_id == concern_id,
                                                     ProductFeedback.interaction_id == interaction_id)).first():
        raise FeedbackRefused("that message is quoted as feedback on this concern already")
    row = ProductFeedback(concern_id=concern_id, customer_id=concern.customer_id, product=product, kind=kind,
                          theme_id=_theme(session, product, theme).id if theme else None,
                          interaction_id=interaction_id, quote=message.body, by_user_id=by_user_id,
                          by_name=by_name[:200])
    session.add(row)
    session.flush()
    return row


@dataclass
class IdeaGroup:
    """Feedback on one product and theme in a period, compared with the period before."""

    product: str
    theme: str
    theme_id: int | None
    status: str
    concerns: int = 0
    customers: int = 0
    previous: int = 0
    csat: float | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    quotes: list[dict] = field(default_factory=list)

    @property
    def trend(self) -> int:
        """Concerns in the period minus concerns in the period before."""
        return self.concerns - self.previous


@dataclass(frozen=True)
class Period:
    """Whole UTC days, both included, and the period of the same length just before."""

    start: date
    end: date

    @property
    def previous(self) -> Period:
        days = (self.end - self.start).days + 1
        return Period(self.start - timedelta(days=days), self.start - timedelta(days=1))

    def bounds(self) -> tuple[datetime, datetime]:
        return (datetime.combine(self.start, time(), timezone.utc),
                datetime.combine(self.end + timedelta(days=1), time(), timezone.utc))


def last_days(days: int, today: date | None = None) -> Period:
    """The last `days` days up to and including today (UTC)."""
    today = today or utcnow().date()
    return Period(today - timedelta(days=days - 1), today)


def ideas(*, session: Session, period: Period) -> list[IdeaGroup]:
    """Feedback grouped by product and theme: concerns, distinct customers and quotes in the period, concerns in
    the period before, and the average CSAT of the period's concerns; most concerns first."""
    start, end = period.previous.bounds()[0], period.bounds()[1]
    split = period.bounds()[0]
    rows = session.exec(select(ProductFeedback, IdeaTheme, Customer.name).join(
        IdeaTheme, IdeaTheme.id == ProductFeedback.theme_id, isouter=True).join(
        Customer, Customer.id == ProductFeedback.customer_id).where(
        ProductFeedback.created_at >= start, ProductFeedback.created_at < end).order_by(ProductFeedback.id)).all()
    groups: dict[tuple[str, int | None], IdeaGroup] = {}
    now_concerns: dict[tuple, set[str]] = {}
    now_customers: dict[tuple, set[int]] = {}
    before: dict[tuple, set[str]] = {}
    for fb, theme, customer_name in rows:
        key = (fb.product, fb.theme_id)
        group = groups.get(key)
        if group is None:
            group = groups[key] = IdeaGroup(product=fb.product, theme=theme.name if theme else NO_THEME,
                                            theme_id=fb.theme_id, status=theme.status if theme else "")
        if fb.created_at < split:
            before.setdefault(key, set()).add(fb.concern_id)
            continue
        now_concerns.setdefault(key, set()).add(fb.concern_id)
        now_customers.setdefault(key, set()).add(fb.customer_id)
        group.kinds[fb.kind] = group.kinds.get(fb.kind, 0) + 1
        group.quotes.append({"concern_id": fb.concern_id, "interaction_id": fb.interaction_id, "kind": fb.kind,
                             "quote": fb.quote, "customer": customer_name, "at": fb.created_at})
    concern_ids = set().union(*now_concerns.values()) if now_concerns else set()
    ratings: dict[str, int] = {}
    if concern_ids:
        for concern_id, csat in session.exec(select(Rating.concern_id, Rating.csat).where(
                col(Rating.concern_id).in_(sorted(concern_ids)))).all():
            ratings[concern_id] = csat
    for key, group in groups.items():
        ids = now_concerns.get(key, set())
        group.concerns, group.customers = len(ids), len(now_customers.get(key, set()))
        group.previous = len(before.get(key, set()))
        rated = [ratings[c] for c in ids if c in ratings]
        group.csat = round(sum(rated) / len(rated), 2) if rated else None
    return sorted(groups.values(), key=lambda g: (-g.concerns, -g.previous, g.product.lower(), g.theme.lower()))


def set_status(*, session: Session, theme_id: int, status: str, actor: str, support_domain: str,
               base_url: str = "") -> tuple[IdeaTheme, int]:
    """Give a theme a status, audited in the same transaction; on `shipped`, tell each of its concerns' customers
    once. Returns the theme and how many customers were told now."""
    if status not in STATUSES or status == "new":
        raise FeedbackRefused(f"the status is one of: {', '.join(v for k, v in STATUSES.items() if k != 'new')}")
    theme = session.get(IdeaTheme, theme_id, with_for_update=True)
    if theme is None:
        raise LookupError(f"no theme {theme_id}")
    before = theme.status
    theme.status, theme.updated_at = status, utcnow()
    session.add(theme)
    told = tell_customers(session=session, theme=theme, support_domain=support_domain, base_url=base_url) \
        if status == "shipped" else 0
    audit.record(session=session, actor=actor, action="idea.status", target=f"idea-theme:{theme.id}",
                 detail={"product": theme.product, "theme": theme.name, "from": before, "to": status,
                         "customers_told": told})
    return theme, told


def tell_customers(*, session: Session, theme: IdeaTheme, support_domain: str, base_url: str = "") -> int:
    """A notice on each concern of the theme (its timeline, and a mail in the outbox when the customer has an
    address); a concern already told about this theme is skipped, so shipping twice tells nobody twice."""
    from activities.mail_out import new_message_id, queue_mail, render_mail, thread_headers_for

    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    concerns = session.exec(select(Concern).where(col(Concern.id).in_(
        select(ProductFeedback.concern_id).where(ProductFeedback.theme_id == theme.id))).order_by(Concern.id)).all()
    told = 0
    for concern in concerns:
        notice_id = session.execute(insert(IdeaNotice.__table__).values(
            theme_id=theme.id, concern_id=concern.id, customer_id=concern.customer_id, created_at=utcnow(),
        ).on_conflict_do_nothing().returning(IdeaNotice.__table__.c.id)).scalar()
        if notice_id is None:
            continue
        customer = session.get(Customer, concern.customer_id)
        text = f"{theme.name}: this has now shipped in {theme.product}."
        entry = Interaction(customer_id=concern.customer_id, concern_id=concern.id, kind="product_update",
                            channel="email" if customer and customer.email else "web", direction="out",
                            author="Customer Care", body=text, source_key=f"idea:{theme.id}:{concern.id}",
                            meta={"theme_id": theme.id, "template": "product_update", "portal_text": text})
        session.add(entry)
        session.flush()
        notice = session.get(IdeaNotice, notice_id)
        notice.interaction_id = entry.id
        if customer and customer.email:
            # Outside the concern's own numbering (workflow sequence numbers are positive), so it never collides.
            seq = -notice_id
            subject, body, html = render_mail("product_update", {
                "concern_id": concern.id, "subject": concern.subject, "customer_name": customer.name,
                "text": text, "article_title": theme.product,
                "portal_url": f"{base_url}/portal/concerns/{concern.id}"})
            in_reply_to, references = thread_headers_for(session=session, concern_id=concern.id)
            mail = queue_mail(session=session, concern_id=concern.id, seq=seq, to=customer.email, subject=subject,
                              text=body, html=html, message_id=new_message_id(support_domain, concern.id, seq),
                              in_reply_to=in_reply_to, references=references)
            notice.outbox_id = mail.id
        session.add(notice)
        told += 1
    session.flush()
    return told

"""Full-text search of concerns for the queue: parts of the id, the subject, the first message, the customer.

Each concern has one search document (`concern_search`), written by intake with the concern: every suffix of
its id's code (so a prefix query finds any part of `CCR-9WT3…`, such as `9wt3` or `wt3`), then the words
of its subject and of the customer's first message. Customers are searched by name and e-mail address in
their own index, which the database keeps in step with every edit. SQLite indexes both with FTS5,
PostgreSQL with tsvector columns and GIN indexes (revision 0640); words are folded the same way on both
(lower case, accents removed), and every query word matches as a prefix, in any of the places.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import Column, String, Text, and_, bindparam, column, or_, text
from sqlmodel import Field, Session, SQLModel

from registry.models import Concern

_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 6
BODY_CHARS = 20_000  # the start of a long first message is what people search for


class ConcernSearch(SQLModel, table=True):
    """The words a concern is found by in the queue's search (the index is on this table)."""

    __tablename__ = "concern_search"

    id: int | None = Field(default=None, primary_key=True)
    concern_id: str = Field(foreign_key="concern.id", unique=True, max_length=20)
    document: str = Field(sa_column=Column(Text, nullable=False))


def words(value: str) -> list[str]:
    """The words of `value`, lower case and without accents, as both databases' indexes hold them."""
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", value.lower()) if not unicodedata.combining(ch))
    return _WORD.findall(folded)


def search_document(*, concern_id: str, subject: str, body: str) -> str:
    """The text a concern is indexed by: every suffix (3+ characters) of its id's code, subject and first message."""
    code = concern_id.removeprefix("CCR-").lower()
    suffixes = [code[i:] for i in range(max(1, len(code) - 2))]
    return " ".join(suffixes + words(subject) + words(body[:BODY_CHARS]))


def index_concern(*, session: Session, concern: Concern, body: str) -> None:
    """Write the search document of a newly registered concern."""
    session.add(ConcernSearch(concern_id=concern.id,
                              document=search_document(concern_id=concern.id, subject=concern.subject, body=body)))


def query_terms(query: str) -> list[str]:
    """The words to look for (at most six, `CCR` left out since every id has it)."""
    found: dict[str, None] = {}
    for word in words(query):
        if word != "ccr":
            found.setdefault(word, None)
    return list(found)[:MAX_TERMS]


def term_params(terms: list[str], dialect: str) -> dict[str, str]:
    """The query of each term for the database: a prefix match, except for single characters."""
    params = {}
    for i, term in enumerate(terms):
        prefix = len(term) > 1
        if dialect == "postgresql":
            params[f"term_{i}"] = f"{term}:*" if prefix else term
        else:
            params[f"term_{i}"] = f'"{term}" *' if prefix else f'"{term}"'
    return params


def search_condition(dialect: str, terms: int):
    """A condition on `Concern`: every term (parameters term_0, term_1, ...) is in its document or its customer.

    Each term is looked up in the full-text indexes; the queue's index walks then keep only the concerns found.
    """
    conditions = []
    for i in range(terms):
        if dialect == "postgresql":
            documents = text("SELECT concern_id FROM concern_search "
                             f"WHERE search_vector @@ to_tsquery('simple', :term_{i})")
            customers = text(f"SELECT id FROM customer WHERE search_vector @@ to_tsquery('simple', :term_{i})")
        else:
            documents = text("SELECT concern_id FROM concern_search WHERE id IN "
                             f"(SELECT rowid FROM concern_fts WHERE concern_fts MATCH :term_{i})")
            customers = text(f"SELECT rowid FROM customer_fts WHERE customer_fts MATCH :term_{i}")
        term = bindparam(f"term_{i}", type_=String)
        conditions.append(or_(Concern.id.in_(documents.bindparams(term).columns(column("concern_id"))),
                              Concern.customer_id.in_(customers.bindparams(term).columns(column("id")))))
    return and_(*conditions)

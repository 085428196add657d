"""Real parts for every test: databases (SQLite and PostgreSQL), a Temporal dev server, the app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry.db import Sessions, make_engine
from registry.migrate import upgrade

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ARTIFACTS = Path(__file__).parent / "artifacts"


def _postgres_reachable() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


POSTGRES = _postgres_reachable()
DATABASES = ["sqlite"] + (["postgresql"] if POSTGRES else [])


def fresh_database_url(kind: str, tmp_path: Path) -> str:
    """A new, migrated, empty registry database of `kind` (a temp SQLite file or a PostgreSQL schema)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / f'registry-{uuid.uuid4().hex[:8]}.db'}"
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    upgrade(url)
    return url


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> str:
    """A fresh registry database; tests using it run once on SQLite and once on PostgreSQL."""
    return fresh_database_url(request.param, tmp_path)


@pytest.fixture
def sessions(database_url) -> Iterator[Sessions]:
    """Sessions on a fresh registry database (SQLite and PostgreSQL)."""
    engine = make_engine(database_url)
    yield Sessions(engine)
    engine.dispose()


@pytest.fixture
def artifacts() -> Path:
    """A folder for screenshots and other files a test leaves for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

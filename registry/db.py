"""Database engine and sessions for SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


class _Pen:
    """The right to write one SQLite file, held by one transaction of this process at a time.

    A plain lock, so a transaction may end on another thread than the one that wrote (FastAPI closes
    dependencies elsewhere); a second transaction writing on the holder's own thread does not wait for it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.holder: int | None = None

    def take(self) -> bool:
        me = threading.get_ident()
        if self.holder == me:
            return False
        self._lock.acquire()
        self.holder = me
        return True

    def give_back(self) -> None:
        self.holder = None
        self._lock.release()


_pens: dict[str, _Pen] = {}
_pens_guard = threading.Lock()
# Inside `Sessions.begin()`: the pens this transaction took; outside, None.
_holding: ContextVar[list | None] = ContextVar("ccr_sqlite_writer", default=None)


def _pen_for(database: str) -> _Pen:
    with _pens_guard:
        return _pens.setdefault(str(Path(database).resolve()), _Pen())


def _serialise_writers(engine: Engine, database: str) -> None:
    """Let this process's transactions write to one SQLite file one at a time, in the order they ask.

    SQLite has one writer per file; a transaction that finds it busy sleeps in the busy handler and tries again
    with growing pauses, so under load writers starve each other for seconds while the file is free. Taking a
    lock in the process at a transaction's first write hands the file from one writer to the next without sleeping.
    Other processes still meet at SQLite's own lock and busy timeout.
    """
    pen = _pen_for(database)

    @event.listens_for(engine, "before_cursor_execute")
    def _take_the_pen(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        held = _holding.get()
        if held is not None and not held and statement.lstrip()[:6].upper() in _WRITES and pen.take():
            held.append(pen)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout so web and worker share it."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        if parsed.database and parsed.database != ":memory:":
            _serialise_writers(engine, parsed.database)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Sessions:
    """A session factory bound to one engine, handed to stores and activities."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        held: list[_Pen] = []
        outer = _holding.get()
        _holding.set(held)
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                with session.begin():
                    yield session
        finally:
            _holding.set(outer)
            for pen in held:
                pen.give_back()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for pages that only read: each statement on its own, without BEGIN and COMMIT round trips.

        Statements do not share one snapshot, so use `begin()` where reads must agree with each other.
        """
        with Session(self._reader, expire_on_commit=False) as session:
            yield session

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

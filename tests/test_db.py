"""Transactions on one SQLite file from many threads of a process: all commit, and none waits forever."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from registry.db import Sessions, make_engine
from tests.conftest import fresh_database_url


@pytest.fixture
def sqlite_sessions(tmp_path):
    engine = make_engine(fresh_database_url("sqlite", tmp_path))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE tally (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO tally VALUES (0)"))
    yield Sessions(engine)
    engine.dispose()


def _count(sessions: Sessions) -> int:
    with sessions.read() as session:
        return session.execute(text("SELECT n FROM tally")).scalar_one()


def test_concurrent_transactions_that_read_then_write_all_commit(sqlite_sessions):
    def bump(_: int) -> None:
        with sqlite_sessions.begin() as session:
            session.execute(text("SELECT n FROM tally")).scalar_one()
            session.execute(text("UPDATE tally SET n = n + 1"))
            session.execute(text("UPDATE tally SET n = n + 1"))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(bump, range(400), timeout=60))
    # Every transaction committed both of its writes: none failed with "database is locked".
    assert _count(sqlite_sessions) == 800


def test_a_transaction_that_fails_lets_the_next_writer_in(sqlite_sessions):
    with pytest.raises(RuntimeError):
        with sqlite_sessions.begin() as session:
            session.execute(text("UPDATE tally SET n = 5"))
            raise RuntimeError("the route failed after writing")
    done = threading.Event()

    def write() -> None:
        with sqlite_sessions.begin() as session:
            session.execute(text("UPDATE tally SET n = n + 1"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(10), "a writer on another thread waited for a transaction that had already failed"
    assert _count(sqlite_sessions) == 1


def test_a_transaction_may_end_on_another_thread_than_the_one_that_wrote(sqlite_sessions):
    # FastAPI opens a dependency's transaction on one thread and closes it on another.
    transaction = sqlite_sessions.begin()

    def start() -> None:
        session = transaction.__enter__()
        session.execute(text("UPDATE tally SET n = 41"))

    def finish() -> None:
        transaction.__exit__(None, None, None)

    for step in (start, finish):
        worker = threading.Thread(target=step)
        worker.start()
        worker.join(10)
    with sqlite_sessions.begin() as session:
        session.execute(text("UPDATE tally SET n = n + 1"))
    assert _count(sqlite_sessions) == 42

"""Keeps the parts of one process running: a part that ends without being asked is logged with its reason and
started again with back-off; one that keeps failing ends the whole process with its name (`ccr up`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("ccr.supervisor")


class PartFailed(Exception):
    """A part could not be (re)started: the process must say which and exit non-zero."""


@dataclass
class Part:
    """One supervised part: `run()` lasts as long as the part does; `stop()` ends it cleanly."""

    name: str
    run: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]] | None = None
    restarts: int = 0
    failures: int = 0  # in a row, without a run that lasted `healthy_after`
    task: asyncio.Task | None = field(default=None, repr=False)
    started_at: float = 0.0


class Supervisor:
    """Runs parts until `stop` is set; restarts a part that ends, with back-off, at most `max_failures` in a row."""

    def __init__(self, stop: asyncio.Event, *, max_failures: int = 5, first_backoff: float = 0.5,
                 max_backoff: float = 15.0, healthy_after: float = 30.0) -> None:
        self.stop = stop
        self.parts: list[Part] = []
        self.max_failures, self.first_backoff, self.max_backoff = max_failures, first_backoff, max_backoff
        self.healthy_after = healthy_after
        self.failed: PartFailed | None = None

    def add(self, name: str, run: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]] | None = None
            ) -> Part:
        part = Part(name, run, stop)
        self.parts.append(part)
        return part

    def _start(self, part: Part) -> None:
        part.started_at = time.monotonic()
        part.task = asyncio.create_task(part.run(), name=f"part:{part.name}")
        part.task.add_done_callback(lambda task, part=part: self._ended(part, task))

    def start(self) -> None:
        for part in self.parts:
            self._start(part)

    def _ended(self, part: Part, task: asyncio.Task) -> None:
        if self.stop.is_set() or task.cancelled():
            return
        error = task.exception()
        reason = f"{type(error).__name__}: {error}" if error is not None else "it returned"
        if time.monotonic() - part.started_at >= self.healthy_after:
            part.failures = 0
        part.failures += 1
        if part.failures > self.max_failures:
            self.failed = PartFailed(f"the {part.name} could not be restarted after {self.max_failures} tries; "
                                     f"last: {reason}")
            log.error("%s", self.failed)
            self.stop.set()
            return
        delay = min(self.first_backoff * 2 ** (part.failures - 1), self.max_backoff)
        log.warning("the %s stopped (%s); restarting it in %.1fs", part.name, reason, delay)
        asyncio.get_running_loop().create_task(self._restart(part, delay))

    async def _restart(self, part: Part, delay: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stop.wait(), delay)
        if self.stop.is_set():
            return
        part.restarts += 1
        log.warning("restarting the %s (restart %d)", part.name, part.restarts)
        self._start(part)

    async def shutdown(self) -> None:
        """Stop every part, the last added first (the web app before the dev server it talks to)."""
        for part in reversed(self.parts):
            if part.stop is not None:
                with contextlib.suppress(Exception):
                    await part.stop()
            if part.task is not None and not part.task.done():
                part.task.cancel()
            if part.task is not None:
                await asyncio.gather(part.task, return_exceptions=True)

"""Record one completed history per shipped SOP, for the replay test (`python -m tests.histories.record`).

Run it after an intended change of the interpreter and commit the JSON files: CI then replays them
with `Replayer`, so a change that would break running concerns fails CI instead of production.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from api.intake import Intake
from registry.db import Sessions, make_engine
from tests.conftest import DevServer, catalog_with_test_policies, fresh_database_url, make_settings, publish_all
from tests.engine_support import act, say
from worker import build_worker
from workflows.client import make_client
from workflows.payloads import AgentRef

HERE = Path(__file__).parent
AGENT = AgentRef(id=1, name="Ada", level=3, skills=["general", "accounts", "identity", "security", "billing",
                                                     "orders", "complaints"])


class _Desk:
    def __init__(self, sessions, client, intake):
        self.sessions, self.client, self.intake = sessions, client, intake

    async def wait_for(self, concern_id, predicate, timeout=30):
        from tests.conftest import Desk

        return await Desk.wait_for(self, concern_id, predicate, timeout)

    async def concern(self, concern_id):
        from tests.conftest import Desk

        return await Desk.concern(self, concern_id)


async def _general(desk):
    c = await desk.intake.open(email="a@example.com", name="A", subject="Question about invoices",
                               body="How do I download my invoice?", channel="web", category="billing")
    await desk.wait_for(c.id, lambda r: r.level is not None)
    await act(desk, c, "claim", AGENT)
    await act(desk, c, "reply", AGENT, text="Under Account, Billing.")
    await act(desk, c, "resolve", AGENT, text="Explained where invoices are.")
    return c


async def _account(desk):
    c = await desk.intake.open(email="b@example.com", name="B", subject="Locked out",
                               body="I cannot sign in to my account", channel="email", category="account-access")
    await desk.wait_for(c.id, lambda r: r.status == "waiting_customer")
    await say(desk, c, "The link worked, thanks", intent="solved")
    return c


async def _complaint(desk):
    c = await desk.intake.open(email="c@example.com", name="C", subject="Rude delivery driver",
                               body="The driver threw my parcel over the fence.", channel="web",
                               category="complaint", priority="high")
    await desk.wait_for(c.id, lambda r: r.level is not None)
    await act(desk, c, "claim", AGENT)
    await act(desk, c, "note", AGENT, text="Called the courier")
    await act(desk, c, "resolve", AGENT, text="Apologised and refunded the shipping.")
    return c


async def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    server = DevServer().start()
    try:
        url = fresh_database_url("sqlite", tmp)
        settings = make_settings(tmp, url, server.address, reopen_window="1s")
        sessions = Sessions(make_engine(url))
        publish_all(sessions)
        client = await make_client(settings)
        desk = _Desk(sessions, client, Intake(sessions=sessions, client=client, settings=settings,
                                              catalog=catalog_with_test_policies()))
        async with build_worker(client, settings, sessions):
            for name, scenario in (("general-inquiry", _general), ("account-access", _account),
                                   ("complaint", _complaint)):
                concern = await scenario(desk)
                await desk.wait_for(concern.id, lambda r: r.status == "closed")
                history = await client.get_workflow_handle(concern.workflow_id).fetch_history()
                (HERE / f"{name}.json").write_text(history.to_json())
                print(f"recorded {name}: {len(history.events)} events")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())

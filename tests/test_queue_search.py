"""The queue's search finds parts of ids, customers' names and e-mail addresses and words of the first message,
on both databases, through the full-text indexes."""

from __future__ import annotations

from registry.concerns import register_concern
from registry.customers import find_or_create_customer, update_customer
from registry.queue import QueueAgent, QueueFilter, queue_page

LEAD = QueueAgent(id=1, level=None)


def _open(sessions, *, concern_id: str, email: str, name: str, subject: str, body: str) -> None:
    import registry.concerns as concerns

    with sessions.begin() as session:
        customer, _ = find_or_create_customer(session=session, email=email, name=name)
        original = concerns.new_concern_id
        concerns.new_concern_id = lambda: concern_id
        try:
            concern = register_concern(session=session, customer=customer, subject=subject, body=body, channel="web",
                                       priority="normal", category=None, workflow_id_prefix="search-")
        finally:
            concerns.new_concern_id = original
        concern.status, concern.level = "open", 1
        session.add(concern)


def _found(sessions, q: str, **kw) -> list[str]:
    with sessions.read() as session:
        rows, _ = queue_page(session=session, agent=LEAD, f=QueueFilter(scope="all", q=q, **kw))
    return sorted(r.id for r in rows)


def test_search_by_part_of_an_id_a_name_an_address_and_a_word_of_the_body(sessions):
    _open(sessions, concern_id="CCR-9WT3K7QX", email="rita.router@example.com", name="Rita Router",
          subject="Internet drops", body="Every ten minutes the connection to the fibre modem is lost.")
    _open(sessions, concern_id="CCR-B2M4TT9W", email="zoe@brightmail.test", name="Zoë Brandt",
          subject="Invoice shows the wrong amount", body="I was charged twice for December.")
    _open(sessions, concern_id="CCR-H8J2N5R1", email="sam@example.org", name="Sam Smith",
          subject="Cannot sign in", body="The code never arrives; my modem is fine.")
    assert _found(sessions, "9wt3") == ["CCR-9WT3K7QX"]            # the start of the code, any case
    assert _found(sessions, "WT3K") == ["CCR-9WT3K7QX"]            # its middle
    assert _found(sessions, "ccr-b2m4") == ["CCR-B2M4TT9W"]        # with the prefix people copy
    assert _found(sessions, "CCR-H8J2N5R1") == ["CCR-H8J2N5R1"]    # a whole id
    assert _found(sessions, "t9w") == ["CCR-B2M4TT9W"]
    assert _found(sessions, "rita") == ["CCR-9WT3K7QX"]            # a customer's name
    assert _found(sessions, "sam smith") == ["CCR-H8J2N5R1"]
    assert _found(sessions, "brightmail") == ["CCR-B2M4TT9W"]      # part of an e-mail address
    assert _found(sessions, "rita.router@example.com") == ["CCR-9WT3K7QX"]
    assert _found(sessions, "fibre") == ["CCR-9WT3K7QX"]           # a word of the body only
    assert _found(sessions, "charged") == ["CCR-B2M4TT9W"]
    assert _found(sessions, "modem") == ["CCR-9WT3K7QX", "CCR-H8J2N5R1"]
    assert _found(sessions, "modem sam") == ["CCR-H8J2N5R1"]       # every word, wherever it is
    assert _found(sessions, "invoi") == ["CCR-B2M4TT9W"]           # a word's start
    assert _found(sessions, "Invoice") == ["CCR-B2M4TT9W"]         # the subject
    assert _found(sessions, "sign in") == ["CCR-H8J2N5R1"]
    assert _found(sessions, "brandt") == ["CCR-B2M4TT9W"]
    assert _found(sessions, "printer") == []
    assert _found(sessions, "!!!") == []                           # no words: only an exact id would match
    assert _found(sessions, "modem", status="resolved") == []      # search narrows the other filters
    assert len(_found(sessions, "")) == 3


def test_a_renamed_customer_is_found_by_the_new_name(sessions):
    _open(sessions, concern_id="CCR-R3N4M3D0", email="kim@example.com", name="Kim",
          subject="Parcel arrived damaged", body="The box was crushed.")
    with sessions.begin() as session:
        customer, _ = find_or_create_customer(session=session, email="kim@example.com")
        update_customer(session=session, customer=customer, name="Kimberley Jones", tier=None,
                        organisation=customer.organisation_id and "" or "", preferences=customer.preferences)
    assert _found(sessions, "jones") == ["CCR-R3N4M3D0"]
    assert _found(sessions, "crushed") == ["CCR-R3N4M3D0"]


def test_the_search_uses_the_full_text_indexes(sessions):
    _open(sessions, concern_id="CCR-P1ANP1AN", email="plan@example.com", name="Pat",
          subject="Refund not received", body="Still waiting for the refund.")
    from registry.queue import _Shape, _params, _statement  # the statement the queue sends

    with sessions.read() as session:
        dialect = session.get_bind().dialect.name
        shape = _Shape(dialect=dialect, part="due", search=True, terms=1, statuses=1)
        f = QueueFilter(scope="all", q="refund")
        params = {**_params(f, LEAD, 51, dialect), "status_0": "open"}
        statement = _statement(shape).params(**params)
        sql = str(statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
        if dialect == "postgresql":
            connection = session.connection()
            connection.exec_driver_sql("SET enable_seqscan = off")  # a table this small would be scanned anyway
            plan = " ".join(r[0] for r in connection.exec_driver_sql("EXPLAIN " + sql))
            connection.exec_driver_sql("RESET enable_seqscan")
            assert "ix_concern_search_search_vector" in plan and "ix_customer_search_vector" in plan, plan
        else:
            plan = " ".join(str(r[-1]) for r in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "VIRTUAL TABLE INDEX" in plan and "concern_fts" in plan and "customer_fts" in plan, plan

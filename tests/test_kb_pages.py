"""Staff write, revise and publish knowledge articles in the web UI; customers then find them in the portal."""

from __future__ import annotations

from tests.web_support import as_session, csrf_of, make_staff, sign_in

XSS = "<script>alert('kb')</script>"


async def test_an_agent_writes_revises_and_publishes_and_customers_find_it(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    await sign_in(desk.http, "ada@desk.test")
    form = await desk.http.get("/kb/articles/new")
    assert form.status_code == 200
    created = await desk.http.post("/kb/articles", data={
        "csrf_token": csrf_of(form.text), "title": f"Reset the router {XSS}", "category": "technical",
        "tags": "router, wifi", "body": "Hold the **reset** button for ten seconds."})
    assert created.status_code == 303
    url = created.headers["location"]
    page = await desk.http.get(url)
    assert "<strong>reset</strong>" in page.text and XSS not in page.text and "&lt;script&gt;" in page.text
    assert "draft" in page.text and "v1" in page.text
    stale_csrf = csrf_of(page.text)
    saved = await desk.http.post(url, data={"csrf_token": stale_csrf, "title": "Reset the router", "category":
                                            "technical", "tags": "router", "version": "1",
                                            "body": "Hold the reset button for ten seconds, then wait a minute."})
    assert saved.status_code == 303
    conflict = await desk.http.post(url, data={"csrf_token": stale_csrf, "title": "Reset the router",
                                               "version": "1", "body": "My concurrent edit"})
    assert conflict.status_code == 409 and "newer version" in conflict.text and "My concurrent edit" in conflict.text
    portal_before = await desk.http.get("/portal/kb?q=router reset button")
    assert "Reset the router" not in portal_before.text  # a draft is not public
    published = await desk.http.post(f"{url}/publish", data={"csrf_token": stale_csrf})
    assert published.status_code == 303
    page = await desk.http.get(url)
    assert "published" in page.text and "v2" in page.text and "wait a minute" in page.text
    desk.http.cookies.clear()
    found = await desk.http.get("/portal/kb?q=router reset button")
    assert "Reset the router" in found.text


async def test_writing_needs_a_title_text_and_a_token_and_customers_are_kept_out(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    await sign_in(desk.http, "ada@desk.test")
    form = await desk.http.get("/kb/articles/new")
    empty = await desk.http.post("/kb/articles", data={"csrf_token": csrf_of(form.text), "title": " ",
                                                       "body": "kept text"})
    assert empty.status_code == 422 and "give the article a title" in empty.text and "kept text" in empty.text
    forged = await desk.http.post("/kb/articles", data={"title": "t", "body": "b"})
    assert forged.status_code == 403
    desk.http.cookies.clear()
    customer = await desk.http.get("/kb/articles", headers=as_session(desk, customer_id=1),
                                   follow_redirects=False)
    assert customer.status_code in (302, 303, 403)
    auditor = make_staff(desk.sessions, "aud@desk.test", "auditor")
    readonly = await desk.http.post("/kb/articles", data={"title": "t", "body": "b"},
                                    headers=as_session(desk, user_id=auditor["id"]))
    assert readonly.status_code == 403

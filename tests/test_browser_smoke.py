"""The site is served to a real browser: static htmx loads and the health endpoint answers."""


async def test_htmx_is_served_to_the_browser(live_url, page):
    await page.goto(f"{live_url}/healthz")
    assert "ok" in await page.content()
    response = await page.goto(f"{live_url}/static/htmx-2.0.11.min.js")
    assert response.status == 200
    assert "htmx" in (await response.text())[:2000]

"""The SOP flow chart on the concern page in Chromium, at 1366 px and 390 px: laid out by ELK, nothing cut or covered."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.engine_support import open_concern
from tests.web_support import PASSWORD, make_staff

WIDTHS = (1366, 390)

# Geometry read in the page from getBBox(), in the chart's own coordinates.
GEOMETRY = """
(figure) => {
  const svg = figure.querySelector(".sop-chart-canvas svg");
  const graph = JSON.parse(figure.querySelector(".sop-chart-data").textContent);
  const shift = (el) => { const m = el.transform.baseVal.consolidate(); return m ? [m.matrix.e, m.matrix.f] : [0, 0]; };
  const rect = (el, [dx, dy]) => { const b = el.getBBox(); return {x: b.x + dx, y: b.y + dy, w: b.width, h: b.height}; };
  const nodes = [...svg.querySelectorAll(".node")].map((g) => {
    const at = shift(g);
    return {
      id: g.dataset.step, classes: [...g.classList], box: rect(g.querySelector(".node-shape"), at),
      title: [...g.querySelectorAll(".title tspan")].map((t) => t.textContent).join(" "),
      texts: [...g.querySelectorAll("text")].map((t) => ({text: t.textContent, box: rect(t, at)})),
    };
  });
  const labels = [...svg.querySelectorAll("g.edge-label")].map((g) => ({
    edge: g.dataset.edge, text: [...g.querySelectorAll("tspan")].map((t) => t.textContent).join(" "),
    box: rect(g.querySelector(".edge-label-box"), shift(g)), textBox: rect(g.querySelector("text"), shift(g)),
  }));
  const edges = [...svg.querySelectorAll("path.edge")].map((p) => ({
    id: p.dataset.edge, classes: [...p.classList],
    points: p.dataset.points.split(" ").map((xy) => xy.split(",").map(Number)),
  }));
  const canvas = figure.querySelector(".sop-chart-canvas");
  return {graph, nodes, labels, edges,
          canvas: {scroll: canvas.scrollWidth, client: canvas.clientWidth, overflowX: getComputedStyle(canvas).overflowX},
          page: {scroll: document.documentElement.scrollWidth, viewport: window.innerWidth}};
}
"""


def overlap(a, b, inset=0.5) -> bool:
    return (a["x"] + inset < b["x"] + b["w"] - inset and b["x"] + inset < a["x"] + a["w"] - inset
            and a["y"] + inset < b["y"] + b["h"] - inset and b["y"] + inset < a["y"] + a["h"] - inset)


def inside(inner, outer, slack=1.0) -> bool:
    return (inner["x"] >= outer["x"] - slack and inner["y"] >= outer["y"] - slack
            and inner["x"] + inner["w"] <= outer["x"] + outer["w"] + slack
            and inner["y"] + inner["h"] <= outer["y"] + outer["h"] + slack)


def crosses(segment, box, inset=1.0) -> bool:
    """Whether an axis-parallel segment runs through the inside of a box."""
    (x1, y1), (x2, y2) = segment
    left, right = box["x"] + inset, box["x"] + box["w"] - inset
    top, bottom = box["y"] + inset, box["y"] + box["h"] - inset
    if abs(y1 - y2) < 0.01:
        return top < y1 < bottom and min(x1, x2) < right and max(x1, x2) > left
    return left < x1 < right and min(y1, y2) < bottom and max(y1, y2) > top


def check_layout(geo: dict, width: int) -> None:
    graph, nodes, labels = geo["graph"], geo["nodes"], geo["labels"]
    by_id = {n["id"]: n for n in nodes}
    assert list(by_id) == [n["id"] for n in graph["nodes"]]
    for spec in graph["nodes"]:
        node = by_id[spec["id"]]
        assert node["title"] == spec["label"], (width, node["title"])  # every word of the title, none cut
        for text in node["texts"]:
            assert "…" not in text["text"] and "..." not in text["text"]
            assert inside(text["box"], node["box"]), (width, spec["id"], text)
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            assert not overlap(a["box"], b["box"]), (width, a["id"], b["id"])
    assert {lab["edge"] for lab in labels} == {e["id"] for e in graph["edges"] if e["label"]}
    for lab in labels:
        spec = next(e for e in graph["edges"] if e["id"] == lab["edge"])
        assert lab["text"].replace("\u00a0", " ").replace("/  ", "/ ") == spec["label"]
        assert inside(lab["textBox"], lab["box"])
        for node in nodes:
            assert not overlap(lab["box"], node["box"]), (width, lab["edge"], node["id"])
        for other in labels:
            assert other is lab or not overlap(lab["box"], other["box"]), (width, lab["edge"], other["edge"])
    for edge in geo["edges"]:
        ends = set(edge["id"].split("->"))
        for a, b in zip(edge["points"], edge["points"][1:]):
            for node in nodes:
                if node["id"] not in ends:
                    assert not crosses((a, b), node["box"]), (width, edge["id"], "runs across", node["id"])
            for lab in labels:
                assert not crosses((a, b), lab["box"]), (width, edge["id"], "runs across the label of", lab["edge"])
    # The chart scrolls inside its box when it is wider; the page itself never scrolls sideways.
    assert geo["page"]["scroll"] <= geo["page"]["viewport"], (width, geo["page"])
    if geo["canvas"]["scroll"] > geo["canvas"]["client"]:
        assert geo["canvas"]["overflowX"] == "auto"


async def staff_page(browser, live_url: str, width: int, email: str):
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(20_000)
    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/queue**")
    return context, page


async def test_the_chart_shows_full_labels_without_overlaps_and_marks_the_path(desk, live_url, browser, artifacts):
    expect.set_options(timeout=20_000)
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, skills=("complaints", "general"), name="Lee")
    complaint = await open_concern(desk, category="complaint", priority="urgent", subject="Broken on arrival",
                                   body="The kettle arrived broken and I want my money back.")
    inquiry = await open_concern(desk, category="orders", subject="Where is my parcel?",
                                 body="My order 12345 has not arrived yet.")
    await desk.wait_for(complaint.id, lambda c: c.step == "level2")
    inquiry_row = await desk.wait_for(inquiry.id, lambda c: c.step_type in ("human", "ask_customer"))
    for width in WIDTHS:
        context, page = await staff_page(browser, live_url, width, "lee@desk.test")
        for name, concern in (("complaint", complaint), ("inquiry", inquiry)):
            await page.goto(f"{live_url}/concerns/{concern.id}")
            figure = page.locator("#concern-chart.drawn")
            await figure.wait_for()
            geo = await figure.evaluate(GEOMETRY)
            check_layout(geo, width)
            await figure.scroll_into_view_if_needed()
            await page.screenshot(path=str(artifacts / f"flowchart-{name}-{width}.png"), full_page=True)
            await figure.screenshot(path=str(artifacts / f"flowchart-{name}-{width}-chart.png"))
            current = page.locator("#concern-chart .node.current")
            await expect(current).to_have_count(1)
            if name == "inquiry":
                await expect(current).to_have_attribute("data-step", inquiry_row.step)
                long_title = page.locator('#concern-chart .node[data-step="confirm_order"] .title')
                assert " ".join(await long_title.locator("tspan").all_text_contents()) == \
                    "Send the order status and ask if that answers it"
                continue
            await expect(current).to_have_attribute("data-step", "level2")
            visited = {n["id"] for n in geo["nodes"] if "visited" in n["classes"]}
            assert visited == {"classify", "acknowledge", "triage", "alert_team", "level2"}
            taken = {e["id"] for e in geo["edges"] if "taken" in e["classes"] and "entry" not in e["classes"]}
            assert taken == {"classify->acknowledge", "acknowledge->triage", "triage->alert_team",
                             "alert_team->level2"}
            assert await page.locator("#concern-chart .sop-chart-list").get_attribute("open") is None

            # A step's details on hover, on keyboard focus, and pinned by a click or tap.
            tip = page.locator("#concern-chart .sop-chart-tip")
            await page.locator('#concern-chart .node[data-step="triage"]').hover()
            await expect(tip).to_be_visible()
            await expect(tip).to_contain_text("decides on")
            await expect(tip).to_contain_text("urgent → Alert the complaints team")
            await expect(tip).to_contain_text("the concern passed this step")
            await page.screenshot(path=str(artifacts / f"flowchart-details-{width}.png"))
            await page.locator('#concern-chart .node[data-step="level1"]').focus()
            await expect(tip).to_contain_text("escalates after")
            await expect(tip).to_contain_text("4h")
            await page.locator('#concern-chart .node[data-step="alert_team"]').click()
            await page.mouse.move(0, 0)
            await expect(tip).to_contain_text("complaint_received")
            tip_box, page_width = await tip.bounding_box(), await page.evaluate("window.innerWidth")
            assert tip_box["x"] >= 0 and tip_box["x"] + tip_box["width"] <= page_width
            await page.keyboard.press("Escape")
            await expect(tip).to_be_hidden()
        await context.close()


@pytest.mark.parametrize("width", WIDTHS)
async def test_without_javascript_the_steps_and_outcomes_are_a_list(desk, live_url, browser, artifacts, width):
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, skills=("complaints",), name="Lee")
    concern = await open_concern(desk, category="complaint", priority="urgent", subject="Broken on arrival")
    await desk.wait_for(concern.id, lambda c: c.step == "level2")
    context = await browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=False)
    page = await context.new_page()
    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill("lee@desk.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{live_url}/concerns/{concern.id}")
    steps = page.locator("#concern-chart .sop-chart-fallback li.step")
    await expect(steps).to_have_count(9)  # every step of the complaint SOP
    await expect(steps.first).to_be_visible()
    triage = page.locator('#concern-chart .sop-chart-fallback li.step[data-step="triage"]')
    await expect(triage).to_contain_text("passed")
    await expect(triage).to_contain_text("urgent → Alert the complaints team")
    await expect(page.locator('#concern-chart .sop-chart-fallback li[data-step="level2"]')).to_contain_text("now")
    await expect(page.locator("#concern-chart .sop-chart-list")).to_be_hidden()
    await expect(page.locator("#concern-chart svg")).to_have_count(0)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.locator("#concern-chart").screenshot(path=str(artifacts / f"flowchart-no-js-{width}.png"))
    await context.close()

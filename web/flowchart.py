"""Lay a SOP out as a top-down flow chart for an inline SVG, drawn on the server (no JavaScript, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sops.graph import describe_step
from sops.schema import SopDefinition

WIDTH, HEIGHT = 176, 46
GAP_X, GAP_Y = 28, 54
MARGIN = 16
LANE_GAP = 12  # between the lanes of edges that run beside the boxes
LABEL_ROOM = 110  # for the outcome labels written beside those lanes


@dataclass
class Node:
    """One step as a box."""

    id: str
    title: str
    detail: str
    type: str
    x: float = 0
    y: float = 0
    css: list[str] = field(default_factory=list)

    @property
    def cx(self) -> float:
        return self.x + WIDTH / 2


@dataclass
class Edge:
    """An arrow between two steps, labelled with the outcomes that take it."""

    path: str
    label: str
    lx: float
    ly: float
    back: bool
    anchor: str = "middle"


@dataclass
class Chart:
    """Everything the SVG template needs."""

    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float
    box_w: int = WIDTH
    box_h: int = HEIGHT


def _ranks(sop: SopDefinition) -> dict[str, int]:
    """Longest-path layers from the start, ignoring edges that loop back; unreachable steps go last."""
    back: set[tuple[str, str]] = set()
    order: list[str] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 finished

    def visit(sid: str) -> None:
        state[sid] = 1
        for _, target in sop.steps[sid].edges():
            if target not in sop.steps:
                continue
            if state.get(target) == 1:
                back.add((sid, target))
            elif target not in state:
                visit(target)
        state[sid] = 2
        order.append(sid)

    if sop.start in sop.steps:
        visit(sop.start)
    ranks = {sid: 0 for sid in order}
    for sid in reversed(order):  # reverse post-order is a topological order of the forward edges
        for _, target in sop.steps[sid].edges():
            if target in ranks and (sid, target) not in back:
                ranks[target] = max(ranks[target], ranks[sid] + 1)
    bottom = max(ranks.values(), default=-1) + 1
    for sid in sop.steps:
        ranks.setdefault(sid, bottom)
    return ranks


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_charts: dict[tuple[str, int], Chart] = {}


def chart_for(sop_id: str, version: int, definition: dict, *, current: str | None = None,
              visited: set[str] | frozenset = frozenset()) -> Chart:
    """The chart of a published SOP version, laid out once per process (published versions never change)."""
    base = _charts.get((sop_id, version))
    if base is None:
        base = _charts[(sop_id, version)] = layout(definition)
    nodes = [replace(n, css=[*n.css, *(["visited"] if n.id in visited else []),
                             *(["current"] if n.id == current else [])]) for n in base.nodes]
    return replace(base, nodes=nodes)


def layout(definition: dict, *, current: str | None = None, visited: set[str] | frozenset = frozenset()) -> Chart:
    """Position every step of the SOP; `current` and the `visited` steps get their own classes."""
    sop = SopDefinition.model_validate(definition)
    ranks = _ranks(sop)
    rows: dict[int, list[str]] = {}
    for sid in sorted(sop.steps, key=lambda s: ranks[s]):
        rows.setdefault(ranks[sid], []).append(sid)
    widest = max(len(r) for r in rows.values())
    inner = widest * WIDTH + (widest - 1) * GAP_X
    nodes: dict[str, Node] = {}
    for rank, sids in rows.items():
        row_width = len(sids) * WIDTH + (len(sids) - 1) * GAP_X
        left = MARGIN + (inner - row_width) / 2
        for i, sid in enumerate(sids):
            step = sop.steps[sid]
            css = [f"step-{step.type}"]
            if sid == sop.start:
                css.append("start")
            if sid in visited:
                css.append("visited")
            if sid == current:
                css.append("current")
            nodes[sid] = Node(sid, _short(step.title or sid, 26), _short(describe_step(step, brief=True), 30), step.type,
                              x=left + i * (WIDTH + GAP_X), y=MARGIN + rank * (HEIGHT + GAP_Y), css=css)
    # Edges that skip a layer, go back up or pass other boxes run in lanes beside the chart, on the side their
    # source is on: out of the source's bottom, along the gap below its row, down or up the lane, along the
    # gap above the target's row and into its top. Only the gaps and lanes are crossed, never a box.
    centre = MARGIN + inner / 2
    column = {sid: i for sids in rows.values() for i, sid in enumerate(sids)}
    pending = []
    for sid, step in sop.steps.items():
        grouped: dict[str, list[str]] = {}
        for label, target in step.edges():
            if target in nodes:
                grouped.setdefault(target, []).append(label)
        for target, labels in grouped.items():
            span = ranks[target] - ranks[sid]
            direct = span == 1 or (span == 0 and abs(column[target] - column[sid]) == 1)
            side = None if direct else "left" if nodes[sid].cx < centre else "right"
            pending.append((nodes[sid], nodes[target], _short(" / ".join(labels), 28), span, side))
    left_lanes = sum(1 for p in pending if p[4] == "left")
    right_lanes = sum(1 for p in pending if p[4] == "right")
    shift = LABEL_ROOM + LANE_GAP * (left_lanes + 1) if left_lanes else 0
    for node in nodes.values():
        node.x += shift
    left_edge, right_edge = MARGIN + shift, MARGIN + shift + inner
    edges: list[Edge] = []
    used = {"left": 0, "right": 0}
    for a, b, label, span, side in pending:
        if side is None and span == 0:
            x1, x2 = (a.x + WIDTH, b.x) if b.x > a.x else (a.x, b.x + WIDTH)
            y = a.y + HEIGHT / 2
            edges.append(Edge(f"M{x1:.0f},{y:.0f} L{x2:.0f},{y:.0f}", label, (x1 + x2) / 2, y - 5, False))
        elif side is None:
            y1, y2 = a.y + HEIGHT, b.y
            mid = (y1 + y2) / 2
            path = f"M{a.cx:.0f},{y1:.0f} C{a.cx:.0f},{mid:.0f} {b.cx:.0f},{mid:.0f} {b.cx:.0f},{y2:.0f}"
            edges.append(Edge(path, label, (a.cx + b.cx) / 2, mid - 4, False))
        else:
            used[side] += 1
            lane = left_edge - LANE_GAP * used[side] if side == "left" else right_edge + LANE_GAP * used[side]
            step_down = 5 * (used[side] % 4)  # lanes leave and join their gaps at different heights
            out_y, in_y = a.y + HEIGHT + 6 + step_down, b.y - 6 - step_down
            path = f"M{a.cx:.0f},{a.y + HEIGHT:.0f} V{out_y:.0f} H{lane:.0f} V{in_y:.0f} H{b.cx:.0f} V{b.y:.0f}"
            edges.append(Edge(path, label, lane + (4 if side == "right" else -4), (out_y + in_y) / 2, span <= 0,
                              "start" if side == "right" else "end"))
    height = MARGIN * 2 + (max(rows) + 1) * HEIGHT + max(rows) * GAP_Y
    width = right_edge + MARGIN + (LANE_GAP * (right_lanes + 1) + LABEL_ROOM if right_lanes else 0)
    return Chart(list(nodes.values()), edges, width, height)

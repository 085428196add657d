"""Server-side SVG charts for the overview: the markup needs no script and scales to any width.

Series differ by pattern and mark shape as well as colour, and every chart has its table underneath."""

from __future__ import annotations

from markupsafe import Markup, escape

# Fill patterns by series index: solid, diagonal hatch, dots, cross-hatch, then again.
PATTERNS = ("solid", "hatch", "dots", "cross")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 240, 34, 26, 10


def _defs() -> str:
    return (
        '<defs>'
        '<pattern id="p-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" class="s1"/><line x1="0" y1="0" x2="0" y2="6" class="ink" stroke-width="2.5"/></pattern>'
        '<pattern id="p-dots" width="5" height="5" patternUnits="userSpaceOnUse">'
        '<rect width="5" height="5" class="s2"/><circle cx="2.5" cy="2.5" r="1.3" class="inkfill"/></pattern>'
        '<pattern id="p-cross" width="6" height="6" patternUnits="userSpaceOnUse">'
        '<rect width="6" height="6" class="s3"/><path d="M0 0L6 6M6 0L0 6" class="ink" stroke-width="1"/></pattern>'
        '</defs>'
    )


def fill_of(index: int) -> str:
    """The SVG fill of series `index` (a class for solid, a pattern otherwise)."""
    kind = PATTERNS[index % len(PATTERNS)]
    return 'class="s0"' if kind == "solid" else f'fill="url(#p-{kind})"'


def swatch(index: int) -> Markup:
    """A small legend square in the series' pattern."""
    return Markup(f'<svg class="swatch" viewBox="0 0 12 12" width="12" height="12" aria-hidden="true">{_defs()}'
                  f'<rect width="12" height="12" {fill_of(index)} class="edge"/></svg>')


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return step * 4
    return value


def day_chart(rows: list[dict], channels: list[str], title: str) -> Markup:
    """Concerns created per day stacked by channel (bars), with those resolved per day (a line of diamonds)."""
    days = len(rows)
    top = _nice_max(max([r["created"] for r in rows] + [r["resolved"] for r in rows] + [1]))
    plot_w, plot_h = WIDTH - LEFT - 6, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(days, 1)
    bar = max(1.5, slot * 0.7)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * v / top

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="day-chart-title">',
             f'<title id="day-chart-title">{escape(title)}</title>', _defs()]
    for tick in range(0, 5):
        value = top * tick // 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 6}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="grid"/>'
                     f'<text x="{LEFT - 4}" y="{y(value) + 4:.1f}" class="axis" text-anchor="end">{value}</text>')
    label_every = max(1, round(days / 8))
    points = []
    for i, row in enumerate(rows):
        x = LEFT + i * slot + (slot - bar) / 2
        base = 0
        for index, channel in enumerate(channels):
            count = row.get(f"created_{channel}", 0)
            if count:
                parts.append(f'<rect x="{x:.1f}" y="{y(base + count):.1f}" width="{bar:.1f}" '
                             f'height="{y(base) - y(base + count):.1f}" {fill_of(index)} class="edge">'
                             f'<title>{escape(row["day"])}: {count} created by {escape(channel)}</title></rect>')
                base += count
        cx = LEFT + i * slot + slot / 2
        points.append((cx, y(row["resolved"]), row))
        if i % label_every == 0:
            parts.append(f'<text x="{cx:.1f}" y="{HEIGHT - 8}" class="axis" text-anchor="middle">'
                         f'{escape(row["day"][5:])}</text>')
    if points:
        parts.append('<polyline class="line" points="' + " ".join(f"{x:.1f},{yy:.1f}" for x, yy, _ in points) + '"/>')
        for x, yy, row in points:
            parts.append(f'<path d="M{x:.1f} {yy - 4:.1f}l4 4l-4 4l-4 -4z" class="mark">'
                         f'<title>{escape(row["day"])}: {row["resolved"]} resolved</title></path>')
    parts.append("</svg>")
    return Markup("".join(parts))

"""Knowledge articles' Markdown rendered safely: HTML for pages, plain text for e-mail."""

from __future__ import annotations

import re
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

# Markdown. Raw HTML in articles is shown as text, and nh3 sanitises the output as a second wall.

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"},
}


def render_markdown(source: str) -> str:
    """An article's Markdown as HTML that is safe to show: no scripts, handlers or javascript: links."""
    return nh3.clean(
        _MARKDOWN.render(source or ""),
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        filter_style_properties={"text-align"},
        link_rel="noopener noreferrer nofollow",
    )


def _inline_text(children: list[Token] | None) -> str:
    parts: list[str] = []
    links: list[tuple[str, int]] = []
    for child in children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")  # a line wrapped in the source: the paragraph flows on in the reader's mail client
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content or str(child.attrs.get("alt", "")))
        elif child.type == "link_open":
            links.append((str(child.attrs.get("href", "")), len(parts)))
        elif child.type == "link_close" and links:
            href, start = links.pop()
            label = "".join(parts[start:])
            parts[start:] = [label if href in ("", label, f"mailto:{label}") else f"{label} ({href})"]
    return "".join(parts)


def render_plain_text(source: str) -> str:
    """An article's Markdown as readable plain text for e-mail: lists keep bullets, links show their address."""
    out: list[str] = []
    lists: list[list[Any]] = []
    for token in _MARKDOWN.parse(source or ""):
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            lists.append([kind == "ordered_list_open", int(token.attrs.get("start", 1) or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                out.append("\n")
        elif kind == "list_item_open":
            ordered, number = lists[-1]
            out.append("  " * (len(lists) - 1) + (f"{number}. " if ordered else "- "))
            lists[-1][1] += 1
        elif kind == "inline":
            out.append(_inline_text(token.children))
        elif kind in ("paragraph_close", "heading_close"):
            out.append("\n" if token.hidden else "\n\n")
        elif kind in ("fence", "code_block"):
            out.append("".join(f"    {line}\n" for line in token.content.rstrip("\n").split("\n")) + "\n")
        elif kind == "hr":
            out.append("----\n\n")
        elif kind in ("th_close", "td_close"):
            out.append(" | ")
        elif kind == "tr_close":
            out.append("\n")
        elif kind == "table_close":
            out.append("\n")
    lines = [line.rstrip(" |").rstrip() for line in "".join(out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()

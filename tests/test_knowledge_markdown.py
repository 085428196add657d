"""Article Markdown renders to safe HTML for pages and to readable plain text for e-mail."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from registry.knowledge import render_markdown, render_plain_text

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<iframe src=https://evil.example></iframe>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '[t](https://a.example "x" onmouseover="alert(1)")',
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "[x](ftp://files.example/payload.exe)",
]


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def _live_markup(rendered: str) -> list[str]:
    """Elements, handlers and URLs in `rendered` that a browser would act on dangerously."""
    parser = _Elements()
    parser.feed(rendered)
    dangers = []
    for tag, attrs in parser.found:
        if tag in ("script", "iframe", "svg", "object", "embed", "style", "div"):
            dangers.append(tag)
        dangers += [name for name in attrs if name.startswith("on") or name == "style" and tag not in ("th", "td")]
        for name in ("href", "src"):
            url = (attrs.get(name) or "").strip()
            if name in attrs and not re.match(r"(https?:|mailto:|/)", url):
                dangers.append(f"{name}={url}")
    return dangers


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_dangerous_markup_is_never_live(payload):
    rendered = render_markdown(f"Read this:\n\n{payload}\n\nThanks")
    assert _live_markup(rendered) == [], rendered
    assert "Read this:" in rendered and "Thanks" in rendered


def test_ordinary_markdown_keeps_its_formatting():
    rendered = render_markdown(
        "## Reset your password\n\n1. Open **Settings**\n2. Choose *Security*\n\n"
        "See [the guide](https://help.example/reset \"Guide\") or mail <mailto:help@desk.example>.\n\n"
        "| Step | Time |\n|:--|--:|\n| wait | 5 min |\n\n`code` and ~~old~~"
    )
    assert "<h2>Reset your password</h2>" in rendered
    assert "<ol>" in rendered and "<strong>Settings</strong>" in rendered and "<em>Security</em>" in rendered
    link = '<a href="https://help.example/reset" title="Guide" rel="noopener noreferrer nofollow">the guide</a>'
    assert link in rendered
    assert 'href="mailto:help@desk.example"' in rendered
    assert '<td style="text-align:right">5 min</td>' in rendered
    assert "<code>code</code>" in rendered and "<s>old</s>" in rendered


def test_plain_text_for_email_keeps_structure_and_shows_link_addresses():
    text = render_plain_text(
        "# Reset a forgotten password\n\nOpen the **sign-in page** and choose *Forgot password*.\n\n"
        "- Check your spam folder\n- The link works [once](https://help.example/once)\n\n"
        "3. three\n4. four\n\n```\nccr user add\n```\n\n<b>raw</b> stays text"
    )
    assert text == (
        "Reset a forgotten password\n\n"
        "Open the sign-in page and choose Forgot password.\n\n"
        "- Check your spam folder\n- The link works once (https://help.example/once)\n\n"
        "3. three\n4. four\n\n"
        "    ccr user add\n\n"
        "<b>raw</b> stays text"
    )


def test_empty_articles_render_to_nothing():
    assert render_markdown("") == ""
    assert render_plain_text("") == ""

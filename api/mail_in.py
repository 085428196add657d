"""Parsing of one inbound e-mail into what intake needs: who, which thread, the new text, the files."""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Iterator, Sequence
from email import errors, policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from html.parser import HTMLParser

import nh3
from pydantic import BaseModel, ConfigDict, Field

DEFAULT_ALLOWED: frozenset[str] = frozenset({
    "text/plain", "text/csv", "application/pdf", "message/rfc822", "image/png", "image/jpeg", "image/gif",
    "image/webp", "image/heic", "application/zip", "application/json", "application/xml", "text/xml",
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
})
# Refused whatever type the sender declares, because the declared type is the sender's word.
FORBIDDEN_EXTENSIONS = frozenset({
    ".exe", ".com", ".bat", ".cmd", ".scr", ".pif", ".msi", ".msp", ".dll", ".cpl", ".js", ".jse",
    ".vbs", ".vbe", ".wsf", ".wsh", ".hta", ".ps1", ".psm1", ".jar", ".lnk", ".reg", ".sh", ".apk",
    ".iso", ".img", ".docm", ".xlsm", ".pptm",
})

CONCERN_ID = r"CCR-[0-9A-Z]{8}"
SUBJECT_TOKEN = re.compile(rf"\[({CONCERN_ID})\]", re.I)
ADDRESS_TOKEN = re.compile(rf"\+({CONCERN_ID})@", re.I)
# The shape of activities.mail_out.new_message_id: a mail of ours that comes back is a loop.
OWN_MESSAGE_ID = re.compile(rf"^<ccr\.{CONCERN_ID}\.\d+@", re.I)
MSG_ID = re.compile(r"<[^<>\s]+>")
TRACE_HEADERS = ("from", "to", "cc", "date", "subject")


class MailRejected(Exception):
    """A message refused at the SMTP door: the sender's server bounces it with `code` and `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class MailUnreadable(Exception):
    """A message whose structure the parser cannot follow; it is kept raw and shown to agents as such."""


class InboundAttachment(BaseModel):
    """A file that came with a mail and passed the type and size checks."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    filename: str
    content_type: str
    size: int
    data: bytes = Field(repr=False)


class InboundMail(BaseModel):
    """One parsed inbound mail; `raw` is the message exactly as received."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    message_id: str
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    from_email: str
    from_name: str = ""
    subject: str = ""
    text: str = ""
    full_text: str = ""
    html_text: str | None = None
    attachments: list[InboundAttachment] = Field(default_factory=list)
    rejected_attachments: list[tuple[str, str]] = Field(default_factory=list)
    auto_submitted: str | None = None
    concern_token: str | None = None
    problems: list[str] = Field(default_factory=list)
    raw: bytes = Field(default=b"", repr=False)


def parse_inbound(raw: bytes, *, max_bytes: int, max_attachment_bytes: int,
                  allowed_attachment_types: frozenset[str] = DEFAULT_ALLOWED,
                  envelope_from: str | None = None, envelope_to: Sequence[str] = ()) -> InboundMail:
    """Parse `raw`; oversized or sender-less mail raises `MailRejected`, anything else comes back with its problems."""
    if len(raw) > max_bytes:
        raise MailRejected(552, f"5.3.4 message is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        msg, unreadable = BytesParser(policy=policy.default).parsebytes(raw), None
    except RecursionError:
        # Parts nested deeper than the parser can follow: read the headers alone and keep the rest as it came.
        msg = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        unreadable = "the message's parts are nested too deeply to read; the raw message was kept"
    from_email, from_name = _sender(msg)
    if not from_email:
        raise MailRejected(550, "5.1.7 the message has no usable From address")
    mail = InboundMail(message_id=_message_id(msg, raw), from_email=from_email, from_name=from_name,
                       subject=_subject(msg), raw=raw)
    problems = mail.problems
    mail.in_reply_to = next(iter(_msg_ids(_header(msg, "in-reply-to"))), None)
    mail.references = _msg_ids(_header(msg, "references"))
    mail.auto_submitted = _auto_submitted(msg, mail, envelope_from)
    mail.concern_token = _concern_token(msg, mail, envelope_to, problems)
    try:
        if unreadable:
            raise MailUnreadable(unreadable)
        _read_body(msg, mail, max_attachment_bytes, allowed_attachment_types)
    except Exception as exc:  # noqa: BLE001 - whatever breaks, the customer's words must reach an agent
        problems.append(str(exc) if isinstance(exc, MailUnreadable)
                        else f"could not read the message ({type(exc).__name__}: {exc}); the raw message was kept")
        mail.full_text = _raw_body_text(raw)
        mail.text = strip_quoted(mail.full_text)
    problems.extend(_defects(msg))
    if not mail.text and mail.full_text.strip():
        problems.append("no new text; the quoted history was kept")
    elif not mail.full_text.strip() and not mail.attachments:
        problems.append("the message has no text")
    return mail


def thread_keys(mail: InboundMail) -> list[str]:
    """The Message-IDs to look a thread up by, best first: In-Reply-To, then References newest first."""
    keys = ([mail.in_reply_to] if mail.in_reply_to else []) + list(reversed(mail.references))
    return list(dict.fromkeys(keys))


def normalise_message_id(value: str) -> str | None:
    """`<id@host>` from a header value; over-long ids become a stable hash so they fit the registry's keys."""
    found = MSG_ID.search(value)
    if found:
        ident = found.group(0)
    else:
        token = value.strip().strip("<>").strip()
        if not token or any(c.isspace() for c in token):
            return None
        ident = f"<{token}>"
    if len(ident) < 7 or not any(c.isalnum() for c in ident):
        return None  # junk like "<[>" would make unrelated mail look like duplicates of each other
    if len(ident) > 300:
        return f"<{hashlib.sha256(ident.encode()).hexdigest()[:40]}@long-id.invalid>"
    return ident


def _header(msg: EmailMessage, name: str) -> str:
    """A header's decoded value, or its raw text when the stdlib parser chokes on it."""
    try:
        value = msg[name]
        return "" if value is None else str(value)
    except Exception:  # noqa: BLE001 - stdlib header parsers raise IndexError and friends on junk
        for key, value in msg.raw_items():
            if key.lower() == name:
                return str(value)
        return ""


def _msg_ids(value: str) -> list[str]:
    found = MSG_ID.findall(value)
    ids = [normalise_message_id(v) for v in (found or value.split())]
    return list(dict.fromkeys(i for i in ids if i))


def _message_id(msg: EmailMessage, raw: bytes) -> str:
    given = normalise_message_id(_header(msg, "message-id"))
    if given:
        return given
    # Hash what the sender wrote, not the trace headers each relay adds, so a re-delivery gets the same id.
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    stable = b"\n".join(_header(msg, h).encode("utf-8", "replace") for h in TRACE_HEADERS) + b"\n\n" + body
    return f"<{hashlib.sha256(stable if head else raw).hexdigest()[:32]}@generated.invalid>"


def _sender(msg: EmailMessage) -> tuple[str, str]:
    try:
        addresses = getattr(msg["from"], "addresses", ()) or ()
        pairs = [(a.display_name, a.addr_spec) for a in addresses]
    except Exception:  # noqa: BLE001 - fall back to the lenient parser for a broken From
        pairs = []
    if not pairs or "@" not in pairs[0][1]:
        pairs = [parseaddr(_header(msg, "from"))]
    name, address = pairs[0]
    address = address.strip().strip("<>").lower()
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
        return "", ""
    return address, " ".join(name.split())


def _subject(msg: EmailMessage) -> str:
    return " ".join(_header(msg, "subject").split())[:300]


def _auto_submitted(msg: EmailMessage, mail: InboundMail, envelope_from: str | None) -> str | None:
    """Why this mail was sent by a machine (so it must not open a concern or be answered), or None."""
    auto = _header(msg, "auto-submitted").strip().lower()
    precedence = _header(msg, "precedence").strip().lower()
    local = mail.from_email.split("@")[0]
    null_sender = envelope_from is not None and not envelope_from.strip("<> ")
    reasons = [
        (auto and not auto.startswith("no"), f"Auto-Submitted: {auto}"),
        (precedence in ("bulk", "junk", "list"), f"Precedence: {precedence}"),
        (bool(_header(msg, "x-autoreply")), "X-Autoreply header"),
        (bool(_header(msg, "x-autorespond")), "X-Autorespond header"),
        (bool(_header(msg, "list-id")), "mailing list (List-Id)"),
        (local in ("mailer-daemon", "postmaster"), f"sent by {local}"),
        (_header(msg, "return-path").strip() == "<>" or null_sender, "empty return path (a bounce)"),
        (msg.get_content_type() == "multipart/report", "a delivery report"),
        (bool(OWN_MESSAGE_ID.match(mail.message_id)), "our own message came back (a mail loop)"),
    ]
    return next((reason for hit, reason in reasons if hit), None)


def _concern_token(msg: EmailMessage, mail: InboundMail, envelope_to: Sequence[str], problems: list[str]) -> str | None:
    """The concern named by a plus address (which we set as Reply-To) or else by the subject tag."""
    addresses = " ".join([*envelope_to, *(_header(msg, h) for h in ("to", "cc", "delivered-to", "x-original-to"))])
    by_address = ADDRESS_TOKEN.search(addresses)
    by_subject = SUBJECT_TOKEN.search(mail.subject)
    address_token = by_address.group(1).upper() if by_address else None
    subject_token = by_subject.group(1).upper() if by_subject else None
    if address_token and subject_token and address_token != subject_token:
        problems.append(f"the address names {address_token} but the subject names {subject_token}; used the address")
    return address_token or subject_token


def _leaves(part: EmailMessage) -> Iterator[EmailMessage]:
    """The non-multipart parts, without descending into attached messages (a forwarded mail stays one file)."""
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        for sub in part.iter_parts():
            yield from _leaves(sub)
    else:
        yield part


def _read_body(msg: EmailMessage, mail: InboundMail, max_attachment_bytes: int, allowed: frozenset[str]) -> None:
    texts: list[str] = []
    htmls: list[str] = []
    for number, part in enumerate(_leaves(msg), start=1):
        try:
            filename = _filename(part)
            is_body = part.get_content_disposition() != "attachment" and not filename
            if is_body and part.get_content_type() == "text/plain":
                texts.append(_text_of(part, mail.problems))
            elif is_body and part.get_content_type() == "text/html":
                htmls.append(_text_of(part, mail.problems))
            elif part.get_content_maintype() == "multipart":
                # A multipart whose boundary is missing was never split: its body is still the customer's text.
                texts.append(str(part.get_payload()))
            else:
                _take_attachment(part, filename or f"attachment-{number}", mail, max_attachment_bytes, allowed)
        except Exception as exc:  # noqa: BLE001 - one broken part must not cost the others
            mail.problems.append(f"part {number} ({part.get_content_type()}) could not be read "
                                 f"({type(exc).__name__}); it is in the raw message")
    if texts:
        mail.full_text = "\n\n".join(t.strip("\r\n") for t in texts).replace("\r\n", "\n")
    elif htmls:
        mail.html_text = html_to_text("\n".join(htmls))
        mail.full_text = mail.html_text
    mail.text = strip_quoted(mail.full_text)


def _text_of(part: EmailMessage, problems: list[str]) -> str:
    try:
        text = part.get_content()
    except (LookupError, UnicodeError, ValueError):
        charset = part.get_content_charset()
        problems.append(f"unknown or wrong charset {charset!r}; decoded as UTF-8 with replacements")
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return text.replace("\r\n", "\n")


def _filename(part: EmailMessage) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001 - a broken filename parameter must not lose the file
        name = ""
    # Keep only the last path component and printable characters: the name is later used on disk and in pages.
    name = re.split(r"[\\/]", name)[-1]
    return "".join(c for c in name if c.isprintable()).strip()[:200]


def _take_attachment(part: EmailMessage, filename: str, mail: InboundMail, limit: int, allowed: frozenset[str]) -> None:
    data = part.get_payload(decode=True)
    if data is None:  # message/rfc822 and other container types carry a parsed message, not bytes
        inner = part.get_payload()
        # compat32 writes headers as received; policy.default re-parses them and crashes on junk ones.
        data = (inner[0].as_bytes(policy=policy.compat32.clone(linesep="\r\n"))
                if isinstance(inner, list) and inner else str(inner).encode())
    declared = part.get_content_type()
    content_type = declared
    if declared in ("application/octet-stream", "text/plain") and filename:
        content_type = mimetypes.guess_type(filename)[0] or declared
    extension = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    reason = None
    if extension in FORBIDDEN_EXTENSIONS:
        reason = f"forbidden file type ({extension})"
    elif content_type not in allowed:
        reason = f"forbidden file type ({content_type})"
    elif len(data) > limit:
        reason = f"too big: {len(data)} bytes; the limit is {limit}"
    if reason:
        mail.rejected_attachments.append((filename, reason))
        mail.problems.append(f"attachment {filename!r} was not accepted: {reason}")
        return
    mail.attachments.append(InboundAttachment(filename=filename, content_type=content_type, size=len(data), data=data))


def _defects(msg: EmailMessage) -> list[str]:
    """Structural defects in words an agent can act on; header defects are common and harmless, so left out."""
    found: list[str] = []
    for part in msg.walk():
        found += [type(d).__name__ for d in part.defects if not isinstance(d, errors.HeaderDefect)]
    return [f"malformed message: {name}" for name in dict.fromkeys(found)]


def _raw_body_text(raw: bytes) -> str:
    body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")[2] or raw
    return body.decode("utf-8", "replace")


BLOCK_TAGS = {"p", "div", "br", "li", "tr", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "ul", "ol"}


class _HtmlText(HTMLParser):
    """Text of sanitised HTML, one line per block, with `> ` marking quoted (blockquote) lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.lines: list[list] = [[0, ""]]

    def _break(self) -> None:
        if self.lines[-1][1].strip():
            self.lines.append([self.depth, ""])
        else:
            self.lines[-1][0] = self.depth

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "blockquote":
            self.depth += 1
        if tag in BLOCK_TAGS or tag == "blockquote":
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag == "blockquote":
            self.depth = max(0, self.depth - 1)
        if tag in BLOCK_TAGS or tag == "blockquote":
            self._break()

    def handle_data(self, data: str) -> None:
        self.lines[-1][1] += re.sub(r"\s+", " ", data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML mail; nh3 removes scripts, styles and every other tag but the block structure."""
    clean = nh3.clean(html, tags=BLOCK_TAGS | {"blockquote"}, attributes={},
                      clean_content_tags={"script", "style", "title", "head", "noscript", "template"})
    parser = _HtmlText()
    parser.feed(clean)
    parser.close()
    lines = [("> " * depth + text.strip()).rstrip() for depth, text in parser.lines]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


ATTRIBUTION_START = re.compile(r"^\s*(on|am|le|el|op|il|em)\s", re.I)
ATTRIBUTION = re.compile(
    r"^(on|am|le|el|op|il|em)\s.*(wrote|schrieb|a écrit|escribió|schreef|ha scritto|escreveu)\s*:\s*$", re.I)
OUTLOOK_SEPARATOR = re.compile(
    r"^\s*(-{2,}\s*(original message|ursprüngliche nachricht|message d'origine)\s*-{2,}|_{10,})\s*$", re.I)
OUTLOOK_HEADER = re.compile(r"^\s*\*?(from|von|de)\s*:\*?\s+\S", re.I)
OUTLOOK_SENT = re.compile(r"^\s*\*?(sent|date|gesendet|datum|envoyé)\s*:\*?\s", re.I)
MOBILE_FOOTER = re.compile(
    r"^\s*(sent from my \S+.*|sent from (outlook|mail|yahoo).*|get outlook for \S+.*|"
    r"von meinem \S+ gesendet\.?)\s*$", re.I)
SIGN_OFF = re.compile(
    r"^\s*((best|kind|warm|warmest|many thanks and)?\s*regards|best( wishes)?|thanks( again| a lot| in advance)?|"
    r"thank you( very much)?|many thanks|cheers|sincerely|yours( truly| sincerely)?|br|"
    r"(mit )?freundlichen grüßen|viele grüße|liebe grüße|grüße|gruß|cordialement|saludos)\s*[,.!]?\s*$", re.I)


def strip_quoted(text: str) -> str:
    """The new part of a reply: without quoted history, attributions, forwarded Outlook headers and signatures."""
    lines = text.replace("\r\n", "\n").split("\n")
    keep = [True] * len(lines)
    cut = len(lines)
    for i, line in enumerate(lines):
        if OUTLOOK_SEPARATOR.match(line) or (
                OUTLOOK_HEADER.match(line) and any(OUTLOOK_SENT.match(n) for n in lines[i + 1:i + 4])):
            cut = i
            break
        span = 0
        if ATTRIBUTION_START.match(line):  # clients wrap a long "On <date>, <name> wrote:" over up to 3 lines
            span = next((k for k in (1, 2, 3) if ATTRIBUTION.match(" ".join(n.strip() for n in lines[i:i + k]))), 0)
        if span:
            later = [n for n in lines[i + span:] if n.strip()]
            if not any(n.lstrip().startswith(">") for n in later):
                cut = i  # an unquoted history under the attribution: everything below is old
                break
            for j in range(i, i + span):
                keep[j] = False
    body = [line for i, line in enumerate(lines[:cut])
            if keep[i] and not line.lstrip().startswith(">") and not MOBILE_FOOTER.match(line)]
    body = _cut_signature(body)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in body)).strip()


def _cut_signature(lines: list[str]) -> list[str]:
    """Drop a `-- ` signature or a sign-off near the end, but never the only words the customer wrote."""
    def has_words(part: list[str]) -> bool:
        return any(line.strip() for line in part)

    for i, line in enumerate(lines):
        if line.rstrip() == "--" and has_words(lines[:i]):
            lines = lines[:i]
            break
    filled = [i for i, line in enumerate(lines) if line.strip()]
    for n, i in enumerate(filled[-5:]):
        after = [lines[j] for j in filled[-5:][n + 1:]]
        # What follows a sign-off is a name, a title, a phone number: a few short lines.
        if SIGN_OFF.match(lines[i]) and has_words(lines[:i]) and all(len(a.strip()) <= 60 for a in after):
            return lines[:i]
    return lines

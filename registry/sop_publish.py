"""The one way a SOP version is published (API, pages and `ccr sop publish` alike): check, confirm, store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from registry.db import Sessions
from registry.models import SopVersion
from registry.sop_checks import Report, Vocabulary, check_text
from registry.sop_drafts import close_draft, get_draft
from registry.sop_store import latest_version, publish

MAX_NOTE = 2000


class PublishRefused(Exception):
    """The text does not validate, has unconfirmed warnings, or the request lacks a note: nothing was stored."""

    def __init__(self, message: str, report: Report | None = None, *, needs_confirmation: bool = False) -> None:
        super().__init__(message)
        self.report = report
        self.needs_confirmation = needs_confirmation


class PublishConflict(Exception):
    """Another publish of the same SOP committed first; `version` is the one that now exists."""

    def __init__(self, sop_id: str, version: int, by: str) -> None:
        super().__init__(f"version {version} of {sop_id} was published by {by or 'someone else'} a moment ago; "
                         f"compare your text with version {version} and publish again")
        self.version = version


@dataclass
class Published:
    """The version a publish produced (or found unchanged), and the warnings that were confirmed."""

    sop_id: str
    version: int
    content_hash: str
    created: bool
    report: Report


def _outcome(row: SopVersion, created: bool, report: Report) -> Published:
    return Published(row.sop_id, row.version, row.content_hash, created, report)


def publish_text(*, sessions: Sessions, sop_id: str, text: str, note: str, by: str, vocabulary: Vocabulary,
                 confirm_warnings: bool = False, draft: tuple[int, int, str] | None = None) -> Published:
    """Publish `text` as the next version of `sop_id`, or find it unchanged (same content hash).

    Refused when the note is missing, the text has errors, or it has warnings not confirmed; a publish that
    loses a race with another raises PublishConflict. `draft` is (draft id, user id, role) of the draft
    being published, which is then closed.
    """
    note = note.strip()
    if not note:
        raise PublishRefused("write a note saying why this version is published; it is kept in the SOP's history")
    if len(note) > MAX_NOTE:
        raise PublishRefused(f"the note has {len(note):,} characters; at most {MAX_NOTE:,} are kept")
    try:
        with sessions.begin() as session:
            report = check_text(text, vocabulary=vocabulary, session=session, sop_id=sop_id)
            if not report.ok:
                count = len(report.errors)
                raise PublishRefused(f"the SOP has {count} error{'s' if count != 1 else ''}; fix "
                                     f"{'them' if count != 1 else 'it'} before publishing", report)
            if report.warnings and not confirm_warnings:
                count = len(report.warnings)
                raise PublishRefused(f"the SOP has {count} warning{'s' if count != 1 else ''}; confirm that you "
                                     "want to publish it anyway", report, needs_confirmation=True)
            row, created = publish(session=session, definition=report.definition, by=by, note=note, source_yaml=text)
            if draft is not None and created:
                draft_id, user_id, role = draft
                close_draft(session=session, draft=get_draft(session=session, sop_id=sop_id, draft_id=draft_id,
                                                             user_id=user_id, role=role), version=row.version)
            return _outcome(row, created, report)
    except IntegrityError:
        # The unique (sop_id, version) constraint: another publish took this number first.
        with sessions.read() as session:
            winner = latest_version(session=session, sop_id=sop_id)
        if winner is not None and winner.content_hash == report.definition.content_hash():
            return _outcome(winner, False, report)
        raise PublishConflict(sop_id, winner.version if winner else 0, winner.published_by if winner else "") from None

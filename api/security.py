"""Passwords (Argon2), API tokens (hashed at rest) and the role matrix."""

from __future__ import annotations

import hashlib
import secrets

from pwdlib import PasswordHash
from sqlmodel import Session, select

from registry import audit
from registry.models import ApiToken, User
from registry.types import utcnow

ROLES = ("agent", "lead", "process_owner", "sre", "auditor", "admin", "integration")
STAFF = frozenset(ROLES)
AGENTS = frozenset({"agent", "lead", "admin"})

_hasher = PasswordHash.recommended()


def hash_password(password: str) -> str:
    """An Argon2id hash of `password`."""
    return _hasher.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """Whether `password` matches; a missing hash never matches."""
    if not hashed:
        _hasher.hash(password)  # spend the same time, so timing does not reveal unknown accounts
        return False
    try:
        return _hasher.verify(password, hashed)
    except Exception:
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(*, session: Session, user: User, name: str = "", by: str = "system") -> str:
    """A new API token for `user`; only its hash is stored, so this is the one time it is seen."""
    token = "ccr_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=_digest(token), name=name)
    session.add(row)
    session.flush()
    audit.record(session=session, actor=by, action="token.created", target=f"user:{user.email}",
                 detail={"token_id": row.id, "name": name})
    return token


def user_by_email(*, session: Session, email: str) -> User:
    """The member of staff with this e-mail; a ValueError says how to find the right one."""
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise ValueError(f"no user with the e-mail {email}; `ccr user list` shows who there is")
    return user


def list_tokens(*, session: Session, email: str | None = None) -> list[tuple[ApiToken, User]]:
    """Every API token with its owner (or only `email`'s), oldest first; the tokens themselves are not kept."""
    query = select(ApiToken, User).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if email is not None:
        query = query.where(User.id == user_by_email(session=session, email=email).id)
    return list(session.exec(query))


def revoke_token(*, session: Session, token_id: int, by: str = "system") -> tuple[ApiToken, User]:
    """Delete an API token, so the next request that carries it is refused."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise ValueError(f"there is no API token with id {token_id}; `ccr token list` shows them")
    user = session.get(User, token.user_id)
    session.delete(token)
    session.flush()
    audit.record(session=session, actor=by, action="token.revoked", target=f"user:{user.email if user else '?'}",
                 detail={"token_id": token.id, "name": token.name})
    return token, user


def set_active(*, session: Session, email: str, active: bool, by: str = "system") -> User:
    """Let a member of staff in again, or keep them out: a deactivated user is signed out at their next page
    (for good: activating them again does not revive old sessions) and their API tokens are refused; what
    they wrote and the concerns they hold stay as they are."""
    user = user_by_email(session=session, email=email)
    if user.active and not active:
        user.session_epoch += 1  # ends every session, also after they are let in again
    changed = user.active != active
    user.active = active
    session.add(user)
    session.flush()
    if changed:
        audit.record(session=session, actor=by, action="user.activated" if active else "user.deactivated",
                     target=f"user:{user.email}", detail={"role": user.role})
    return user


def update_user(
    *, session: Session, email: str, role: str | None = None, level: int | None = None,
    skills: list[str] | None = None, name: str | None = None, password: str | None = None, by: str = "system",
) -> User:
    """Change a member of staff; what is not given stays. It counts from their next page or action."""
    user = user_by_email(session=session, email=email)
    before = {"role": user.role, "level": user.level, "skills": list(user.skills), "name": user.name}
    if level is None:  # a skill level stays while someone works the desk and goes when they move off it
        level = user.level if role in (None, "agent", "lead") else None
    role = role or user.role
    _check_account(role, level, password)
    user.role, user.level = role, level
    if skills is not None:
        user.skills = skills
    if name:
        user.name = name
    if password is not None:
        user.password_hash = hash_password(password)
        user.session_epoch += 1  # signed out everywhere: whoever knew the old password is out too
    session.add(user)
    session.flush()
    after = {"role": user.role, "level": user.level, "skills": list(user.skills), "name": user.name}
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changes:
        audit.record(session=session, actor=by, action="user.updated", target=f"user:{user.email}", detail=changes)
    if password is not None:
        audit.record(session=session, actor=by, action="user.password_set", target=f"user:{user.email}")
    return user


def user_for_token(*, session: Session, token: str) -> User | None:
    """The active user a bearer token belongs to."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == _digest(token))).first()
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    row.last_used_at = utcnow()
    session.add(row)
    return user


def _check_account(role: str, level: int | None, password: str | None) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if role in ("agent", "lead") and level not in (1, 2, 3):
        raise ValueError("agents need a skill level: --level 1, 2 or 3")
    if password is not None and len(password) < 8:
        raise ValueError("the password needs at least 8 characters")


def create_user(
    *, session: Session, email: str, password: str, role: str, name: str = "", level: int | None = None,
    skills: list[str] | None = None, by: str = "system",
) -> User:
    """Add a member of staff; agents get a skill level (1-3)."""
    _check_account(role, level, password)
    email = email.strip().lower()
    if session.exec(select(User).where(User.email == email)).first():
        raise ValueError(f"a user with the e-mail {email} already exists")
    user = User(email=email, name=name or email.split("@")[0].title(), password_hash=hash_password(password),
                role=role, level=level, skills=skills or [])
    session.add(user)
    session.flush()
    audit.record(session=session, actor=by, action="user.created", target=f"user:{user.email}",
                 detail={"role": role, "level": level, "skills": list(user.skills)})
    return user

"""Ideas to product: the feedback form on a concern page, and `/ideas` where product management reads the
feedback by product and theme, gives a theme its status and tells customers when it ships."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from api.deps import SessionsDep, SettingsDep
from api.ideas import PRESETS, ideas_csv, period_of
from registry import ideas as store
from registry.ideas import IdeaNotice
from registry.models import Concern, OutboxMail
from web.csrf import verify_csrf
from web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

FORM_FIELDS = ("product", "kind", "theme", "interaction_id")


def _feedback_view(session, concern_id: str) -> dict:
    concern = session.get(Concern, concern_id)
    if concern is None:
        raise HTTPException(404, f"no concern {concern_id}")
    return {"c": concern, "messages": store.quotable_messages(session=session, concern_id=concern_id),
            "recorded": store.feedback_of(session=session, concern_id=concern_id), "kinds": store.KINDS,
            "themes": store.theme_names(session=session),
            "themes_by_id": {t.id: t.name for t in session.exec(select(store.IdeaTheme))}}


def _render_feedback(request: Request, view: dict, *, status_code: int = 200):
    name = "ideas/_feedback.html" if is_htmx(request) else "ideas/feedback_page.html"
    return render(request, name, {**view, "fragment": is_htmx(request)}, status_code=status_code)


@router.get("/concerns/{concern_id}/feedback")
def feedback_form(request: Request, sessions: SessionsDep, concern_id: str):
    """The product feedback form of a concern (a fragment for htmx, a page without it)."""
    with sessions.read() as session:
        view = _feedback_view(session, concern_id)
    return _render_feedback(request, {**view, "form": {}, "error": None, "done": None})


@router.post("/concerns/{concern_id}/feedback", dependencies=[Depends(verify_csrf)])
def record_feedback(request: Request, sessions: SessionsDep, concern_id: str, product: str = Form(""),
                    kind: str = Form(""), theme: str = Form(""), interaction_id: str = Form("")):
    """Mark the concern as product feedback, quoting the customer's message picked."""
    principal = request.state.principal
    form = {"product": product, "kind": kind, "theme": theme, "interaction_id": interaction_id}
    error = done = None
    try:
        if not interaction_id.strip().isdigit():
            raise store.FeedbackRefused("pick a quote from this concern's customer messages")
        with sessions.begin() as session:
            store.record_feedback(session=session, concern_id=concern_id, interaction_id=int(interaction_id),
                                  product=product, kind=kind, theme=theme, by_user_id=principal.id,
                                  by_name=principal.name)
        done, form = f"Recorded as {store.KINDS[kind].lower()} on {' '.join(product.split())}.", {}
    except store.FeedbackRefused as err:
        error = str(err)
    if not is_htmx(request) and error is None:
        return RedirectResponse(f"/concerns/{concern_id}", 303)
    with sessions.read() as session:
        view = _feedback_view(session, concern_id)
    return _render_feedback(request, {**view, "form": form, "error": error, "done": done},
                            status_code=422 if error else 200)


def _page_context(request: Request, sessions) -> tuple[dict, list]:
    params = dict(request.query_params)
    period = period_of(params)
    with sessions.read() as session:
        groups = store.ideas(session=session, period=period)
    chosen = "" if params.get("from") or params.get("to") else params.get("period") or "30d"
    query = {k: v for k, v in params.items() if k in ("period", "from", "to") and v}
    return {"groups": groups, "p": period, "presets": PRESETS, "period": chosen, "query": query,
            "kinds": store.KINDS, "statuses": store.STATUSES}, groups


@router.get("/ideas")
def ideas_page(request: Request, sessions: SessionsDep):
    """Product feedback by product and theme, with the trend, CSAT and the customers' words."""
    ctx, _ = _page_context(request, sessions)
    ctx["notice"] = request.session.pop("ideas_flash", None)
    ctx["can_set"] = request.state.principal.role in ("lead", "process_owner", "admin")
    return render(request, "ideas/ideas.html", ctx)


@router.get("/ideas.csv")
def ideas_export(request: Request, sessions: SessionsDep):
    """The page's table as CSV."""
    ctx, groups = _page_context(request, sessions)
    name = f"ideas-{ctx['p'].start}-{ctx['p'].end}.csv"
    return Response(ideas_csv(groups), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/ideas/themes/{theme_id}/status", dependencies=[Depends(verify_csrf)])
async def set_theme_status(request: Request, sessions: SessionsDep, settings: SettingsDep, theme_id: int,
                           status: str = Form(""), back: str = Form("/ideas")):
    """Give a theme a status; on shipped, its concerns' customers are told once."""
    target = back if back.startswith("/ideas") else "/ideas"
    principal = request.state.principal

    def change() -> str:
        with sessions.begin() as session:
            theme, told = store.set_status(
                session=session, theme_id=theme_id, status=status, actor=principal.email or principal.name,
                support_domain=settings.support_address.rsplit("@", 1)[-1], base_url=settings.base_url)
            message = f"{theme.product} · {theme.name}: {store.STATUSES[status].lower()}."
        if status == "shipped":
            message += (f" The customers of {told} concern{'s' if told != 1 else ''} were told, each through "
                        "their concern." if told else " Every customer of it had been told already.")
        return message

    try:
        message = await run_in_threadpool(change)
        if status == "shipped":
            await deliver_notices(sessions, settings, theme_id)
    except (store.FeedbackRefused, LookupError) as err:
        message = f"Not done: {err}"
    request.session["ideas_flash"] = message
    return RedirectResponse(target, 303)


async def deliver_notices(sessions, settings, theme_id: int) -> None:
    """Hand the theme's queued notices to the relay (or keep them in the local outbox without one); a failure
    stays on the outbox row, where /ops shows it and an operator can send it again."""
    from activities.mail_out import Mailer, mark_failed, mark_sent, message_from_outbox

    def queued():
        with sessions.read() as session:
            rows = session.exec(select(OutboxMail).join(IdeaNotice, IdeaNotice.outbox_id == OutboxMail.id).where(
                IdeaNotice.theme_id == theme_id, OutboxMail.status == "queued")).all()
            return [(row.id, message_from_outbox(row, from_address=settings.support_address, automated=True))
                    for row in rows]

    mailer = Mailer(settings)
    for outbox_id, message in await run_in_threadpool(queued):
        try:
            relayed, error = await mailer.send(message), None
        except Exception as err:  # noqa: BLE001 - the relay's refusal is recorded on the row
            relayed, error = False, " ".join(str(err).split()) or type(err).__name__

        def finish(outbox_id=outbox_id, relayed=relayed, error=error) -> None:
            with sessions.begin() as session:
                if error is None:
                    mark_sent(session=session, outbox_id=outbox_id, relayed=relayed)
                else:
                    mark_failed(session=session, outbox_id=outbox_id, error=error)

        await run_in_threadpool(finish)

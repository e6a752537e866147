"""`incident maintenance <service|team> <duration | until HH:MM> [reason]`, `incident maintenance
list` and `incident maintenance end MW-n`: silence a service or a team while it is worked on. Its
alerts are still stored as incidents, marked "in maintenance", but announced nowhere until the
window ends (handlers/incident/maintenance.py). Starting and ending one is for those who respond
for the service or team; anyone may list them."""
from __future__ import annotations

from typing import Any

from cards.maintenance import window_line
from handlers.commands.acting import first_time
from handlers.commands.parsing import ParseError
from handlers.commands.registry import Where, command
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.incident import maintenance as apply
from incidents import maintenance as rules
from incidents import permissions
from incidents.maintenance import SERVICE, TEAM, window_ref
from incidents.model import Actor
from storage import maintenance as windows

USAGE = ("Usage: `incident maintenance <service|team> <duration | until HH:MM> [reason]` (e.g. "
         "`incident maintenance order-db 2h kernel patching`), `incident maintenance list` or "
         "`incident maintenance end MW-3`.")


def _parse(rest: str, verb: str) -> dict[str, Any]:
    words = rest.split()
    if not words:
        raise ParseError(USAGE)
    if words[0].lower() == "list" and len(words) == 1:
        return {"do": "list"}
    if words[0].lower() == "end":
        window_id = rules.parse_window_ref(words[1]) if len(words) == 2 else None
        if window_id is None:
            raise ParseError(f"`end` takes the window's id, as the list shows it: "
                             f"`incident maintenance end MW-3`. {USAGE}")
        return {"do": "end", "window": window_id}
    if len(words) < 2:
        raise ParseError(f"How long should {words[0]} be in maintenance? {USAGE}")
    return {"do": "start", "target": words[0], "rest": words[1:]}


@command("maintenance", usage="incident maintenance ‹service|team› ‹duration | until HH:MM› "
                              "[reason] · list · end ‹MW-n›",
         summary="Silence a service or team while it is worked on (its responders)",
         section="Set-up", parse=_parse, aliases=("mw",))
async def maintenance(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    if args["do"] == "list":
        return await _list(ctx)
    if args["do"] == "end":
        return await _end(ctx, actor, args["window"], where)
    return await _start(ctx, actor, args, where)


def _target(ctx: Context, word: str) -> tuple[str, str] | None:
    if ctx.catalog.service(word):
        return SERVICE, word
    team = ctx.catalog.find_team(word)
    return (TEAM, team.key) if team else None


async def _start(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    found = _target(ctx, args["target"])
    if found is None:
        return Reply.refuse(f"{args['target']!r} is neither a service nor a team in the "
                            f"catalog. {USAGE}")
    kind, target = found
    label = target if kind == SERVICE else ctx.catalog.team_name(target)
    refusal = permissions.maintenance_refusal(actor, label, kind, target, ctx.catalog,
                                              ctx.policy.admins)
    if refusal:
        return Reply.refuse(refusal)
    now = ctx.now()
    try:
        ends_at, reason_words = rules.window_end(args["rest"], now, ctx.catalog.timezone)
    except rules.BadLength as exc:
        return Reply.refuse(f"{exc}. {USAGE}")
    reason = " ".join(reason_words)
    if len(reason) > rules.REASON_LIMIT:
        return Reply.refuse(f"That reason is {len(reason)} characters; keep it under "
                            f"{rules.REASON_LIMIT}.")
    async with ctx.db.write() as conn:
        if not await first_time(ctx, conn, where):
            return Reply(repeated=True)
        window = await windows.insert(conn, target_kind=kind, target=target, starts_at=now,
                                      ends_at=ends_at, reason=reason or None,
                                      created_by=actor.email or actor.label)
    local = ends_at.astimezone(ctx.catalog.timezone)
    return Reply(text=f"🔧 **{window_ref(window['id'])}**: {kind} {label} is in maintenance "
                      f"until {local:%H:%M} ({ctx.catalog.timezone.key}). Its alerts are stored "
                      "as incidents without cards, war rooms, JIRA tasks, e-mails or reminders; "
                      "a summary comes here when it ends. End it early with `incident "
                      f"maintenance end {window_ref(window['id'])}`.")


async def _end(ctx: Context, actor: Actor, window_id: int, where: Where) -> Reply:
    async with ctx.db.write() as conn:
        window = await windows.get(conn, window_id)
        if window is None:
            return Reply.refuse(f"There is no maintenance window {window_ref(window_id)}: "
                                "`incident maintenance list` shows those on now.")
        label = apply.target_label(ctx, window)
        refusal = permissions.maintenance_refusal(actor, label, window["target_kind"],
                                                  window["target"], ctx.catalog,
                                                  ctx.policy.admins)
        if refusal:
            return Reply.refuse(refusal)
        if not await first_time(ctx, conn, where):
            return Reply(repeated=True)
        if await apply.end_early(ctx, conn, window_id, actor) is None:
            return Reply.refuse(f"{window_ref(window_id)} is already over.")
    ctx.wake_worker()
    return Reply(text=f"🔧 {window_ref(window_id)} ended: {label} is announced normally again. "
                      "Its summary follows, and anything still firing gets its card now.")


async def _list(ctx: Context) -> Reply:
    now = ctx.now()
    async with ctx.db.write() as conn:   # a recurring occurrence is stored when first seen
        found = await apply.windows_on(ctx, conn, now)
        held = await windows.counts(conn, [w["id"] for w in found])
    if not found:
        return Reply(text="No maintenance window is on. Start one with `incident maintenance "
                          "<service|team> <duration | until HH:MM> [reason]`.")
    lines = [window_line(w, held.get(w["id"], 0), apply.target_label(ctx, w), now,
                         ctx.catalog.timezone) for w in found]
    return Reply(text="Maintenance windows on now:\n\n" + "\n\n".join(f"- {x}" for x in lines))

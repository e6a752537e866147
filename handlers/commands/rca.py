"""The RCA form: `incident rca INC-n` (or the card's RCA button) opens it pre-filled; saving
validates every field, keeps partial work, and turns new action items into JIRA tasks."""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.rca import rca_form
from handlers.commands.acting import act_on_incident
from handlers.commands.parsing import ref_only
from handlers.commands.registry import Where, command, incident_from_card
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.effects.jira_tasks import queue_action_item_task
from handlers.incident.change import change
from handlers.incident.postmortem import ensure_postmortem
from handlers.reads import links
from handlers.reads.people import owner_choices
from handlers.reads.postmortem import summary_card
from incidents import permissions
from incidents import postmortem as rules
from incidents.model import Actor, Incident, ref
from storage import postmortems as pm_store
from storage import timeline


@command("rca", usage="incident rca ‹INC-n›", summary="Open the RCA form of the postmortem",
         section="Follow-ups", parse=ref_only, card_verbs={"rca": incident_from_card})
async def open_rca_form(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        if incident.parent_id is not None:
            return Reply.refuse(f"{incident.ref} is linked to {ref(incident.parent_id)}: its "
                                f"RCA is {ref(incident.parent_id)}'s.")
        # Anyone may read the form; starting a postmortem (a JIRA task, a timeline entry, and
        # from then on a lower level needs a reason) is for the incident's responders.
        responder = permissions.may_act("rca_save", actor, incident, ctx.catalog,
                                        ctx.policy.admins)
        if responder:
            await ensure_postmortem(ctx, conn, incident, force=True)
        return Reply(card=await _form(ctx, conn, incident, where=where, refill=responder))
    # Opening the form is a read: no event key, so opening it twice shows it twice.
    return await act_on_incident(ctx, args["incident"], replace(where, event_key=None), act,
                                 actor=actor)


@command("rca_save", usage="(the RCA form's Save button)", summary="Save the RCA",
         section="Follow-ups", card_verbs={"rca_save": incident_from_card}, in_help=False)
async def save_rca(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        if await pm_store.get(conn, incident.id) is None:
            await ensure_postmortem(ctx, conn, incident, force=True)
        stored = await pm_store.get(conn, incident.id) or {}
        fields, errors = _fields(args, stored)
        through = args.get("timeline_through")
        if "timeline" in fields and isinstance(through, int) and not isinstance(through, bool):
            # the entries the form showed are now the person's to edit or delete
            fields["timeline_through"] = max(through, stored.get("timeline_through") or 0)
        drafts, item_errors = _action_items(ctx, args)
        errors.update(item_errors)
        if errors:
            return Reply.refuse("; ".join(errors.values()),
                                card=await _form(ctx, conn, incident, args, errors,
                                                 where=where))
        await _store_items(ctx, conn, incident, drafts)
        items = await pm_store.action_items(conn, incident.id)
        merged = {**(await pm_store.get(conn, incident.id)), **fields}
        missing = rules.missing(merged, items)
        await pm_store.save(conn, incident.id, fields, complete=not missing, now=ctx.now())
        state = "complete" if not missing else "draft: still needs " + "; ".join(missing)
        await change(ctx, conn, incident, {}, kind="rca", actor=actor, text=f"RCA saved ({state})")
        return Reply(text=f"📘 RCA of {incident.ref} saved "
                          f"({'complete' if not missing else 'draft'}).",
                     card=await summary_card(ctx, conn, incident), incident_id=None)
    return await act_on_incident(ctx, args["incident"], where, act,
                                 action="rca_save", actor=actor)


async def _form(ctx: Context, conn: AsyncConnection, incident: Incident,
                typed: dict[str, Any] | None = None, errors: dict[str, str] | None = None, *,
                where: Where, refill: bool = False) -> dict[str, Any]:
    postmortem = {**(await pm_store.get(conn, incident.id) or {})}
    if postmortem:
        # The RCA timeline follows the incident's: entries since it was last filled go in,
        # what people wrote stays (incidents.postmortem.refill_timeline).
        text, through = rules.refill_timeline(
            postmortem.get("timeline"), await timeline.entries_with_ids(conn, incident.id),
            postmortem.get("timeline_through"), ctx.catalog.timezone)
        if refill and (text, through) != (postmortem.get("timeline"),
                                          postmortem.get("timeline_through")):
            await pm_store.refill_timeline(conn, incident.id, timeline=text, through=through)
        postmortem.update(timeline=text, timeline_through=through)
    items = await pm_store.action_items(conn, incident.id)
    if typed:  # show back what was typed, so a validation error loses nothing
        postmortem.update({k: typed.get(k) for k, _ in rules.RCA_SECTIONS if k in typed})
    minutes = rules.impact_minutes(incident.triggered_at, incident.resolved_at, ctx.now())
    people = await owner_choices(ctx, conn, incident, [i.get("owner") for i in items])
    return rca_form(incident, postmortem, items, errors=errors,
                    page_url=links.postmortem_page(ctx, postmortem), impact_minutes=minutes,
                    people=people, typeahead=where.typeahead,
                    timeline_through=postmortem.get("timeline_through"))


def _fields(args: dict[str, Any], stored: dict[str, Any]) -> tuple[dict[str, Any],
                                                                   dict[str, str]]:
    fields, errors = {}, {}
    for name, label in rules.RCA_SECTIONS:
        if name in args:
            value = str(args.get(name) or "").strip()
            if _shortened_prefill(value, stored.get(name)):
                continue  # the form showed a shortened copy: the full text stays as it was
            if len(value) > rules.FIELD_LIMIT:
                errors[name] = f"{label.split(' (')[0]} is over {rules.FIELD_LIMIT} characters"
            fields[name] = value or None
    raw = str(args.get("impact_minutes") or "").strip()
    if raw:
        try:
            minutes = int(float(raw))
            if not 0 <= minutes <= 525_600:
                raise ValueError
            fields["impact_minutes"] = minutes
        except ValueError:
            errors["impact_minutes"] = "minutes of impact must be a whole number of minutes"
    elif "impact_minutes" in args:
        fields["impact_minutes"] = None
    return fields, errors


def _shortened_prefill(value: str, stored: str | None) -> bool:
    """The form pre-fills long answers shortened ("…" at the end) to fit Teams' card limit;
    sending that back unchanged must not cut the stored answer."""
    return bool(stored) and value.endswith("…") and len(value) < len(stored) \
        and stored.startswith(value[:-1].rstrip())


def _action_items(ctx: Context, args: dict[str, Any]) -> tuple[list[rules.ActionItemDraft],
                                                               dict[str, str]]:
    ids = args.get("items") if isinstance(args.get("items"), list) else []
    drafts, errors = [], {}
    for i in range(min(len(ids), 50)):
        title = str(args.get(f"item_{i}_title") or "").strip()
        if str(args.get(f"item_{i}_remove") or "").lower() == "true":
            title = ""  # ticked Remove: an existing item goes, a new one is not added
        owner_raw = str(args.get(f"item_{i}_owner") or "").strip()
        due_raw = str(args.get(f"item_{i}_due") or "").strip()
        item_id = ids[i] if isinstance(ids[i], int) else None
        if not title and item_id is None:
            continue
        owner = _owner(ctx, owner_raw)
        if owner_raw and owner is None:
            errors[f"item_{i}_owner"] = (f"action {i + 1}: owner `{owner_raw[:60]}` is not an "
                                         "e-mail address or a person in the catalog")
        due = None
        if due_raw:
            try:
                due = date.fromisoformat(due_raw)
            except ValueError:
                errors[f"item_{i}_due"] = f"action {i + 1}: due date must look like 2025-03-21"
        if len(title) > rules.ACTION_TITLE_LIMIT:
            errors[f"item_{i}_title"] = (f"action {i + 1}: keep titles under "
                                         f"{rules.ACTION_TITLE_LIMIT} characters")
        drafts.append(rules.ActionItemDraft(title, owner, due, item_id))
    return drafts, errors


def _owner(ctx: Context, raw: str) -> str | None:
    if not raw:
        return None
    person = ctx.catalog.find_person(raw)
    if person:
        return person.email
    return raw.lower() if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", raw) else None


async def _store_items(ctx: Context, conn: AsyncConnection, incident: Incident,
                       drafts: list[rules.ActionItemDraft]) -> None:
    existing = {i["id"]: i for i in await pm_store.action_items(conn, incident.id)}
    now = ctx.now()
    removed = [d.item_id for d in drafts if d.item_id in existing and not d.title]
    await pm_store.remove_action_items(conn, removed)
    for position, d in enumerate(x for x in drafts if x.title):
        if d.item_id in existing:
            before = existing[d.item_id]
            if (before["title"], before["owner"], before["due_date"], before["position"]) != \
                    (d.title, d.owner, d.due_date, position):
                await pm_store.update_action_item(conn, d.item_id, title=d.title, owner=d.owner,
                                                  due_date=d.due_date, position=position,
                                                  updated_at=now)
            continue
        item_id = await pm_store.add_action_item(conn, incident.id, position=position,
                                                 title=d.title, owner=d.owner, due_date=d.due_date,
                                                 now=now)
        await queue_action_item_task(ctx, conn, incident, item_id)

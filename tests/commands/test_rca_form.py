"""The RCA form through the bot, as Teams sends it (issue 14, parts 2 and 3): action items with a
full-width title, an owner picked from people (with Teams' typeahead answered by the bot's
`application/search` invoke), a due date, added and removed; and the RCA timeline refilled from the
incident timeline each time the form opens, keeping what people wrote."""
from storage import postmortems
from tests.harness import card_text

CARD = "application/vnd.microsoft.card.adaptive"
SEARCH = "application/vnd.microsoft.search.searchResponse"


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _inputs(card):
    return {n["id"]: n for n in _walk(card["body"]) if str(n.get("type", "")).startswith("Input.")}


def _teams_client(activity, service_url=None):
    """As Teams sends it: a clientInfo entity naming the platform, through the Bot Connector (https;
    the Agents Playground, plain http, gets the static picker: it answers no typeahead search)."""
    activity["entities"] = [*activity.get("entities", []),
                            {"type": "clientInfo", "platform": "Web", "locale": "en-US"}]
    if service_url:
        activity["serviceUrl"] = service_url
    return activity


async def _open(h, *, teams=False, who="priya"):
    click = h.card_click("rca", {"incident": "INC-1"}, who=who)
    if teams:  # the form answers the invoke itself: nothing is sent to this address
        click = _teams_client(click, "https://127.0.0.1:9/teams/")  # https, as the Bot Connector
    status, body = await h.send(click)
    assert status == 200 and body["type"] == CARD, body
    return body["value"]


async def _save(h, form, **typed):
    fields = {k: v.get("value", "") for k, v in _inputs(form).items()}
    save = next(a for a in form["actions"] if a.get("verb") == "rca_save")
    status, body = await h.send(h.card_click("rca_save", {**save["data"], **fields, **typed}))
    assert status == 200
    return body


async def _declared(h):
    await h.subscribe("checkout")
    await h.say("incident declare checkout is down")
    await h.settle()


async def _items(h):
    async with h.ctx.db.read() as conn:
        return await postmortems.action_items(conn, 1)


async def test_action_items_have_a_full_width_title_an_owner_picked_from_people_and_a_due_date(harness):
    h = harness
    await _declared(h)
    form = await _open(h)
    inputs = _inputs(form)
    # the title is alone in its container: nothing beside it squeezes it
    row = next(n for n in _walk(form["body"]) if n.get("type") == "Container"
               and any(i.get("id") == "item_0_title" for i in n["items"]))
    assert row["items"][0]["id"] == "item_0_title" and row["items"][0]["type"] == "Input.Text"
    owner = inputs["item_0_owner"]
    assert owner["type"] == "Input.ChoiceSet" and owner["style"] == "compact"
    offered = {c["value"]: c["title"] for c in owner["choices"]}
    # the team (Priya, Daniel) and the other responders (the service's on-call) by name
    assert offered["priya.raman@shopfront.example"] == "Priya Raman"
    assert offered["daniel.okafor@shopfront.example"] == "Daniel Okafor"
    assert inputs["item_0_due"]["type"] == "Input.Date"
    # not a Teams client (Web Chat, the Playground): static choices only, no 1.6 property
    assert "choices.data" not in owner
    click = _teams_client(h.card_click("rca", {"incident": "INC-1"}))  # Teams-like, over http
    assert "choices.data" not in _inputs((await h.send(click))[1]["value"])["item_0_owner"]

    teams_form = await _open(h, teams=True)
    teams_owner = _inputs(teams_form)["item_0_owner"]
    assert teams_owner["style"] == "filtered"  # type to filter, and to ask Firebell for anyone else
    assert teams_owner["choices.data"] == {"type": "Data.Query", "dataset": "people"}


async def test_adding_and_removing_action_items(harness):
    h = harness
    await _declared(h)
    form = await _open(h)
    body = await _save(h, form, item_0_title="Add a replica health check",
                       item_0_owner="daniel.okafor@shopfront.example", item_0_due="2026-12-20",
                       item_1_title="Alert on replication lag", item_1_owner="",
                       item_1_due="")
    assert body["type"] == CARD and "Add a replica health check" in card_text(body["value"])
    items = await _items(h)
    assert [(i["title"], i["owner"], str(i["due_date"])) for i in items] == [
        ("Add a replica health check", "daniel.okafor@shopfront.example", "2026-12-20"),
        ("Alert on replication lag", None, "None")]

    form = await _open(h)
    inputs = _inputs(form)
    assert inputs["item_0_owner"]["value"] == "daniel.okafor@shopfront.example"
    assert inputs["item_0_due"]["value"] == "2026-12-20"
    assert "item_0_remove" in inputs and "item_2_remove" not in inputs  # new rows: nothing to remove
    await _save(h, form, item_0_remove="true", item_2_title="Run a failover drill",
                item_2_owner="priya.raman@shopfront.example", item_2_due="2027-01-15")
    assert [i["title"] for i in await _items(h)] == ["Alert on replication lag",
                                                    "Run a failover drill"]

    # an owner who is neither a person in the catalog nor an e-mail is refused, nothing saved
    form = await _open(h)
    body = await _save(h, form, item_0_owner="not a person")
    assert "owner `not a person` is not an e-mail address" in card_text(body["value"])
    assert [i["owner"] for i in await _items(h)] == [None, "priya.raman@shopfront.example"]


async def test_typeahead_search_answers_from_the_catalog_and_the_roster(harness):
    h = harness

    async def search(value, who="priya"):
        activity = h.card_click("unused", {}, who=who)
        activity.update(name="application/search", value=value)
        return await h.send(_teams_client(activity))

    status, body = await search({"dataset": "people", "queryText": "mei",
                                 "queryOptions": {"skip": 0, "top": 15}})
    assert status == 200 and body["type"] == SEARCH
    assert body["value"]["results"] == [{"title": "Mei Tanaka",
                                         "value": "mei.tanaka@shopfront.example"}]
    # a roster member the catalog does not list (learnt when Firebell was added to the team)
    status, body = await search({"dataset": "people", "queryText": "guest"})
    assert body["value"]["results"] == [{"title": "Guest User", "value": "guest@elsewhere.example"}]
    # every word must match; paging with skip/top
    status, body = await search({"dataset": "people", "queryText": "shopfront",
                                 "queryOptions": {"skip": 0, "top": 3}})
    first = [r["value"] for r in body["value"]["results"]]
    status, body = await search({"dataset": "people", "queryText": "shopfront",
                                 "queryOptions": {"skip": 3, "top": 3}})
    assert len(first) == 3 and not set(first) & {r["value"] for r in body["value"]["results"]}
    status, body = await search({"dataset": "people", "queryText": "zz nobody"})
    assert status == 200 and body["value"]["results"] == []
    # bad requests: a clear 400 naming what is wrong
    status, body = await search({"dataset": "games", "queryText": "x"})
    assert status == 400 and body["type"] == "application/vnd.microsoft.error"
    assert "people" in body["value"]["message"]
    status, body = await search({"dataset": "people", "queryText": "x",
                                 "queryOptions": {"skip": -1, "top": "many"}})
    assert status == 400 and "skip" in body["value"]["message"]


async def test_rca_timeline_is_refilled_each_time_the_form_opens_keeping_human_edits(harness):
    h = harness
    await _declared(h)
    form = await _open(h)
    first = _inputs(form)["timeline"]["value"]
    assert "declared" in first and "acknowledged" not in first

    await h.say("incident ack INC-1")
    await h.say("incident note INC-1 failover to the replica started")
    await h.settle()
    form = await _open(h)
    refilled = _inputs(form)["timeline"]["value"]
    assert "acknowledged" in refilled.lower() and "failover to the replica started" in refilled

    # a person rewrites a line, deletes another and adds their own; then more happens
    lines = refilled.splitlines()
    note = next(line for line in lines if "failover to the replica" in line)
    edited = [line for line in lines if "postmortem started" not in line]
    edited = [line.replace(note, note[:20] + " UTC — failover to replica db-2 (by hand)")
              if line == note else line for line in edited]
    edited.append("09:99 the on-call noticed the dashboard first")
    await _save(h, form, timeline="\n".join(edited))
    await h.say("incident resolve INC-1")
    await h.settle()

    text = _inputs(await _open(h))["timeline"]["value"]
    assert "failover to replica db-2 (by hand)" in text
    assert "failover to the replica started" not in text  # the edit is not undone
    assert "postmortem started" not in text               # the deletion is kept
    assert "the on-call noticed the dashboard first" in text
    assert "resolved" in text.lower().splitlines()[-1]    # the new entry, at its place in time
    async with h.ctx.db.read() as conn:
        stored = await postmortems.get(conn, 1)
    assert stored["timeline"] == text


async def test_the_postmortem_page_shows_one_timeline(harness):
    h = harness
    await _declared(h)
    await _open(h)
    await h.say("incident ack INC-1")
    await h.settle()
    async with h.ctx.db.read() as conn:
        token = (await postmortems.get(conn, 1))["link_token"]
    async with h.http.get(f"{h.url}/postmortems/{token}") as resp:
        page = await resp.text()
    assert page.count("<h2>Timeline</h2>") == 1 and "Incident timeline" not in page
    assert "acknowledged" in page.lower()  # refilled on the page too, without waiting for the form
    async with h.http.get(f"{h.url}/postmortems/{token}.md") as resp:
        md = await resp.text()
    assert md.count("## Timeline") == 1 and "Incident timeline" not in md

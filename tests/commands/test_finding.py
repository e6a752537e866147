"""Finding things (issue 14 part 6): `incident list` folds linked children into their root, each row
with team, ack state, age and a Show button; `incident search` matches by prefix or stem, all words
before any word, each hit with a Show button; the help card keeps every command whole."""
from cards.help import help_card
from cards.listing import ListRow, folded
from handlers.commands.registry import help_sections
from tests.commands.test_rca_form import _walk
from tests.harness import card_text

CARD = "application/vnd.microsoft.card.adaptive"


def _card(reply):
    (att,) = reply["attachments"]
    return att["content"]


async def test_list_folds_children_into_their_root_with_team_ack_age_and_show(harness):
    h = harness
    await h.subscribe("checkout")
    await h.say("incident declare checkout is down")
    await h.say("incident declare checkout is down")
    await h.say("incident declare checkout payment form broken")
    await h.settle()
    await h.say("incident link INC-3 INC-1")
    await h.say("incident ack INC-1")
    await h.settle()
    incidents = {i.id: i for i in await h.incidents()}
    kinds = {i.link_kind for i in incidents.values() if i.parent_id == 1}
    assert incidents[3].parent_id == 1

    listing = _card(await h.say("incident list"))
    text = card_text(listing)
    rows = [n for n in _walk(listing["body"]) if n.get("type") == "Container"]
    expected = folded(incidents[1], {k: sum(1 for i in incidents.values()
                                            if i.parent_id == 1 and i.link_kind == k)
                                     for k in kinds})
    assert expected in text and "+1 cascade" in expected
    assert "INC-3" not in text            # folded into INC-1, not a row of its own
    assert "Checkout · acknowledged by Priya Raman ·" in text and " old · " in text
    shows = [a for a in _walk(listing["body"]) if a.get("type") == "Action.Execute" and a.get("verb") == "show"]
    assert len(shows) == len(rows) and shows[0]["data"] == {"incident": "INC-1"}

    # the Show button posts the incident's card below the list, which stays as it was
    posts = len(h.connector.posts)
    status, body = await h.send(h.card_click("show", shows[0]["data"], reply_to="list-1"))
    assert status == 200 and body["value"] == "Posted below."
    assert len(h.connector.posts) == posts + 1
    assert "INC-1" in card_text(h.connector.posts[-1]["activity"]["attachments"][0]["content"])


def test_folded_row_names_cascades_and_duplicates():
    from tests.e2e.firebell_cards import incident
    i = incident(2, service="catalog-db")
    assert folded(i, {"cascade": 1, "duplicate": 2}) == "INC-2 catalog-db, +1 cascade, 2 duplicates"
    assert folded(i, {"duplicate": 1}) == "INC-2 catalog-db, 1 duplicate"
    assert folded(i, {}) == "INC-2 catalog-db"
    assert ListRow(i).children == {}


async def test_search_by_prefix_and_stem_all_words_first_each_with_show(harness):
    h = harness
    await h.subscribe("checkout")
    await h.say("incident declare checkout deploy failed")                # INC-1
    await h.say("incident declare checkout errors after release")         # INC-2
    await h.settle()
    await h.say("incident note INC-2 Rolled back the release, errors gone")
    await h.say("incident note INC-1 nothing rolled back yet, deploy blocked")
    await h.settle()

    found = _card(await h.say("incident search rollback"))
    assert "INC-2" in card_text(found) and "INC-1" in card_text(found)  # "Rolled back"
    found = _card(await h.say("incident search deploy"))
    assert "INC-1" in card_text(found) and "INC-2" not in card_text(found)
    found = _card(await h.say("incident search depl"))                  # a prefix
    assert "INC-1" in card_text(found)

    # all the words before any of them: INC-2 has "release" and "rollback", INC-1 only the latter
    found = _card(await h.say("incident search release rollback"))
    text = card_text(found)
    assert text.index("INC-2") < text.index("Matching some of the words") < text.index("INC-1")
    shows = [a["data"]["incident"] for a in _walk(found["body"]) if a.get("type") == "Action.Execute" and a.get("verb") == "show"]
    assert shows == ["INC-2", "INC-1"]

    reply = await h.say("incident search zzzqqq")
    assert "No incident" in card_text(_card(reply))


async def test_error_replies_name_the_usage_and_guess_typos(harness):
    h = harness
    reply = await h.say("incident delcare checkout is down")
    assert "Did you mean `declare`?" in reply["text"]
    reply = await h.say("incident ack")
    assert "Usage: `incident ack ‹INC-n›`" in reply["text"]


def test_help_card_keeps_every_command_whole():
    card = help_card(help_sections(), ["service-down", "minor"])
    usages = [n["text"] for n in _walk(card["body"]) if n.get("fontType") == "Monospace"]
    assert len(usages) >= 20 and not any(n.get("type") == "FactSet" for n in _walk(card["body"]))
    for usage in usages:
        # no break opportunity inside a word: only spaces separate words
        assert "-" not in usage and all(c + "\u2060" in usage for c in "|/" if c in usage)
    assert any("‹INC\u2011n›" in u for u in usages) and any("history" in u for u in usages)

"""The pure rules behind who may do what: acknowledging never grants command to a non-responder,
the postmortem requirement is sticky, lowering a level needs a reason once the incident is over
or its postmortem started, waivers and the default channel belong to incident commanders and
admins."""
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from handlers.commands.parsing import ParseError, parse_command
from incidents import permissions as p
from incidents import postmortem as pm
from incidents.catalog import load_catalog
from incidents.levels import lowering_needs_reason
from incidents.model import Actor, Incident
from tests.conftest import CATALOG

CAT = load_catalog(CATALOG)
LEVELS = CAT.levels
T0 = datetime(2025, 3, 14, 9, 0, tzinfo=timezone.utc)
GUEST = Actor("Guest User", "teams", email="guest@elsewhere.example")
PRIYA = Actor("Priya Raman", "teams", email="priya.raman@shopfront.example")   # checkout
TOM = Actor("Tom Brennan", "teams", email="tom.brennan@shopfront.example")     # SRE, not IC
SARAH = Actor("Sarah Kim", "teams", email="sarah.kim@shopfront.example")       # the IC
STRANGER = Actor("New Hire", "teams")                                          # no e-mail yet


def incident(**changes):
    base = Incident(id=7, source="teams", external_id=None, title="checkout is down",
                    service="checkout-api", team="checkout", level="service-down", status="open",
                    triggered_at=T0, fingerprint="f", version=1, created_at=T0, updated_at=T0)
    return replace(base, **changes)


def no_commanders(catalog):
    teams = {k: replace(t, incident_commanders=()) for k, t in catalog.teams.items()}
    return replace(catalog, teams=teams)


# -- acknowledging and command -------------------------------------------------------------------

def test_an_ack_makes_only_a_responder_commander():
    assert p.commander_after_ack(GUEST, incident(), CAT, ()) is None
    assert p.commander_after_ack(TOM, incident(), CAT, ()) is None
    assert p.commander_after_ack(PRIYA, incident(), CAT, ()) == PRIYA.email
    assert p.commander_after_ack(SARAH, incident(), CAT, ()) == SARAH.email
    assert p.commander_after_ack(GUEST, incident(), CAT, (GUEST.email,)) == GUEST.email  # admin
    # Somebody commands already: an ack changes nothing about that.
    assert p.commander_after_ack(PRIYA, incident(commander=SARAH.email), CAT, ()) == SARAH.email


def test_responder_acts_are_refused_to_non_responders_with_who_may_and_why():
    for action in p.RESPONDER_ACTIONS:
        assert not p.may_act(action, GUEST, incident(), CAT, ())
        assert p.may_act(action, PRIYA, incident(), CAT, ())
    text = p.refusal("level", GUEST, incident(), CAT)
    assert text.startswith("Sorry Guest User, only the Checkout team, INC-7's on-call and "
                           "commander, the incident commanders (Sarah Kim) and admins may "
                           "change the level of INC-7")
    assert "changes what the incident means" in text and "Anyone may acknowledge" in text
    assert "don't know who you are yet" in p.refusal("resolve", STRANGER, incident(), CAT)


# -- the sticky postmortem --------------------------------------------------------------------------

def test_the_postmortem_requirement_is_sticky():
    assert pm.required_after(False, "service-down", True, LEVELS)
    assert not pm.required_after(False, "minor", True, LEVELS)
    assert not pm.required_after(False, "service-down", False, LEVELS)  # a child folds into its root
    assert pm.required_after(True, "minor", True, LEVELS)               # lowered: still required
    assert pm.needed(incident(level="minor", postmortem_required=True), LEVELS)
    assert not pm.needed(incident(level="minor"), LEVELS)
    assert not pm.needed(incident(postmortem_required=True, parent_id=3), LEVELS)
    # Stored before the flag existed: the current level still counts.
    assert pm.needed(incident(level="high-latency"), LEVELS)


def test_a_waiver_says_who_when_and_why():
    assert pm.waiver_text(None) is None and pm.waiver_text({"waived_at": None}) is None
    waiver = {"waived_at": T0, "waived_by": SARAH.email, "waiver_reason": "a probe"}
    assert pm.waived(waiver)
    assert pm.waiver_text(waiver, CAT.display_name) == \
        "waived by Sarah Kim on 2025-03-14 09:00 UTC: a probe"


def test_waivers_are_for_incident_commanders_and_admins():
    assert p.is_commander_or_admin(SARAH, CAT, ())
    assert p.is_commander_or_admin(GUEST, CAT, (GUEST.email,))
    for actor in (PRIYA, TOM, GUEST, STRANGER):
        assert not p.is_commander_or_admin(actor, CAT, ())
    assert "only the incident commanders (Sarah Kim) and admins may waive INC-7's postmortem" \
        in p.waive_refusal(PRIYA, incident(), CAT, ())
    assert "don't know who you are yet" in p.waive_refusal(STRANGER, incident(), CAT, ())
    nobody = p.waive_refusal(PRIYA, incident(), no_commanders(CAT), ())
    assert "no incident commander or admin is configured" in nobody
    assert "incident_commanders:" in nobody and "FIREBELL_ADMINS" in nobody


# -- lowering ------------------------------------------------------------------------------------

def test_lower_means_later_in_the_levels_list():
    assert LEVELS.is_lower("service-down", "minor")
    assert LEVELS.is_lower("high-error-rate", "high-latency")
    assert not LEVELS.is_lower("minor", "service-down")
    assert not LEVELS.is_lower("minor", "minor")
    assert LEVELS.is_lower("a-retired-level", "service-down")  # unknown counts as most severe


@pytest.mark.parametrize("before,after,status,started,why", [
    ("service-down", "minor", "open", False, None),
    ("service-down", "minor", "open", True, "its postmortem has started"),
    ("service-down", "minor", "resolved", False, "it is resolved"),
    ("service-down", "minor", "resolved", True, "it is resolved"),
    ("minor", "service-down", "resolved", True, None),      # raising never needs one
])
def test_lowering_needs_a_reason_once_over_or_postmortem_started(before, after, status, started,
                                                                 why):
    assert lowering_needs_reason(LEVELS, before, after, status=status,
                                 postmortem_started=started) == why


# -- the default channel -------------------------------------------------------------------------

def test_who_may_route_a_team_and_the_default_channel():
    assert p.subscribe_refusal(PRIYA, "checkout", CAT, ()) is None
    assert p.subscribe_refusal(SARAH, "checkout", CAT, ()) is None
    assert "only members of Checkout" in p.subscribe_refusal(TOM, "checkout", CAT, ())
    assert p.subscribe_refusal(SARAH, "default", CAT, ()) is None
    assert p.subscribe_refusal(GUEST, "default", CAT, (GUEST.email,)) is None
    for actor in (PRIYA, TOM, GUEST):
        assert "only the incident commanders (Sarah Kim) and admins may route the default" \
            in p.subscribe_refusal(actor, "default", CAT, ())
    for team in ("default", "search"):
        text = p.subscribe_refusal(STRANGER, team, CAT, ())
        assert "I don't know who you are yet" in text and "try again in a minute" in text
    text = p.subscribe_refusal(SARAH, "default", no_commanders(CAT), ())
    assert "no incident commander or admin is configured" in text and "FIREBELL_ADMINS" in text
    assert p.subscribe_refusal(PRIYA, "checkout", no_commanders(CAT), ()) is None


# -- the typed forms ------------------------------------------------------------------------------

@pytest.mark.parametrize("text,args", [
    ("incident level INC-7 minor", {"incident": 7, "level": "minor"}),
    ("incident level INC-7 minor because false alarm, rolled back",
     {"incident": 7, "level": "minor", "reason": "false alarm, rolled back"}),
    ("level 7 high latency BECAUSE  p99   only", {"incident": 7, "level": "high latency",
                                                  "reason": "p99 only"}),
    ("incident waive INC-7 a synthetic probe", None),
])
def test_level_with_a_reason_and_waive(text, args):
    cmd = parse_command(text)
    if args is None:
        assert (cmd.verb, cmd.args) == ("waive", {"incident": 7, "reason": "a synthetic probe"})
    else:
        assert (cmd.verb, cmd.args) == ("level", args)


@pytest.mark.parametrize("text,says", [
    ("incident level 7 minor because", "Usage: `incident level INC-7 service-down`"),
    ("incident level 7 because it is", "Usage: `incident level INC-7 service-down`"),
    ("incident waive INC-7", "Usage: `incident waive INC-7 <reason>`"),
    ("incident waive INC-7 " + "x" * 501, "keep it under 500"),
])
def test_a_missing_reason_is_a_usage_error(text, says):
    with pytest.raises(ParseError, match=None) as err:
        parse_command(text)
    assert says in str(err.value)


def test_the_close_email_says_the_postmortem_was_waived():
    from mail.incident import IncidentMail, closed_mail
    waiver = "waived by Sarah Kim on 2025-03-14 09:00 UTC: a probe"
    mail = IncidentMail(incident=incident(status="closed"), team_name="Checkout",
                        teams_link=None, page_link=None, waiver=waiver)
    _, text, html = closed_mail(mail)
    assert "Postmortem\nwaived by Sarah Kim on 2025-03-14 09:00 UTC: a probe" in text
    assert "waived by Sarah Kim" in html

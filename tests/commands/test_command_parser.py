import pytest

from handlers.commands.parsing import ParseError, clean_text, parse_command


@pytest.mark.parametrize("text", [
    "/incident ack INC-7", "incident ack inc-7", "ack 7", "<at>Firebell</at> incident ack INC-7",
    "@Firebell incident acknowledge INC-7", "  Incident  ACK   #7 ",
])
def test_ack_in_every_accepted_spelling(text):
    cmd = parse_command(text)
    assert (cmd.verb, cmd.args) == ("ack", {"incident": 7})


def test_declare_with_options_and_quotes():
    cmd = parse_command('incident declare checkout is down service=checkout-api level="service-down"')
    assert cmd.verb == "declare"
    assert cmd.args == {"title": "checkout is down", "service": "checkout-api",
                        "level": "service-down"}
    assert parse_command("incident declare").args == {"title": ""}


def test_declare_private_is_the_last_word():
    cmd = parse_command("incident declare payroll export leaks service=checkout-api PRIVATE")
    assert cmd.args == {"title": "payroll export leaks", "service": "checkout-api",
                        "private": True}
    # Anywhere else "private" is part of the title.
    assert parse_command("incident declare private network down").args == \
        {"title": "private network down"}
    with pytest.raises(ParseError, match="A private incident needs a title"):
        parse_command("incident declare private")


def test_markup_in_text_is_kept_as_text_not_markup():
    cmd = parse_command("incident declare &lt;b&gt;db&lt;/b&gt; **down** [x](http://e.example)")
    assert cmd.args["title"] == "<b>db</b> **down** [x](http://e.example)"


def test_mentions_become_names_and_html_goes():
    assert clean_text("<p>incident assign 7 <at>Priya Raman</at></p>") == \
        "incident assign 7 @Priya Raman"
    cmd = parse_command("incident assign 7 <at>Priya Raman</at>")
    assert cmd.args == {"incident": 7, "person": "Priya Raman"}


@pytest.mark.parametrize("text,verb,args", [
    ("incident level INC-3 high latency", "level", {"incident": 3, "level": "high latency"}),
    ("incident note 3 db failover done", "note", {"incident": 3, "text": "db failover done"}),
    ("incident list", "list", {"scope": "open", "team": None}),
    ("incident list all data platform", "list", {"scope": "all", "team": "data platform"}),
    ("incident show inc-12", "show", {"incident": 12}),
    ("incident subscribe checkout", "subscribe", {"team": "checkout"}),
    ("incident link INC-2 INC-1", "link", {"incident": 2, "parent": 1}),
    ("incident unlink 2", "unlink", {"incident": 2}),
    ("incident", "help", {}), ("", "help", {}), ("help", "help", {}),
])
def test_other_commands(text, verb, args):
    cmd = parse_command(text)
    assert (cmd.verb, cmd.args) == (verb, args)


@pytest.mark.parametrize("text,says", [
    ("incident frobnicate", "I don't know the command `frobnicate`"),
    ("incident ack", "is not an incident id"),
    ("incident ack INC-x", "`INC-x` is not an incident id"),
    ("incident level 3", "Usage: `incident level INC-7 service-down`"),
    ("incident assign 3", "Usage: `incident assign INC-7 @person`"),
    ("incident note 3", "Usage: `incident note INC-7"),
    ("incident link 3", "Usage: `incident link INC-child INC-parent`"),
    ("incident subscribe", "Usage: `incident subscribe <team>`"),
    ("incident declare " + "x" * 300, "keep it under 250"),
    ("incident note 3 " + "y" * 2500, "keep notes under 2000"),
    ("x" * 9000, "too long"),
])
def test_mistakes_get_a_helpful_answer(text, says):
    with pytest.raises(ParseError) as err:
        parse_command(text)
    assert says in str(err.value)


def test_postmortem_new_link_in_every_accepted_spelling():
    for text in ("incident postmortem INC-3 new-link", "postmortem inc-3 NEW-LINK",
                 "<at>Firebell</at> /incident postmortem 3 new-link"):
        assert parse_command(text).args == {"incident": 3, "action": "new-link"}
    for text in ("incident postmortem", "incident postmortem INC-3", "incident postmortem new-link",
                 "incident postmortem INC-3 rotate", "incident postmortem x new-link",
                 "incident postmortem INC-3 new-link please"):
        with pytest.raises(ParseError, match=r"Usage: `incident postmortem INC-7 new-link`"):
            parse_command(text)


@pytest.mark.parametrize("text, guess", [
    ("incident delcare checkout is down", "`declare`"),
    ("incident ackn 3", "`ack`"),
    ("incident serach payment", "`search`"),
    ("incident hlep", "`help`"),
])
def test_typos_get_did_you_mean(text, guess):
    """Issue 14 part 6: difflib over the registry's verbs and aliases."""
    with pytest.raises(ParseError) as err:
        parse_command(text)
    assert f"Did you mean {guess}?" in str(err.value)


def test_no_guess_for_nonsense_and_every_parse_error_names_the_usage():
    with pytest.raises(ParseError) as err:
        parse_command("incident xyzzyplugh")
    assert "Did you mean" not in str(err.value) and "incident help" in str(err.value)
    for text, usage in (("incident ack", "incident ack ‹INC-n›"), ("incident show nope", "incident show ‹INC-n›"),
                        ("incident resolve INC-x", "incident resolve ‹INC-n›")):
        with pytest.raises(ParseError) as err:
            parse_command(text)
        assert f"Usage: `{usage}`" in str(err.value), str(err.value)


def test_commands_copied_from_the_help_card_parse_as_typed():
    assert parse_command("incident postmortem INC\u20113 new\u2011link").args == {"incident": 3,
                                                                             "action": "new-link"}
    assert parse_command("incident list open|\u2060all").verb == "list"

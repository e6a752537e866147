"""Reports that show something (issue 14 part 7): `incident report weekly` is this week so far,
`incident report weekly last` the last complete week (what the scheduled digest sends); a report
with no incidents says so in one line; the monthly report leaves out teams with nothing to report."""
from cards.digest import weekly_digest_card
from handlers.reports.compile import COMPANY, compile_report
from mail.reports import monthly_email, weekly_email
from tests.harness import card_text
from tests.reports.test_report_delivery import moving_clock, reporting, smtp  # noqa: F401
from tests.reports.test_report_figures import at, story

CARD = "application/vnd.microsoft.card.adaptive"


def _card(reply):
    (att,) = [a for a in reply.get("attachments") or [] if a["contentType"] == CARD]
    return att["content"]


async def test_weekly_on_demand_is_this_week_so_far_and_last_is_the_last_complete_week(reporting):  # noqa: F811
    h = reporting
    await story(h.ctx)
    h.ctx.clock = moving_clock(at("2025-04-02T10:00"))  # Wednesday of week 14

    now = card_text(_card(await h.say("incident report weekly checkout")))
    assert "this week so far (2025-W14)" in now
    assert "4 (+2 linked)" not in now          # that was week 13
    last = card_text(_card(await h.say("incident report weekly last checkout")))
    assert "week 13" in last and "4 (+2 linked)" in last
    # the scheduled digest's week is the last complete one
    compiled = await compile_report(h.ctx, "weekly", now=h.ctx.now())
    assert compiled.period.key == "2025-W13"

    reply = await h.say("incident report weekly lately")
    assert "Usage: `incident report weekly|monthly|history [last] [team] [period]`" in reply["text"]


async def test_a_report_with_no_incidents_says_so_in_one_line(reporting):  # noqa: F811
    h = reporting
    await story(h.ctx)
    h.ctx.clock = moving_clock(at("2025-04-02T10:00"))

    quiet = _card(await h.say("incident report weekly last search"))
    assert card_text(quiet).count("No incidents last week") == 1
    assert "— · —" not in card_text(quiet) and "MTTA" not in card_text(quiet)
    assert len(quiet["body"]) == 2  # the header and the one line
    quiet_now = card_text(_card(await h.say("incident report weekly search")))
    assert "No incidents this week so far" in quiet_now and "— · —" not in quiet_now

    month = _card(await h.say("incident report monthly search 2025-01"))
    assert "No incidents in January 2025" in card_text(month) and len(month["body"]) == 2

    compiled = await compile_report(h.ctx, "weekly", now=h.ctx.now())
    subject, text, html = weekly_email(compiled.view("search"))
    assert "No incidents last week." in text and "— · —" not in text and "MTTA" not in text
    card = weekly_digest_card(compiled.view("search"))
    assert card_text(card).count("No incidents") == 1


async def test_the_monthly_report_leaves_out_teams_with_nothing_to_report(reporting):  # noqa: F811
    h = reporting
    await story(h.ctx)
    h.ctx.clock = moving_clock(at("2025-04-02T10:00"))
    monthly = card_text(_card(await h.say("incident report monthly")))
    assert "March 2025" in monthly and "Checkout" in monthly and "Payments" in monthly
    assert "Search" not in monthly.split("By team this month")[1].split("other team")[0]
    assert "other team(s) had no incidents" in monthly

    compiled = await compile_report(h.ctx, "monthly", now=h.ctx.now())
    subject, text, html = monthly_email(compiled.view(COMPANY))
    by_team = text.split("By team")[1]
    assert "Checkout" in by_team and "Search" not in by_team


async def test_the_company_digest_leaves_out_teams_with_no_incidents(reporting):  # noqa: F811
    h = reporting
    await story(h.ctx)
    h.ctx.clock = moving_clock(at("2025-04-02T10:00"))
    digest = card_text(_card(await h.say("incident report weekly last")))
    assert "Checkout" in digest and "other team(s) had no incidents" in digest
    table = digest.split("Time to acknowledge and to resolve")[1].split("other team(s)")[0]
    assert "Search" not in table and "Data Platform" not in table

    compiled = await compile_report(h.ctx, "weekly", now=h.ctx.now())
    subject, text, html = weekly_email(compiled.view(COMPANY))
    speed = text.split("Time to acknowledge and resolve")[1].split("By service")[0]
    assert "Checkout" in speed and "Search" not in speed and "Data Platform" not in speed

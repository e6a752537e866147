"""Who is on call: the catalog's rotations, or PagerDuty's on-call API (a stand-in speaking it)
synced into the database and used by `incident oncall` and war rooms."""
import yaml

from app import Integrations
from handlers.effects.oncall_sync import sync_from_pagerduty
from handlers.reads.oncall import who_is_on_call
from incidents.catalog import war_room_members
from tests.conftest import CATALOG
from tests.fakes.pagerduty import FakePagerDuty
from tests.harness import Harness, card_text, make_settings


async def test_oncall_from_the_catalog(harness):
    h = harness
    reply = await h.say("incident oncall payments")
    card = card_text(reply["attachments"][0]["content"])
    assert "payment-gateway" in card and "Mei Tanaka" in card and "Sven Lindqvist" in card
    assert "DBA" in card and "catalog" in card
    assert "neither a team nor a service" in (await h.say("incident oncall nowhere"))["text"]


async def test_oncall_from_pagerduty_overrides_the_catalog(database_url, connector, tmp_path):
    raw = yaml.safe_load(CATALOG.read_text())
    raw["standby"]["pagerduty_schedules"] = {"dba": "PSDBA01"}
    catalog_file = tmp_path / "catalog.yaml"
    catalog_file.write_text(yaml.safe_dump(raw))
    pd = FakePagerDuty()
    await pd.start()
    pd.add_user("Firebell Bot", "firebell@shopfront.example")
    sven = pd.add_user("Sven Lindqvist", "sven.lindqvist@shopfront.example")
    mei = pd.add_user("Mei Tanaka", "mei.tanaka@shopfront.example")
    ana = pd.add_user("Ana Costa", "ana.costa@shopfront.example")
    pd.add_escalation_policy("Payments - Primary", id="PEPPY02")
    pd.add_escalation_policy("DBA", id="PEDBA")
    pd.add_schedule("DBA weekly", id="PSDBA01")
    pd.add_oncall(sven, "PEPPY02", 1)   # the swap: Sven is primary this week
    pd.add_oncall(mei, "PEPPY02", 2)
    pd.add_oncall(ana, "PEDBA", 1, schedule_id="PSDBA01")
    settings = make_settings(database_url, catalog_path=str(catalog_file),
                             integrations=Integrations(pagerduty_api_token="pd-api-token",
                                                       pagerduty_api_url=pd.base_url,
                                                       pagerduty_from_email="firebell@shopfront.example"))
    h = await Harness(settings, connector).start()
    try:
        assert await sync_from_pagerduty(h.ctx, h.firebell.clients) >= 3
        async with h.ctx.db.read() as conn:
            now = await who_is_on_call(h.ctx, conn)
        assert now.services["payment-gateway"] == ("sven.lindqvist@shopfront.example",
                                                   "mei.tanaka@shopfront.example")
        assert now.roles["dba"] == "ana.costa@shopfront.example"
        members = war_room_members(h.ctx.catalog, "payment-gateway", None, h.ctx.now(), now)
        assert members[:3] == ["sven.lindqvist@shopfront.example",
                               "mei.tanaka@shopfront.example", "ana.costa@shopfront.example"]
        card = card_text((await h.say("incident oncall payment-gateway"))["attachments"][0]
                         ["content"])
        assert "PagerDuty" in card and card.index("Sven Lindqvist") < card.index("Mei Tanaka")
    finally:
        await h.stop()
        await pd.stop()

"""PagerDuty's technical service dependencies, imported against a stand-in speaking its REST
API, merged with the catalog, and used by correlation."""
from app import Integrations
from handlers.effects.dependency_import import import_from_pagerduty
from handlers.sync.dependencies import refresh_graph
from tests.fakes.pagerduty import FakePagerDuty
from tests.harness import Harness, make_settings
from tests.incident.test_correlation import _event


async def test_imported_dependencies_drive_cascades(database_url, connector):
    pd = FakePagerDuty()
    await pd.start()
    ids = {name: pd.add_service(name) for name in ("shipping-api", "ledger-db", "label-printer")}
    pd.add_dependency(ids["ledger-db"], ids["shipping-api"])      # shipping-api depends on ledger
    pd.add_dependency(ids["shipping-api"], ids["label-printer"])  # a service the catalog lacks
    settings = make_settings(database_url, integrations=Integrations(
        pagerduty_api_token="pd-api-token", pagerduty_api_url=pd.base_url,
        pagerduty_from_email="firebell@shopfront.example"))
    h = await Harness(settings, connector).start()
    try:
        assert not h.ctx.catalog.graph.depends_on("shipping-api", "ledger-db")
        assert await import_from_pagerduty(h.ctx, h.firebell.clients) == 2
        graph = await refresh_graph(h.ctx)  # as the scheduler does after an import
        assert graph.depends_on("shipping-api", "ledger-db")
        assert graph.depends_on("label-printer", "ledger-db")       # transitive, merged
        assert graph.depends_on("shipping-api", "order-db")         # the catalog's edge stays
        await h.deliver(_event(1, "ledger-db", "ledger-db down", 0))
        await h.deliver(_event(2, "shipping-api", "shipping-api errors", 1))
        await h.settle()
        assert (await h.incident(2)).parent_id == 1
        # Another replica learns the edges from the database, not from PagerDuty.
        h.ctx.catalog = type(h.ctx.catalog)(**{**h.ctx.catalog.__dict__})
        assert (await refresh_graph(h.ctx)).depends_on("shipping-api", "ledger-db")
        # A dependency removed in PagerDuty disappears here at the next import.
        pd.dependencies[:] = [d for d in pd.dependencies
                              if d.supporting_service_id != ids["ledger-db"]]
        assert await import_from_pagerduty(h.ctx, h.firebell.clients) == 1
        await refresh_graph(h.ctx)
        assert not h.ctx.catalog.graph.depends_on("shipping-api", "ledger-db")
    finally:
        await h.stop()
        await pd.stop()

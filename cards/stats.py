"""`incident stats`: counts, MTTA, MTTR and impact for one team (or everyone) over a period."""
from __future__ import annotations

from typing import Any

from cards.common import block, card, facts, plain
from cards.digest import level_line
from incidents.metrics import Figures, duration, money
from incidents.periods import Period


def stats_card(name: str, period: Period, f: Figures) -> dict[str, Any]:
    body: list[dict] = [
        block("📐 **Incident stats**", size="Medium"),
        plain(name, limit=100, weight="Bolder"),
        block(period.label, isSubtle=True, spacing="None")]
    linked = f" (+{f.linked} linked)" if f.linked else ""
    body.append(facts([
        ("Incidents", f"{f.new}{linked}"), ("Resolved", str(f.resolved)),
        ("Closed", str(f.closed)), ("Open now" if period.kind == "range" else "Open at the end",
                                    str(f.still_open)),
        ("MTTA (median · p90)", f"{duration(f.mtta.median)} · {duration(f.mtta.p90)} "
                                f"({f.mtta.n} acknowledged)"),
        ("MTTR (median · p90)", f"{duration(f.mttr.median)} · {duration(f.mttr.p90)} "
                                f"({f.mttr.n} resolved)"),
        ("Estimated impact", f"≈ {money(f.impact_usd)}"
                             + (f" (incl. {f.impact_open} still open)" if f.impact_open else ""))]))
    if (line := level_line(f.by_level)) is not None:
        body.append(line)
    if f.by_service:
        top = list(f.by_service.items())[:10]
        body.append(plain("Services: " + " · ".join(f"{s} {n}" for s, n in top), limit=600))
    body.append(block("Only root incidents count; duplicates and cascade children are "
                      "folded into their root.", isSubtle=True, size="Small"))
    return card(body)

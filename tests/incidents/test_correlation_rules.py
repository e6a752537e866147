from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from incidents import correlation as rules
from incidents.dependencies import DependencyGraph
from incidents.model import Incident

T0 = datetime(2025, 3, 14, 14, 0, tzinfo=timezone.utc)
GRAPH = DependencyGraph({"web": ["checkout", "search"], "checkout": ["payments", "orders"],
                         "payments": ["ledger"], "search": ["catalog"]})
WINDOW = dict(before=timedelta(minutes=15), after=timedelta(minutes=5))


def inc(id_, service, minutes=0.0, **kw):
    return Incident(id=id_, source="pagerduty", external_id=f"P{id_}", title="t",
                    service=service, team=None, level="minor", status=kw.pop("status", "open"),
                    triggered_at=T0 + timedelta(minutes=minutes), fingerprint=f"f{id_}",
                    version=1, created_at=T0, updated_at=T0, **kw)


def test_graph_is_transitive_with_shortest_paths():
    assert GRAPH.upstream("web")["ledger"] == ("web", "checkout", "payments", "ledger")
    assert GRAPH.downstream("ledger")["web"] == ("web", "checkout", "payments", "ledger")
    assert GRAPH.depends_on("web", "catalog") and not GRAPH.depends_on("catalog", "web")


def test_cycles_are_harmless():
    cyclic = DependencyGraph({"a": ["b"], "b": ["c"], "c": ["a"]})
    assert set(cyclic.upstream("a")) == {"b", "c"}
    assert "a" not in cyclic.upstream("a")
    a, b = inc(1, "a"), inc(2, "b", 1)
    link = rules.cascade_link(b, [a], cyclic, **WINDOW)
    assert link.parent.id == 1  # deterministic inside the cycle: the earlier one
    assert rules.cascade_link(a, [b], cyclic, **WINDOW) is None  # b paged later: not a's root


def test_cascade_picks_the_most_upstream_candidate():
    web = inc(9, "web", 3)
    candidates = [inc(1, "checkout", 1), inc(2, "payments", 2), inc(3, "ledger", 2.5),
                  inc(4, "catalog", 0)]
    link = rules.cascade_link(web, candidates, GRAPH, **WINDOW)
    assert link.parent.id == 3 and link.kind == rules.CASCADE
    assert "web → checkout → payments → ledger" in link.reason


def test_cascade_window_before_and_after():
    child = inc(9, "checkout", 20)
    assert rules.cascade_link(child, [inc(1, "payments", 4)], GRAPH, **WINDOW) is None  # 16 min
    assert rules.cascade_link(child, [inc(1, "payments", 5)], GRAPH, **WINDOW).parent.id == 1
    assert rules.cascade_link(child, [inc(1, "payments", 24)], GRAPH, **WINDOW).parent.id == 1
    assert rules.cascade_link(child, [inc(1, "payments", 26)], GRAPH, **WINDOW) is None


def test_late_root_adopts_downstream_children_but_not_human_decisions():
    root = inc(5, "payments", 2)
    early = inc(1, "checkout", 0)
    unlinked = inc(2, "web", 1, no_auto_link=True)
    far = inc(3, "web", -30)
    found = rules.downstream_children(root, [early, unlinked, far], GRAPH, parents={}, **WINDOW)
    assert [(c.id, link.parent.id) for c, link in found] == [(1, 5)]
    assert "the cause paged later" in found[0][1].reason


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=8),
       st.lists(st.tuples(st.integers(0, 4), st.integers(-20, 20)), min_size=1, max_size=12))
def test_linking_never_makes_a_cycle(edges, arrivals):
    """Replays arrivals through the rules the way the correlate job does (root of the chosen
    parent, cycle check) and checks the parent graph stays a forest."""
    graph = DependencyGraph({f"s{a}": [f"s{b}"] for a, b in edges if a != b})
    parents: dict[int, int] = {}
    known: list[Incident] = []
    for n, (svc, minute) in enumerate(arrivals, start=1):
        new = inc(n, f"s{svc}", minute)
        link = rules.cascade_link(new, known, graph, **WINDOW)
        if link:
            root = link.parent.id
            while root in parents:
                root = parents[root]
            ancestors = []
            cur = root
            while cur in parents:
                cur = parents[cur]
                ancestors.append(cur)
            if not rules.would_cycle(new, inc(root, "x"), ancestors):
                parents[n] = root
        known.append(new)
    for start in parents:
        seen, cur = set(), start
        while cur in parents:
            assert cur not in seen
            seen.add(cur)
            cur = parents[cur]

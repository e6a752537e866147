"""Correlation rules: is a new incident a duplicate, a cascade child, a recurrence, or a root?

Pure decisions over incidents the caller has loaded; storage and timing live in
handlers/correlate.py. People decide last: an incident a human linked or unlinked is never
touched by these rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping, Sequence

from incidents.dependencies import DependencyGraph
from incidents.model import Incident

DUPLICATE, CASCADE = "duplicate", "cascade"


@dataclass(frozen=True)
class Link:
    parent: Incident
    kind: str           # duplicate | cascade
    reason: str         # which rule, which path, what gap: shown on both timelines


def gap_text(a: Incident, b: Incident) -> str:
    """"2 min 4 s after" / "1 min before": b's start relative to a's."""
    seconds = int((b.triggered_at - a.triggered_at).total_seconds())
    word = "after" if seconds >= 0 else "before"
    m, s = divmod(abs(seconds), 60)
    return (f"{m} min {s} s" if m else f"{s} s") + f" {word}"


def duplicate_link(incident: Incident, match: Incident | None) -> Link | None:
    if match is None or match.id == incident.id:
        return None
    return Link(match, DUPLICATE,
                f"same service and normalised title as {match.ref} (fingerprint "
                f"{incident.fingerprint[:8]}), opened {gap_text(match, incident)} it")


def cascade_link(incident: Incident, candidates: Sequence[Incident], graph: DependencyGraph, *,
                 before: timedelta, after: timedelta) -> Link | None:
    """The most upstream open incident on a service `incident`'s service depends on, opened at
    most `before` earlier or `after` later than it."""
    upstream = graph.upstream(incident.service)
    eligible = [c for c in candidates if c.id != incident.id and c.service in upstream
                and -before <= c.triggered_at - incident.triggered_at <= after
                and not _mutual_and_later(incident, c, graph)]
    if not eligible:
        return None
    root = most_upstream(eligible, graph, upstream)
    path = " → ".join(upstream[root.service])
    return Link(root, CASCADE,
                f"dependency path {path}; {root.ref} opened {gap_text(incident, root)} "
                f"{incident.ref}")


def _mutual_and_later(incident: Incident, candidate: Incident, graph: DependencyGraph) -> bool:
    """Inside a dependency cycle both sides look upstream of each other: the one that paged
    first is the root, so a later candidate on a mutual dependency is not."""
    mutual = graph.depends_on(candidate.service, incident.service)
    return mutual and (candidate.triggered_at, candidate.id) > (incident.triggered_at, incident.id)


def most_upstream(candidates: Sequence[Incident], graph: DependencyGraph,
                  paths: Mapping[str, tuple[str, ...]]) -> Incident:
    """A candidate no other candidate's service is upstream of; ties: the longest dependency
    path, then the earliest start (deterministic, also inside dependency cycles)."""
    def others_above(c: Incident) -> int:
        return sum(1 for o in candidates
                   if o.service != c.service and graph.depends_on(c.service, o.service)
                   and not graph.depends_on(o.service, c.service))
    return min(candidates, key=lambda c: (others_above(c), -len(paths.get(c.service, ())),
                                          c.triggered_at, c.id))


def downstream_children(evidence: Incident, candidates: Sequence[Incident],
                        graph: DependencyGraph, *, parents: Mapping[int, Incident],
                        before: timedelta, after: timedelta,
                        root: Incident | None = None) -> list[tuple[Incident, Link]]:
    """Late evidence: `evidence` arrived after its symptoms. Which open incidents downstream of
    it, opened within the cascade window around it, should now point at its story's root
    (`root`, default the evidence itself)? `parents`: the candidates' current parents, so a
    child moves only to a parent further upstream."""
    root = root or evidence
    below = graph.downstream(evidence.service)
    links = []
    for c in candidates:
        if c.id in (evidence.id, root.id) or c.service not in below or not _free_to_link(c):
            continue
        if not (-before <= evidence.triggered_at - c.triggered_at <= after):
            continue
        if c.parent_id is not None:
            current = parents.get(c.parent_id)
            if c.link_kind == DUPLICATE or current is None or current.id == root.id:
                continue  # a duplicate stays with its twin
            if not graph.depends_on(current.service, evidence.service):
                continue  # already under something at least as far upstream
        via = f", via {evidence.ref}" if root.id != evidence.id else ""
        late = " (the cause paged later)" if evidence.triggered_at > c.triggered_at else ""
        links.append((c, Link(root, CASCADE,
                              f"dependency path {' → '.join(below[c.service])}; "
                              f"{evidence.ref} opened {gap_text(c, evidence)} {c.ref}"
                              f"{late}{via}")))
    return links


def _free_to_link(incident: Incident) -> bool:
    return not incident.no_auto_link and incident.link_by != "human"


def may_auto_link(incident: Incident) -> bool:
    return _free_to_link(incident)


def would_cycle(child: Incident, parent: Incident, ancestors_of_parent: Sequence[int]) -> bool:
    """Linking child under parent makes a cycle if child is parent or one of its ancestors."""
    return child.id == parent.id or child.id in ancestors_of_parent

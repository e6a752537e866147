"""The service dependency graph built from `calls` edges ("A calls B": B's outage shows up in A).

Transitive, cycle-safe, and precomputed: correlation asks "what does this service depend on,
and through which path?" for every new incident, so the answer must be a dictionary look-up.
"""
from __future__ import annotations

from collections import deque
from typing import Iterable, Mapping


class DependencyGraph:
    def __init__(self, calls: Mapping[str, Iterable[str]]):
        self._calls = {svc: tuple(dict.fromkeys(callees)) for svc, callees in calls.items()}
        for callees in list(self._calls.values()):
            for c in callees:
                self._calls.setdefault(c, ())
        self._callers: dict[str, list[str]] = {svc: [] for svc in self._calls}
        for svc, callees in self._calls.items():
            for c in callees:
                self._callers[c].append(svc)
        self._upstream = {svc: _walk(svc, self._calls) for svc in self._calls}
        self._downstream = {svc: _walk(svc, self._callers) for svc in self._calls}

    @property
    def services(self) -> list[str]:
        return list(self._calls)

    @property
    def edges(self) -> list[tuple[str, str]]:
        return [(a, b) for a, callees in self._calls.items() for b in callees]

    def merged(self, extra_edges: Iterable[tuple[str, str]]) -> "DependencyGraph":
        """This graph plus edges learned elsewhere (e.g. PagerDuty's service dependencies)."""
        calls = {svc: list(callees) for svc, callees in self._calls.items()}
        for caller, callee in extra_edges:
            calls.setdefault(caller, []).append(callee)
            calls.setdefault(callee, [])
        return DependencyGraph(calls)

    def upstream(self, service: str | None) -> Mapping[str, tuple[str, ...]]:
        """Every service `service` depends on, directly or not, with the shortest call path
        from `service` to it (both ends included)."""
        return self._upstream.get(service or "", {})

    def downstream(self, service: str | None) -> Mapping[str, tuple[str, ...]]:
        """Every service that depends on `service`, with the path from it back to `service`."""
        found = self._downstream.get(service or "", {})
        return {svc: tuple(reversed(path)) for svc, path in found.items()}

    def depends_on(self, service: str | None, upstream: str | None) -> bool:
        return bool(upstream) and upstream in self.upstream(service)


def _walk(start: str, edges: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """Breadth-first, so each path is a shortest one; the visited set makes cycles harmless."""
    paths: dict[str, tuple[str, ...]] = {}
    queue = deque([(start, (start,))])
    while queue:
        node, path = queue.popleft()
        for nxt in edges.get(node, ()):
            if nxt == start or nxt in paths:
                continue
            paths[nxt] = path + (nxt,)
            queue.append((nxt, paths[nxt]))
    return paths

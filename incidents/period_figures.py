"""Report figures per period bucket and scope, folded from the rows the report queries return
(storage/reports.py): counts by level, service and team, resolved / closed / still open, MTTA
and MTTR percentiles, business impact. Pure: rows in, Figures out."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from incidents.metrics import Figures, Percentiles, impact_usd

ALL = "*"                 # the company-wide scope
NO_TEAM = "—"             # incidents of no team

Row = Mapping[str, Any]


class PeriodFigures:
    """Figures per bucket (0, 1, ... for consecutive periods; -1 for an earlier stretch) and
    scope (a team key, NO_TEAM, ALL). Every row counts for its team and for ALL."""

    def __init__(self, team_name: Callable[[str | None], str]):
        self.buckets: dict[int, dict[str, Figures]] = {}
        self._team_name = team_name

    def figures(self, bucket: int, scope: str) -> Figures:
        return self.buckets.setdefault(bucket, {}).setdefault(scope, Figures())

    def _each_scope(self, row: Row, bucket: int | None = None) -> Iterable[Figures]:
        at = row["bucket"] if bucket is None else bucket
        return (self.figures(at, scope) for scope in (row["team"] or NO_TEAM, ALL))

    def add_new(self, rows: Iterable[Row], *, by_service: bool) -> None:
        """New incidents: roots by level (and service, and team company-wide); the rest are
        linked children and only counted as such."""
        for row in rows:
            for scope, f in zip((row["team"] or NO_TEAM, ALL), self._each_scope(row)):
                if not row["root"]:
                    f.linked += row["n"]
                    continue
                f.new += row["n"]
                f.by_level[row["level"]] = f.by_level.get(row["level"], 0) + row["n"]
                if by_service:
                    svc = row["service"] or "unknown"
                    f.by_service[svc] = f.by_service.get(svc, 0) + row["n"]
                if scope == ALL:
                    team = self._team_name(row["team"])
                    f.by_team[team] = f.by_team.get(team, 0) + row["n"]

    def add_ended(self, rows: Iterable[Row], attr: str) -> None:
        """`attr`: resolved | closed, counted in the bucket they ended in."""
        for row in rows:
            for f in self._each_scope(row):
                setattr(f, attr, getattr(f, attr) + row["n"])

    def add_still_open(self, rows: Iterable[Row], bucket: int) -> None:
        for row in rows:
            for f in self._each_scope(row, bucket):
                f.still_open += row["n"]

    def add_percentiles(self, rows: Iterable[Row], *, offset: int = 0) -> None:
        """MTTA / MTTR percentiles per (bucket, scope) row; `offset` shifts the buckets (an
        earlier stretch queried as bucket 0 becomes -1)."""
        for row in rows:
            f = self.figures(row["bucket"] - offset, row["scope"] or NO_TEAM)
            f.mtta = Percentiles(row["na"], row["a_median"], row["a_p90"]) if row["na"] \
                else Percentiles()
            f.mttr = Percentiles(row["nr"], row["r_median"], row["r_p90"]) if row["nr"] \
                else Percentiles()

    def add_impact(self, rows: Iterable[Row], revenue: Mapping[str, float]) -> None:
        for row in rows:
            minutes = float(row["minutes"] or 0)
            usd = impact_usd({row["service"]: minutes}, revenue)
            for f in self._each_scope(row):
                f.impact_minutes += minutes
                f.impact_usd = round(f.impact_usd + usd, 2)
                f.impact_open += int(row["open"] or 0)

    def result(self) -> dict[int, dict[str, Figures]]:
        """The figures, their breakdowns largest first."""
        def ranked(counts: dict[str, int]) -> dict[str, int]:
            return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        for scopes in self.buckets.values():
            for f in scopes.values():
                f.by_level, f.by_service, f.by_team = (
                    ranked(f.by_level), ranked(f.by_service), ranked(f.by_team))
        return self.buckets

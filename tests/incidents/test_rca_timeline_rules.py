"""incidents.postmortem.refill_timeline: the RCA timeline follows the incident timeline, keeping what people
wrote (issue 14 part 3)."""
from datetime import datetime, timezone

from incidents.postmortem import FIELD_LIMIT, refill_timeline, timeline_line, timeline_text


def entry(n, hh_mm, text, actor=None):
    h, m = map(int, hh_mm.split(":"))
    return {"id": n, "at": datetime(2025, 3, 14, h, m, tzinfo=timezone.utc), "text": text, "actor": actor}


E = [entry(1, "09:02", "declared in Teams", "Priya Raman"), entry(2, "09:04", "acknowledged", "Priya Raman"),
     entry(3, "09:20", "level → minor"), entry(4, "09:33", "resolved", "Mei Tanaka")]


def test_new_entries_go_in_at_their_place_in_time_and_edits_stay():
    start = timeline_text(E[:1])
    human = start + "\n  (the pager was silent for 2 minutes)\n2025-03-14 09:10 UTC — we paused deploys (by hand)"
    text, through = refill_timeline(human, E, through=1)
    lines = text.splitlines()
    assert through == 4
    assert lines[0] == timeline_line(E[0]) and lines[1] == "  (the pager was silent for 2 minutes)"
    assert lines[2] == timeline_line(E[1])                 # 09:04, after the note under 09:02
    assert lines[3] == "2025-03-14 09:10 UTC — we paused deploys (by hand)"  # a person's line, in its place
    assert lines[4:] == [timeline_line(E[2]), timeline_line(E[3])]
    # a line deleted or rewritten by a person is not brought back
    edited = "\n".join(line for line in lines if "level" not in line)
    assert refill_timeline(edited, E, through=4) == (edited, 4)


def test_without_a_through_id_only_missing_lines_are_added():
    text = timeline_text(E[:2])
    refilled, through = refill_timeline(text, E, through=None)
    assert refilled == timeline_text(E) and through == 4
    assert refill_timeline(None, [], None) == ("", None)


def test_the_refill_stays_within_the_field_limit():
    long = "x" * (FIELD_LIMIT - 10)
    text, _ = refill_timeline(long, E, through=0)
    assert len(text) == FIELD_LIMIT and text.endswith("…")

"""Firebell under cProfile, for finding where the ingest path's time goes.

    FIREBELL_APP=bench/profiled_app.py FIREBELL_PROFILE=/tmp/ingest.prof \
        python bench/ingest.py --seconds 15
    python -c "import pstats; pstats.Stats('/tmp/ingest.prof').sort_stats('tottime').print_stats(40)"

Runs app.py's main() on uvloop exactly as `python app.py` does, with the profiler on from start
to SIGTERM; the statistics are written to $FIREBELL_PROFILE on the way out. Profiling slows every
Python call, so its figures are shares of the time, not rates.
"""
from __future__ import annotations

import asyncio
import cProfile
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import app  # noqa: E402


def main() -> None:
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        app.main()  # aiohttp turns SIGTERM into a graceful shutdown: main() returns
    finally:
        profiler.disable()
        profiler.dump_stats(os.environ.get("FIREBELL_PROFILE", "/tmp/firebell-ingest.prof"))


if __name__ == "__main__":
    main()

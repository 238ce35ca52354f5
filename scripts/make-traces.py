#!/usr/bin/env python3
"""Writes the example users traces for `hpa-tier simulate` (stdlib only).

examples/traces/week.csv   one week at 5-minute samples from Mon 2026-03-02,
                           with a campaign spike on Thursday evening
examples/traces/month.csv  five weeks from Mon 2026-02-02 (history for the
                           forecast), the last week 30% busier (a level shift)

The shape is an audience in China (times are +08:00): a night low near 150,
weekday evenings ramping steeply 18:30-19:30 to a peak near 2600, weekends
flatter with a higher midday. Noise is deterministic (fixed seed), so running
this again rewrites identical files.

Usage: scripts/make-traces.py [OUTPUT_DIR]   (default examples/traces)
"""

import datetime as dt
import math
import pathlib
import random
import sys

CST = dt.timezone(dt.timedelta(hours=8))
STEP = dt.timedelta(minutes=5)

# (local hour, users): linear in between.
WEEKDAY = [
    (0, 700), (1, 450), (2, 260), (3, 170), (4, 150), (5, 150), (6, 200),
    (7, 400), (8, 700), (9, 950), (10, 1100), (12, 1250), (13, 1150),
    (14, 1100), (17, 1150), (18, 1250), (18.5, 1350), (19.5, 2450),
    (20, 2600), (21.5, 2550), (22, 2200), (23, 1400), (24, 700),
]
WEEKEND = [
    (0, 900), (1, 650), (2, 400), (3, 230), (4, 170), (5, 150), (6, 180),
    (7, 300), (8, 600), (9, 1100), (10, 1500), (11, 1800), (12, 1900),
    (14, 1850), (16, 1800), (17, 1700), (18, 1750), (19, 2000), (20, 2200),
    (21, 2150), (22, 1900), (23, 1400), (24, 900),
]


def base(t):
    """Users of the daily pattern at local time t."""
    curve = WEEKEND if t.weekday() >= 5 else WEEKDAY
    hour = t.hour + t.minute / 60
    for (h0, u0), (h1, u1) in zip(curve, curve[1:]):
        if h0 <= hour <= h1:
            return u0 + (u1 - u0) * (hour - h0) / (h1 - h0)
    return curve[-1][1]


def campaign(t, start, extra):
    """A spike: up in 45 minutes from `start`, down over the next 1.5 hours."""
    minutes = (t - start).total_seconds() / 60
    if 0 <= minutes <= 45:
        return extra * math.sin(math.pi / 2 * minutes / 45)
    if 45 < minutes <= 135:
        return extra * (1 + math.cos(math.pi * (minutes - 45) / 90)) / 2
    return 0.0


def trace(start, days, spikes, shift_from=None, shift=1.0, seed=20260302):
    rng = random.Random(seed)
    noise = 0.0
    rows = []
    t = start
    end = start + dt.timedelta(days=days)
    while t <= end:
        # AR(1) noise: neighbouring samples move together, as real users do.
        noise = 0.8 * noise + 0.2 * rng.gauss(0, 0.12)
        users = base(t) + sum(campaign(t, s, extra) for s, extra in spikes)
        if shift_from is not None and t >= shift_from:
            users *= shift
        rows.append((t, max(0, round(users * (1 + noise)))))
        t += STEP
    return rows


def write(path, rows):
    with open(path, "w", newline="\n") as f:
        f.write("time,users\n")
        for t, users in rows:
            f.write(f"{t.isoformat()},{users}\n")


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "examples/traces")
    out.mkdir(parents=True, exist_ok=True)
    week = dt.datetime(2026, 3, 2, tzinfo=CST)
    write(out / "week.csv", trace(week, 7, [(week + dt.timedelta(days=3, hours=19, minutes=45), 1900)]))
    month = dt.datetime(2026, 2, 2, tzinfo=CST)
    write(
        out / "month.csv",
        trace(
            month,
            35,
            [(month + dt.timedelta(days=12, hours=20), 1800)],
            shift_from=month + dt.timedelta(days=28),
            shift=1.3,
        ),
    )


if __name__ == "__main__":
    main()

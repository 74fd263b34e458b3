"""Business time: calendars, deadlines and elapsed time, worked by hand.

Every expected value below is worked out in the comment beside it from the calendar's
windows, its time zone's UTC offset on that date and its holidays — not printed by the
code. The Ibis clock (ASOF joins) is then checked against the NumPy one on random
instants.
"""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pyarrow as pa
import pytest

from sawubona.lenses.promises import clock as C
from sawubona.lenses.promises.calendar import (
    Calendar,
    CalendarError,
    add_business,
    business_seconds,
    parse_duration,
)

H = 3600.0
D = dt.datetime
UTC_OFFICE = Calendar.parse("mon-fri 09:00-17:00", name="utc-office")
LONDON = Calendar.parse("mon-fri 09:00-17:00; Europe/London", name="london")


def test_parse_spec_and_table_agree() -> None:
    a = Calendar.parse(
        "mon-fri 09:00-12:30,13:30-17:00; sat 10:00-12:00; Europe/Rome; holidays 2024-12-25",
        name="x",
    )
    b = Calendar.from_dict(
        "x",
        {
            "timezone": "Europe/Rome",
            "hours": {"mon-fri": ["09:00-12:30", "13:30-17:00"], "sat": "10:00-12:00"},
            "holidays": ["2024-12-25"],
        },
    )
    assert a == b
    assert a.hours[0] == ((540, 750), (810, 1020)) and a.hours[5] == ((600, 720),)
    assert a.hours[6] == ()
    assert a.weekly_seconds == (5 * 7 + 2) * H
    assert a.day_seconds == pytest.approx(a.weekly_seconds / 6)
    assert Calendar.parse("24/7").continuous


def test_overlapping_windows_are_merged() -> None:
    c = Calendar.parse("mon 09:00-12:00,11:00-13:00,15:00-16:00")
    assert c.hours[0] == ((540, 780), (900, 960))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mon-fri 9-17", "is not like 09:00-17:30"),
        ("mon-fri 17:00-09:00", "must open before it closes"),
        ("funday 09:00-17:00", "unknown day"),
        ("mon-fri 09:00-17:00; Mars/Olympus", "unknown time zone"),
        ("mon-fri 09:00-17:00; holidays 2024-13-45", "is not YYYY-MM-DD"),
    ],
)
def test_bad_calendars_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        Calendar.parse(spec)


def test_weekend() -> None:
    # Fri 2024-01-05 16:00 + 2 business hours: 1 h on Friday (16-17), the weekend is
    # closed, 1 h on Monday from 09:00 → Mon 2024-01-08 10:00.
    assert add_business(UTC_OFFICE, D(2024, 1, 5, 16), 2 * H) == D(2024, 1, 8, 10)
    assert business_seconds(UTC_OFFICE, D(2024, 1, 5, 16), D(2024, 1, 8, 10)) == 2 * H
    # from Saturday noon to Monday 09:30: only Monday 09:00-09:30 counts
    assert business_seconds(UTC_OFFICE, D(2024, 1, 6, 12), D(2024, 1, 8, 9, 30)) == 0.5 * H


def test_deadline_at_closing_time_is_not_moved_to_next_morning() -> None:
    # Mon 09:00 + 8 h of a 09-17 day ends at 17:00 the same day.
    assert add_business(UTC_OFFICE, D(2024, 1, 8, 9), 8 * H) == D(2024, 1, 8, 17)
    # made before opening: the clock starts at 09:00
    assert add_business(UTC_OFFICE, D(2024, 1, 8, 6), 1 * H) == D(2024, 1, 8, 10)


def test_several_windows_per_day() -> None:
    # 09:00-12:30 and 13:30-17:00. Mon 12:00 + 2 h: 0.5 h before lunch, then 1.5 h from
    # 13:30 → 15:00.
    two = Calendar.parse("mon-fri 09:00-12:30,13:30-17:00")
    assert add_business(two, D(2024, 1, 8, 12), 2 * H) == D(2024, 1, 8, 15)
    # lunch does not count: 12:00 → 14:00 is 0.5 h + 0.5 h
    assert business_seconds(two, D(2024, 1, 8, 12), D(2024, 1, 8, 14)) == 1 * H


def test_holidays_and_the_spring_dst_change() -> None:
    # London, Thu 2024-03-28 16:00 UTC = 16:00 GMT, + 4 business hours.
    # 1 h on Thursday (16-17 GMT). Fri 29 Mar (Good Friday) and Mon 1 Apr (Easter
    # Monday) are holidays, the weekend is closed, and the clocks went forward on Sun 31
    # Mar: Tue 2 Apr opens at 09:00 BST = 08:00 UTC; 3 h more → 11:00 UTC.
    easter = Calendar.parse(
        "mon-fri 09:00-17:00; Europe/London; holidays 2024-03-29,2024-04-01", name="easter"
    )
    assert add_business(easter, D(2024, 3, 28, 16), 4 * H) == D(2024, 4, 2, 11)
    # without the holidays: 1 h on Thursday, 3 h from Fri 29 Mar 09:00 GMT → 12:00 UTC
    assert add_business(LONDON, D(2024, 3, 28, 16), 4 * H) == D(2024, 3, 29, 12)


def test_the_autumn_dst_change() -> None:
    # London, Fri 2024-10-25 15:00 UTC = 16:00 BST, + 8 business hours: 1 h on Friday
    # (16-17 BST); clocks go back on Sun 27 Oct, so Monday opens 09:00 GMT = 09:00 UTC
    # and 7 h more → Mon 2024-10-28 16:00 UTC.
    assert add_business(LONDON, D(2024, 10, 25, 15), 8 * H) == D(2024, 10, 28, 16)
    # the same windows read in UTC: 2 h on Friday (15-17), 6 h on Monday → 15:00 UTC
    assert add_business(UTC_OFFICE, D(2024, 10, 25, 15), 8 * H) == D(2024, 10, 28, 15)


def test_a_window_in_the_spring_forward_gap_is_clamped() -> None:
    # London 2024-03-31: clocks jump from 01:00 GMT to 02:00 BST (01:00 UTC). A window
    # 01:30-03:00 local opens at a time that does not exist: it opens when the clocks
    # change (01:00 UTC) and closes at 03:00 BST = 02:00 UTC: one real hour.
    night = Calendar.parse("sun 01:30-03:00; Europe/London")
    iv = night.intervals(D(2024, 3, 31), D(2024, 3, 31, 12)).to_pylist()
    day = [r for r in iv if r["start"].date() == dt.date(2024, 3, 31)]
    assert day == [{"start": D(2024, 3, 31, 1), "end": D(2024, 3, 31, 2), "cum": 0.0}]


def test_a_pause_across_a_window_edge_moves_the_deadline() -> None:
    # Mon 2024-01-08 10:00 + 8 business hours is Tue 10:00 without a pause. Paused from
    # Mon 16:00 to Tue 09:30: 1 h (16-17) + 0.5 h (09:00-09:30) of business time stop,
    # so the deadline moves on by 1.5 h → Tue 11:30.
    pause = [(D(2024, 1, 8, 16), D(2024, 1, 9, 9, 30))]
    assert add_business(UTC_OFFICE, D(2024, 1, 8, 10), 8 * H) == D(2024, 1, 9, 10)
    assert add_business(UTC_OFFICE, D(2024, 1, 8, 10), 8 * H, pause) == D(2024, 1, 9, 11, 30)
    # elapsed business time from made to the new deadline, pause left out: exactly 8 h
    assert business_seconds(UTC_OFFICE, D(2024, 1, 8, 10), D(2024, 1, 9, 11, 30), pause) == 8 * H
    # a pause that ends after the deadline would have passed still moves it: paused
    # Mon 11:00 → Wed 09:00 (6 h Mon + 8 h Tue paused); 1 h before the pause, 7 h from
    # Wed 09:00 → Wed 16:00
    long = [(D(2024, 1, 8, 11), D(2024, 1, 10, 9))]
    assert add_business(UTC_OFFICE, D(2024, 1, 8, 10), 8 * H, long) == D(2024, 1, 10, 16)


def test_durations() -> None:
    assert parse_duration("8h", UTC_OFFICE) == 8 * H
    assert parse_duration("30m", UTC_OFFICE) == 1800
    assert parse_duration("1 business day", UTC_OFFICE) == 8 * H  # a 09-17 working day
    assert parse_duration("1d", Calendar()) == 24 * H  # 24/7: a day is 24 h
    assert parse_duration("1w", UTC_OFFICE) == 40 * H
    assert parse_duration(2, UTC_OFFICE) == 2 * H  # a bare number is hours
    with pytest.raises(CalendarError, match="is not like 8h"):
        parse_duration("soon", UTC_OFFICE)


def _random_instants(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.datetime64("2024-01-01T00:00:00", "us")
    offsets = (rng.uniform(0, 365 * 86400, n) * 1e6).astype(np.int64)
    return base + offsets.astype("timedelta64[us]")


def test_ibis_clock_equals_numpy_clock() -> None:
    """The ASOF-join clock used over millions of rows gives the NumPy clock's values,
    for two calendars and the 24/7 one (null), both directions."""
    cals = {"london": LONDON, "two": Calendar.parse("mon-sat 08:00-12:00,13:00-18:00")}
    lo, hi = D(2023, 12, 1), D(2025, 3, 1)
    ts = _random_instants(3000, 1)
    names = np.array(["london", "two", None] * 1000, dtype=object)
    con = ibis.duckdb.connect()
    ivt = C.interval_table(cals, lo, hi)
    t = ibis.memtable(pa.table({"i": np.arange(3000), "ts": pa.array(ts), "_cal": names}))
    got = con.to_pyarrow(C.with_clock(t, "ts", "b", ivt)).to_pandas().sort_values("i")
    for name in ("london", "two", None):
        m = (got["_cal"] == name).to_numpy() if name else got["_cal"].isna().to_numpy()
        clock = (cals[name] if name else Calendar()).clock(lo, hi)
        want = clock.at(got["ts"].to_numpy().astype("datetime64[us]")[m])
        np.testing.assert_allclose(got["b"].to_numpy()[m], want, rtol=0, atol=1e-6)
        # and back: the instant the clock shows b + 5 business hours
        target = want + 5 * H
        back_t = ibis.memtable(pa.table({"b": target, "_cal": [name] * len(target)}))
        back = con.to_pyarrow(C.with_instant(back_t, "b", "at", ivt)).to_pandas()
        back = back.sort_values("b")
        expected = np.sort(clock.instant(target))
        assert (back["at"].to_numpy().astype("datetime64[us]") == expected).all()

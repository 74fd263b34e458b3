"""Business time: calendars with several windows per day, holidays and a time zone.

A :class:`Calendar` says when the clock runs: weekly opening windows in local
wall-clock time (``mon-fri 09:00-12:30,13:30-17:00``), local holidays on which it
does not run, and the IANA time zone the windows are read in. The 24/7 calendar
(no windows) is plain elapsed time.

Business time is measured with a **business clock** ``B(t)``: the business
seconds between a fixed origin and instant ``t``. The business time between two
instants is ``B(t2) - B(t1)``; a deadline of ``H`` business seconds after ``t``
is the first instant ``d`` with ``B(d) = B(t) + H``. The clock is materialised
as a small table of the calendar's open intervals in UTC with the business
seconds before each (:meth:`Calendar.intervals`), so that the same arithmetic
runs in NumPy here (:class:`Clock`, used by tests and scalar helpers) and as
Ibis ``ASOF`` joins over millions of rows in :mod:`.ledger`.

Local windows become UTC intervals day by day, so a 09:00 opening is 08:00 UTC
in a London summer and 09:00 UTC in winter (DST). A window that starts or ends at
a local time that does not exist (inside a spring-forward gap) is clamped to the
moment the clocks change; an ambiguous time (autumn) is read as its first
occurrence.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from sawubona.errors import SawubonaError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS = "24/7"
UTC = dt.UTC
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")

Windows = tuple[tuple[tuple[int, int], ...], ...]


class CalendarError(SawubonaError):
    """A calendar that cannot be read (bad window, day, zone or holiday)."""


def _days(spec: str) -> list[int]:
    """``mon-fri`` → [0..4]; ``sat`` → [5]; ``mon,wed`` → [0, 2]; ``daily`` → all."""
    out: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        if part in ("daily", "every", "all", "mon-sun"):
            out.extend(range(7))
            continue
        lo, _, hi = part.partition("-")
        if lo[:3] not in DAYS or (hi and hi[:3] not in DAYS):
            raise CalendarError(f"unknown day {part!r}: use mon, tue, ... sun or a range mon-fri")
        a, b = DAYS.index(lo[:3]), DAYS.index((hi or lo)[:3])
        out.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return out


def _window(text: str) -> tuple[int, int]:
    m = _WINDOW.match(text.strip())
    if not m:
        raise CalendarError(f"window {text!r} is not like 09:00-17:30")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (0 <= start < end <= 24 * 60) or m1 > 59 or m2 > 59:
        raise CalendarError(
            f"window {text!r} must open before it closes within one day (00:00-24:00); "
            "split a night window in two: 22:00-24:00 and 00:00-06:00 the next day"
        )
    return start, end


def _merge(windows: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


@dataclass(frozen=True)
class Calendar:
    """When the business clock runs. No windows = the 24/7 calendar (elapsed time)."""

    name: str = ALWAYS
    timezone: str = "UTC"
    #: per weekday (0 = Monday) the open windows in minutes after local midnight
    hours: Windows = ()
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(
                f"calendar {self.name}: unknown time zone {self.timezone!r}; "
                "use an IANA name such as Europe/London"
            ) from None
        if self.hours and len(self.hours) != 7:
            raise CalendarError(f"calendar {self.name}: hours must list 7 days")
        if self.hours and not any(self.hours):
            raise CalendarError(f"calendar {self.name} has no open window in the week")

    @property
    def continuous(self) -> bool:
        """True for the 24/7 calendar: business time is elapsed time."""
        return not self.hours

    @property
    def weekly_seconds(self) -> float:
        if self.continuous:
            return 7 * 86400.0
        return 60.0 * sum(b - a for day in self.hours for a, b in day)

    @property
    def day_seconds(self) -> float:
        """Length of an average working day: what ``1d`` means in this calendar."""
        if self.continuous:
            return 86400.0
        open_days = sum(1 for day in self.hours if day)
        return self.weekly_seconds / open_days

    # -- reading ---------------------------------------------------------------

    @classmethod
    def parse(cls, spec: str, name: str | None = None) -> Calendar:
        """A calendar from one line: ``mon-fri 09:00-12:30,13:30-17:00; sat 10:00-13:00;
        Europe/London; holidays 2024-12-25,2024-12-26``. ``24/7`` or empty: elapsed time."""
        spec = spec.strip()
        if spec.lower() in ("", ALWAYS, "always", "24x7"):
            return cls(name or ALWAYS)
        hours: dict[str, list[str]] = {}
        tz = "UTC"
        holidays: list[str] = []
        for part in (p.strip() for p in spec.split(";") if p.strip()):
            head, _, rest = part.partition(" ")
            if head.lower() in ("holidays", "holiday", "closed"):
                holidays.extend(x for x in re.split(r"[,\s]+", rest) if x)
            elif rest and re.match(r"^\d", rest.strip()):
                hours.setdefault(head, []).extend(re.split(r"\s*,\s*", rest.strip()))
            elif not rest and ("/" in head or head.upper() == "UTC"):
                tz = head
            else:
                raise CalendarError(
                    f"cannot read {part!r} in calendar {spec!r}: give day windows "
                    "(mon-fri 09:00-17:00), a time zone (Europe/London) or holidays YYYY-MM-DD,..."
                )
        return cls.from_dict(name or spec, {"timezone": tz, "hours": hours, "holidays": holidays})

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> Calendar:
        """A calendar from a TOML table: ``timezone``, ``hours`` (day spec → windows),
        ``holidays`` (local dates)."""
        unknown = set(d) - {"timezone", "hours", "holidays"}
        if unknown:
            raise CalendarError(
                f"calendar {name}: unknown key {sorted(unknown)[0]!r}; "
                "use timezone, hours, holidays"
            )
        raw_hours = d.get("hours", {})
        if not isinstance(raw_hours, Mapping):
            raise CalendarError(
                f'calendar {name}: hours must be a table like {{"mon-fri" = [...]}}'
            )
        per_day: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for days, windows in raw_hours.items():
            items = [windows] if isinstance(windows, str) else list(windows)
            for w in items:
                for part in str(w).split(","):
                    win = _window(part)
                    for day in _days(days):
                        per_day[day].append(win)
        hours = tuple(_merge(x) for x in per_day) if raw_hours else ()
        holidays = set()
        for h in d.get("holidays", []):
            try:
                holidays.add(h if isinstance(h, dt.date) else dt.date.fromisoformat(str(h)))
            except ValueError:
                raise CalendarError(f"calendar {name}: holiday {h!r} is not YYYY-MM-DD") from None
        return cls(name, str(d.get("timezone", "UTC")), hours, frozenset(holidays))

    # -- the clock ---------------------------------------------------------------

    def intervals(self, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The open intervals (UTC, naive) covering local days ``start``..``end`` with
        ``cum`` = business seconds before each interval (the clock origin is the first)."""
        if self.continuous:
            raise CalendarError("the 24/7 calendar has no intervals: its clock is elapsed time")
        zone = ZoneInfo(self.timezone)
        day = start.replace(tzinfo=UTC).astimezone(zone).date() - dt.timedelta(days=1)
        last = end.replace(tzinfo=UTC).astimezone(zone).date() + dt.timedelta(days=1)
        starts: list[dt.datetime] = []
        ends: list[dt.datetime] = []
        while day <= last:
            if day not in self.holidays:
                for a, b in self.hours[day.weekday()]:
                    s, e = _utc(day, a, zone), _utc(day, b, zone)
                    if e > s:
                        starts.append(s)
                        ends.append(e)
            day += dt.timedelta(days=1)
        s_arr = np.array(starts, dtype="datetime64[us]")
        e_arr = np.array(ends, dtype="datetime64[us]")
        length = (e_arr - s_arr).astype(np.int64) / 1e6
        cum = np.concatenate([[0.0], np.cumsum(length)[:-1]]) if len(length) else length
        return pa.table(
            {
                "start": pa.array(s_arr, pa.timestamp("us")),
                "end": pa.array(e_arr, pa.timestamp("us")),
                "cum": pa.array(cum, pa.float64()),
            }
        )

    def clock(self, start: dt.datetime, end: dt.datetime) -> Clock:
        return Clock(self, start, end)


def _utc(day: dt.date, minutes: int, zone: ZoneInfo) -> dt.datetime:
    """Local wall-clock ``day`` + ``minutes`` as a naive UTC datetime (gaps clamped)."""
    local = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes)
    aware = local.replace(tzinfo=zone)
    utc = aware.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local:  # inside a spring-forward gap
        lo = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
        hi = utc
        while (hi - lo) > dt.timedelta(seconds=1):  # the change lies in (lo, hi]
            mid = lo + (hi - lo) / 2
            if mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset():
                lo = mid
            else:
                hi = mid
        utc = hi.replace(microsecond=0)
    return utc.replace(tzinfo=None)


EPOCH = np.datetime64("1970-01-01T00:00:00", "us")


class Clock:
    """The business clock of a calendar over a span, in NumPy (see module docstring)."""

    def __init__(self, calendar: Calendar, start: dt.datetime, end: dt.datetime) -> None:
        self.calendar = calendar
        if calendar.continuous:
            self.starts = self.ends = np.array([], "datetime64[us]")
            self.cum = np.array([])
            return
        iv = calendar.intervals(start, end)
        self.starts = iv.column("start").to_numpy().astype("datetime64[us]")
        self.ends = iv.column("end").to_numpy().astype("datetime64[us]")
        self.cum = iv.column("cum").to_numpy()

    def at(self, t: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """B(t): business seconds at each instant (NaN for NaT)."""
        ts = np.asarray(t, dtype="datetime64[us]")
        if self.calendar.continuous:
            out = (ts - EPOCH).astype(np.int64) / 1e6
        else:
            i = np.searchsorted(self.starts, ts, side="right") - 1
            ok = i >= 0
            j = np.maximum(i, 0)
            length = (self.ends[j] - self.starts[j]).astype(np.int64) / 1e6
            inside = np.clip((ts - self.starts[j]).astype(np.int64) / 1e6, 0, length)
            out = np.where(ok, self.cum[j] + inside, 0.0)
        return np.where(np.isnat(ts), np.nan, out)

    def instant(self, b: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
        """The first instant at which the clock shows ``b`` business seconds."""
        target = np.asarray(b, dtype=float)
        if self.calendar.continuous:
            return EPOCH + np.round(target * 1e6).astype(np.int64).astype("timedelta64[us]")
        i = np.maximum(np.searchsorted(self.cum, target, side="left") - 1, 0)
        offset = np.round((target - self.cum[i]) * 1e6).astype(np.int64)
        return self.starts[i] + offset.astype("timedelta64[us]")

    def between(self, t1: npt.ArrayLike, t2: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Business seconds from ``t1`` to ``t2``."""
        return self.at(t2) - self.at(t1)

    def add(self, t: npt.ArrayLike, seconds: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
        """The deadline ``seconds`` business seconds after ``t``."""
        return self.instant(self.at(t) + np.asarray(seconds, dtype=float))


def business_seconds(
    calendar: Calendar,
    start: dt.datetime,
    end: dt.datetime,
    pauses: Sequence[tuple[dt.datetime, dt.datetime]] = (),
) -> float:
    """Business seconds from ``start`` to ``end`` (naive UTC), paused intervals left out."""
    clock = Clock(calendar, min(start, end), max(start, end))
    total = float(clock.between(np.datetime64(start), np.datetime64(end)))
    for a, b in pauses:
        a, b = max(a, start), min(b, end)
        if b > a:
            total -= float(clock.between(np.datetime64(a), np.datetime64(b)))
    return total


def add_business(
    calendar: Calendar,
    start: dt.datetime,
    seconds: float,
    pauses: Sequence[tuple[dt.datetime, dt.datetime]] = (),
) -> dt.datetime:
    """The deadline ``seconds`` business seconds after ``start`` (naive UTC); the clock
    stops during ``pauses``, so each paused business second moves the deadline on."""
    horizon = start + dt.timedelta(days=14 + 2 * seconds / max(calendar.weekly_seconds, 1) * 7)
    for _, b in pauses:
        horizon = max(horizon, b + dt.timedelta(days=14 + 14 * seconds / 86400))
    clock = Clock(calendar, start, horizon)
    remaining = float(seconds)
    at = np.datetime64(start, "us")
    for a, b in sorted(pauses):
        a64, b64 = np.datetime64(max(a, start), "us"), np.datetime64(b, "us")
        if b64 <= at:
            continue
        if a64 > at:
            active = float(clock.between(at, a64))
            if active >= remaining:
                break
            remaining -= active
        at = max(at, b64)
    due = np.asarray(clock.add(at, remaining), dtype="datetime64[us]")
    return dt.datetime.fromisoformat(str(due))


def parse_duration(text: str | float | int, calendar: Calendar) -> float:
    """Seconds in ``8h``, ``30m``, ``2d``, ``1 business day``, ``1.5 hours`` (a day is the
    calendar's average working day: 8 h for mon-fri 09:00-17:00, 24 h for 24/7)."""
    if isinstance(text, int | float):
        return float(text) * 3600.0
    m = re.match(
        r"^\s*(\d+(?:\.\d+)?)\s*(business\s+|working\s+)?"
        r"(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?|w|weeks?)\s*$",
        text.lower(),
    )
    if not m:
        raise CalendarError(f"duration {text!r} is not like 8h, 30m, 2d or '1 business day'")
    value, unit = float(m.group(1)), m.group(3)
    if unit.startswith("s"):
        return value
    if unit.startswith("m"):
        return value * 60
    if unit.startswith("h"):
        return value * 3600
    if unit.startswith("d"):
        return value * calendar.day_seconds
    return value * calendar.weekly_seconds

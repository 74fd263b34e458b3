"""A per-event telecom usage export (the "Megaline" format) → canonical tables.

Files read (CSV, Parquet or JSON Lines; names matched case-insensitively):
``*users*`` (``user_id, first_name, last_name, age, city, reg_date, plan,
churn_date``), ``*calls*`` (``id, user_id, call_date, duration`` in minutes),
``*messages*`` (``id, user_id, message_date``), ``*internet*`` (``id, user_id,
session_date, mb_used``) and ``*plans*`` (``messages_included,
mb_per_month_included, minutes_included, usd_monthly_pay, usd_per_gb,
usd_per_message, usd_per_minute, plan_name``). Dates such as ``12/27/18`` are
read in the format that reads most values of the column, a two-digit year as
20xx (``12/27/18`` is 27 Dec 2018, never the year 18).

Derivations:

* **customers** — one per user: ``customer_id`` = ``user_id``, ``name`` =
  first and last name, ``segment`` = ``city`` (the metropolitan area),
  ``joined_at`` = ``reg_date``. (``age`` has no canonical column.)
* **plans** — one per row of the plans file: ``plan_id`` = ``name`` =
  ``plan_name``, kind ``plan``, ``monthly_fee`` = ``usd_monthly_pay`` in
  ``USD``, ``open_to_new`` = true;
  ``allowances`` = ``{"minutes": minutes_included, "messages":
  messages_included, "data_mb": mb_per_month_included}``;
  ``overage`` = the price of one unit of the same metrics:
  ``{"minutes": usd_per_minute, "messages": usd_per_message, "data_mb":
  usd_per_gb / 1024}``;
  ``rounding`` = ``{"minutes": "per_event_ceil:1", "data_mb":
  "monthly_ceil:1024"}``. Megaline bills every call rounded up to the whole
  minute (a 1-second call is 1 minute) and the month's data rounded up to the
  whole GB (1,025 MB is billed as 2 GB); texts are counted as they are. Read
  the values as ``<rule>:<step>``: ``per_event_ceil:1`` = each event rounded
  up to a multiple of 1 unit — **already applied at ingest**: the ``minutes``
  in ``usage`` are sums of rounded-up calls, so applying it again to the
  monthly total changes nothing; ``monthly_ceil:1024`` = the month's total
  rounded up to a multiple of 1,024 MB before the allowance is subtracted and
  the overage priced (per MB, i.e. ``usd_per_gb`` per whole GB).
* **subscriptions** — one per user: ``plan_id`` = the user's ``plan``,
  ``started_at`` = ``reg_date``, ``ended_at`` = ``churn_date`` (empty = still a
  customer), ``monthly_fee_paid`` = the plan's ``usd_monthly_pay`` (the data
  holds no per-user price).
* **usage** — one row per user × calendar month × metric, for every month in
  which the user has at least one call, text or data session:
  ``period_start`` = the first day of the month, ``plan_id`` = the user's plan;
  ``minutes`` = Σ ceil(duration) over the month's calls (a 0.2- and a 1.1-minute
  call give 1 + 2 = 3), ``messages`` = the number of texts, ``data_mb`` = Σ
  ``mb_used`` (unrounded, 2 decimals). A metric with no events in an active
  month is 0: the data holds every call, text and session, so no event means no
  use (a month with no event at all has no rows). Source line = the first event
  of that metric in the month (for a 0, the user's first event of the month in
  any file). Events after a user's ``churn_date`` are kept as recorded.

Quarantined by the adapter: an event line with no ``user_id``, no date or a
date that is not a date, or no (or a negative, or non-numeric) duration /
``mb_used`` — e.g. the Megaline calls file's last line ``,,,116.83`` — is
counted under ``usage`` with the reason, one quarantine row per line; it adds
nothing to any month.

Counts on Megaline: customers 500; plans 2; subscriptions 500 (339 on
``surf``, 161 on ``ultimate``; 333 surf and 157 ultimate users have at least one
event — 10 users have none); usage 6,880 read = 2,293 active user-months × 3
metrics (6,879 loaded) + the junk calls line (quarantined).
"""

from __future__ import annotations

from pathlib import Path

from sawubona.errors import InputError
from sawubona.ingest.adapters import date_exprs, derive, find_file, number_of, stage, t, text_of
from sawubona.ingest.parse import (
    lit,
    q,
)
from sawubona.ingest.pipeline import Source
from sawubona.ingest.readers import StagedFile, Staging

#: file role → (name pattern, columns it must have)
FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "users": (
        "*users*",
        ("user_id", "first_name", "last_name", "city", "reg_date", "plan", "churn_date"),
    ),
    "plans": (
        "*plans*",
        (
            "plan_name",
            "usd_monthly_pay",
            "minutes_included",
            "messages_included",
            "mb_per_month_included",
            "usd_per_minute",
            "usd_per_message",
            "usd_per_gb",
        ),
    ),
    "calls": ("*calls*", ("user_id", "call_date", "duration")),
    "messages": ("*messages*", ("user_id", "message_date")),
    "internet": ("*internet*", ("user_id", "session_date", "mb_used")),
}

ROUNDING = '{"minutes": "per_event_ceil:1", "data_mb": "monthly_ceil:1024"}'


def _json_number(num: str) -> str:
    """A number as JSON: whole numbers without a decimal part (500, not 500.0)."""
    return (
        f"CASE WHEN ({num}) = floor({num}) AND abs({num}) < 1e15 "
        f"THEN to_json(CAST({num} AS BIGINT)) ELSE to_json({num}) END"
    )


def _find(folder: Path, adapter: str, pattern: str) -> Path:
    path = find_file(folder, adapter, f"{pattern}.csv", f"{pattern}.parquet", f"{pattern}.jsonl")
    assert path is not None  # required=True raises instead
    return path


class TelecomUsage:
    name = "telecom-usage"
    title = "Per-event telecom usage (users, calls, messages, internet, plans; e.g. Megaline)"

    def _stage(self, folder: Path, staging: Staging) -> dict[str, StagedFile]:
        out = {}
        for role, (pattern, needed) in FILES.items():
            f = stage(staging, _find(folder, self.name, pattern))
            missing = [c for c in needed if c not in staging.columns(f.name)]
            if missing:
                raise InputError(
                    f"the {self.name} adapter needs the {role} file to have the columns "
                    f"{', '.join(needed)}; missing: {', '.join(missing)}",
                    file=str(f.path),
                )
            out[role] = f
        return out

    def _events(
        self, staging: Staging, f: StagedFile, kind: str, date: str, amount: str | None
    ) -> str:
        """SELECT of one event file: user, month, quantity, and a reason for bad lines."""
        ts, _ = date_exprs(staging, f, date)
        raw_date = text_of(date)
        if amount is None:
            qty, problems = "1.0", ""
        else:
            num = number_of(staging, f, amount)
            qty = f"ceil({num})" if kind == "minutes" else num
            problems = (
                f"WHEN {text_of(amount)} IS NULL THEN 'it has no {amount}' "
                f"WHEN {num} IS NULL THEN '{amount} ''' || {text_of(amount)} || "
                f"''' is not a number' "
                f"WHEN {num} < 0 THEN '{amount} ' || {text_of(amount)} || ' is negative' "
            )
        return f"""
            SELECT {text_of("user_id")} AS user_id, date_trunc('month', {ts}) AS month,
                   {qty} AS qty, '{kind}' AS metric, _file, _line,
                   CASE WHEN {text_of("user_id")} IS NULL AND {raw_date} IS NULL
                            THEN 'the line has no user_id and no {date}: it is not a record of '
                                 || 'use (a junk line)'
                        WHEN {text_of("user_id")} IS NULL THEN 'the line has no user_id'
                        WHEN {raw_date} IS NULL THEN 'the line has no {date}'
                        WHEN {ts} IS NULL
                            THEN '{date} ''' || {raw_date} || ''' is not a date'
                        {problems}
                   END AS _why
            FROM {t(f)}"""

    def read(self, folder: Path, staging: Staging) -> list[Source]:
        f = self._stage(folder, staging)
        u, p = t(f["users"]), t(f["plans"])
        num = {c: number_of(staging, f["plans"], c) for c in FILES["plans"][1][1:]}
        js = {c: _json_number(v) for c, v in num.items()}
        _, reg = date_exprs(staging, f["users"], "reg_date")
        _, churn = date_exprs(staging, f["users"], "churn_date")
        events = staging.fresh("telecom_events")
        staging.con.execute(
            f"CREATE TEMP TABLE {q(events)} AS "
            + " UNION ALL ".join(
                [
                    self._events(staging, f["calls"], "minutes", "call_date", "duration"),
                    self._events(staging, f["messages"], "messages", "message_date", None),
                    self._events(staging, f["internet"], "data_mb", "session_date", "mb_used"),
                ]
            )
        )
        ev = q(events)
        user_plan = (
            f"(SELECT {text_of('user_id')} AS user_id, any_value({text_of('plan')}) AS plan "
            f"FROM {u} GROUP BY 1)"
        )
        usage_sql = f"""
            WITH good AS (SELECT * FROM {ev} WHERE _why IS NULL),
            months AS (SELECT user_id, month,
                              min(struct_pack(f := _file, l := _line)) AS first
                       FROM good GROUP BY user_id, month),
            metrics AS (SELECT * FROM (VALUES ('minutes'), ('messages'), ('data_mb')) m(metric)),
            sums AS (SELECT user_id, month, metric, sum(qty) AS qty,
                            min(_file) AS _file, min(_line) AS _line
                     FROM good GROUP BY user_id, month, metric)
            SELECT m.user_id AS customer_id, strftime(m.month, '%Y-%m-%d') AS period_start,
                   x.metric, round(coalesce(s.qty, 0), 2) AS quantity, up.plan AS plan_id,
                   coalesce(s._file, m.first.f) AS _file, coalesce(s._line, m.first.l) AS _line,
                   CAST(NULL AS VARCHAR) AS _reject
            FROM months m CROSS JOIN metrics x
            LEFT JOIN sums s ON s.user_id = m.user_id AND s.month = m.month
                            AND s.metric = x.metric
            LEFT JOIN {user_plan} up ON up.user_id = m.user_id
            UNION ALL
            SELECT user_id, strftime(month, '%Y-%m-%d'), metric, qty, NULL, _file, _line,
                   regexp_extract(_file, '[^/\\\\]*$') || ': ' || _why || '; the line is not '
                   || 'counted in any month'
            FROM {ev} WHERE _why IS NOT NULL"""
        allowances = (
            f"json_object('minutes', {js['minutes_included']}, "
            f"'messages', {js['messages_included']}, "
            f"'data_mb', {js['mb_per_month_included']})"
        )
        overage = (
            f"json_object('minutes', {js['usd_per_minute']}, "
            f"'messages', {js['usd_per_message']}, "
            f"'data_mb', {_json_number(num['usd_per_gb'] + ' / 1024')})"
        )
        plan_fee = (
            f"(SELECT {text_of('plan_name')} AS plan_name, "
            f"any_value({num['usd_monthly_pay']}) AS fee FROM {p} GROUP BY 1)"
        )
        return [
            derive(
                staging,
                "customers",
                f"""
                SELECT {text_of("user_id")} AS customer_id, {reg} AS joined_at,
                       {text_of("city")} AS segment,
                       NULLIF(concat_ws(' ', {text_of("first_name")}, {text_of("last_name")}), '')
                           AS name,
                       _file, _line
                FROM {u}""",
                [f["users"]],
            ),
            derive(
                staging,
                "plans",
                f"""
                SELECT {text_of("plan_name")} AS plan_id, {text_of("plan_name")} AS name,
                       'plan' AS kind, CAST(usd_monthly_pay AS VARCHAR) AS monthly_fee,
                       'USD' AS currency,
                       CAST({allowances} AS VARCHAR) AS allowances,
                       CAST({overage} AS VARCHAR) AS overage,
                       {lit(ROUNDING)} AS rounding, 'true' AS open_to_new, _file, _line,
                       CASE WHEN {num["minutes_included"]} IS NULL
                                 OR {num["messages_included"]} IS NULL
                                 OR {num["mb_per_month_included"]} IS NULL
                                 OR {num["usd_per_minute"]} IS NULL
                                 OR {num["usd_per_message"]} IS NULL
                                 OR {num["usd_per_gb"]} IS NULL
                            THEN 'an allowance or overage price is empty or not a number, so '
                                 || 'bills on this plan cannot be computed'
                       END AS _reject
                FROM {p}""",
                [f["plans"]],
            ),
            derive(
                staging,
                "subscriptions",
                f"""
                SELECT {text_of("user_id")} AS customer_id, {text_of("plan")} AS plan_id,
                       {reg} AS started_at, {churn} AS ended_at,
                       pf.fee AS monthly_fee_paid, u._file, u._line
                FROM {u} u LEFT JOIN {plan_fee} pf ON pf.plan_name = {text_of("plan")}""",
                [],
                [f["users"], f["plans"]],
            ),
            derive(
                staging,
                "usage",
                usage_sql,
                [f["calls"], f["messages"], f["internet"]],
                [f["users"]],
            ),
        ]


ADAPTER = TelecomUsage()

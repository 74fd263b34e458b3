"""A help-desk ticket event log (process-mining format) → canonical tables.

Made for the public "Helpdesk" log (Verenich 2016: ``Case ID``, ``Activity``,
``Resource``, ``Complete Timestamp`` such as ``2012/10/09 14:50:17.000``, then
case attributes ``Variant``, ``seriousness``, ``customer``, ``product``,
``service_level``, ``support_section``, ``workgroup``…), but generic: any one
file of events (CSV, Parquet or JSON Lines; the first named like
``*helpdesk*``, ``*event*``, ``*log*``, else the first ``.csv``) whose columns
are found by name, compared after normalisation to ``snake_case``, first match
wins:

* case: ``case_id``, ``case``, ``caseid``, ``case_concept_name``
  (XES ``case:concept:name``), ``ticket_id``, ``ticket``, ``ticket_number``,
  ``incident_id``, ``incident``, ``number``;
* activity: ``activity``, ``activity_name``, ``concept_name``, ``event``,
  ``event_name``, ``action``, ``status``;
* resource (optional): ``resource``, ``org_resource``, ``agent``,
  ``agent_id``, ``user``, ``user_id``, ``assignee``, ``assigned_to``;
* timestamp: ``complete_timestamp``, ``timestamp``, ``time_timestamp``,
  ``time``, ``end_timestamp``, ``end_time``, ``completed_at``,
  ``event_time``, ``start_timestamp``, ``start_time``, ``date``;
* team (optional): ``workgroup``, ``support_section``, ``team``, ``group``,
  ``assignment_group``, ``department``.

The date format of the timestamps is chosen from their values, as for any
file. Derivations:

* **touchpoints** — one per event: ``touchpoint_id`` = ``<case>#<n>``, where
  ``n`` numbers the case's events by time (ties in file order) from 1;
  ``journey_id`` = the case; ``at`` = the timestamp; channel ``helpdesk``;
  ``kind`` = the activity lower-cased with runs of other characters as ``_``
  (``Take in charge ticket`` → ``take_in_charge_ticket``); ``agent_id`` = the
  resource; ``team`` = the event's workgroup (else support section, else any
  team column above). **Direction**: an activity is the customer's own —
  direction ``inbound``, actor ``customer``, no agent — when its name says so
  (it contains ``customer``, ``client``, ``requester`` or ``caller``, e.g.
  "Customer reply"); every other activity is the help desk's — direction
  ``outbound``, actor ``person``. The Helpdesk log has no customer activity
  (``Insert ticket`` does not say who inserted it), so all its events are
  outbound. Events with no case are quarantined (they belong to no ticket).
* **journeys** — one per case, kind ``support``, ``desired_outcome`` =
  "ticket resolved"; ``started_at`` = the first event; ``outcome`` =
  ``achieved`` when the case's last event (by time, then file order) is a
  closing one — its activity contains ``close``, ``resolv`` or ``verif``
  (``Closed``, ``Resolve ticket``, ``RESOLVED``, ``VERIFIED``: a resolution
  checked, which in this log can follow ``Closed``) — with ``ended_at`` = that
  last event; otherwise ``open``, with no ``ended_at`` (an open case has not ended) and
  ``outcome_reason`` = "last activity: <activity>". No case is ``failed``: the
  log does not say that a ticket was given up. Source line = the case's first
  line.
* **customers** — the log's ``customer`` column is anonymised (``Value 1``,
  ``Value 22``…) and its 397 values cover 4,580 tickets (one value has 1,233
  events), so it most likely names an account or organisation, not a person.
  By default (``customers = "case"``) **each case is treated as its own
  customer**, ``customer_id`` = ``case:<case>``, because the log carries no
  customer identity; nothing is claimed about repeat contacts.
  ``TicketLog(customers="column")`` instead makes one customer per distinct
  ``customer`` value (``customer:<value>``, the case's value on its first
  event; a case without one keeps its own customer), which merges many people
  into one. Source line = the first line of the customer's first case.
* **promises** — none. ``service_level`` is an anonymised category (``Value
  1``..``Value 4``) with no stated response or resolution time, so no due time
  can be derived honestly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sawubona.errors import InputError
from sawubona.ingest.adapters import derive, find_file, stage, t
from sawubona.ingest.parse import choose_date_format, q, timestamp_expr
from sawubona.ingest.pipeline import Source
from sawubona.ingest.readers import StagedFile, Staging

#: column names looked for, in order of preference (after normalisation)
CASE: tuple[str, ...] = ("case_id", "case", "caseid", "case_concept_name", "ticket_id", "ticket")
CASE += ("ticket_number", "incident_id", "incident", "number")
ACTIVITY: tuple[str, ...] = (
    "activity",
    "activity_name",
    "concept_name",
    "event",
    "event_name",
    "action",
    "status",
)
RESOURCE: tuple[str, ...] = (
    "resource",
    "org_resource",
    "agent",
    "agent_id",
    "user",
    "user_id",
    "assignee",
)
RESOURCE += ("assigned_to",)
TIMESTAMP: tuple[str, ...] = (
    "complete_timestamp",
    "timestamp",
    "time_timestamp",
    "time",
    "end_timestamp",
)
TIMESTAMP += ("end_time", "completed_at", "event_time", "start_timestamp", "start_time", "date")
TEAM: tuple[str, ...] = (
    "workgroup",
    "support_section",
    "team",
    "group",
    "assignment_group",
    "department",
)
CUSTOMER: tuple[str, ...] = ("customer", "customer_id", "client", "client_id", "requester")

#: activity words that make it the customer's own (inbound)
CUSTOMER_ACTIVITY = r"customer|client|requester|caller"
#: activity words that make it a closing one (VERIFIED: a resolution was checked)
CLOSING = r"close|resolv|verif"

PATTERNS: tuple[str, ...] = (
    "*helpdesk*.csv",
    "*event*.csv",
    "*log*.csv",
    "*helpdesk*.parquet",
    "*log*.parquet",
)
PATTERNS += ("*.csv", "*.parquet", "*.jsonl")


def _find(f: StagedFile, names: tuple[str, ...]) -> str | None:
    for n in names:
        if n in f.columns:
            return n
    return None


class TicketLog:
    name = "ticket-log"
    title = "Help-desk ticket event log (case, activity, resource, timestamp)"

    def __init__(self, customers: Literal["case", "column"] = "case") -> None:
        if customers not in ("case", "column"):
            raise ValueError("customers must be 'case' or 'column'")
        self.customers = customers

    def read(self, folder: Path, staging: Staging) -> list[Source]:
        path = find_file(folder, self.name, *PATTERNS)
        f = stage(staging, path)  # type: ignore[arg-type]
        case, activity, ts = _find(f, CASE), _find(f, ACTIVITY), _find(f, TIMESTAMP)
        if not (case and activity and ts):
            need = [
                w for w, c in (("case", case), ("activity", activity), ("timestamp", ts)) if not c
            ]
            raise InputError(
                f"the ticket-log adapter cannot find the {', '.join(need)} column(s) "
                f"(it looks for names like {CASE[0]}, {ACTIVITY[0]}, {TIMESTAMP[0]}); "
                "the file has " + ", ".join(f.columns.values()),
                file=str(f.path),
            )
        resource, customer = _find(f, RESOURCE), _find(f, CUSTOMER)
        con = staging.con
        null = "CAST(NULL AS VARCHAR)"
        teams = [f"NULLIF(trim({q(c)}), '')" for c in TEAM if c in f.columns]
        team = f"coalesce({', '.join(teams)})" if teams else null
        if staging.columns(f.name)[ts].upper().startswith("VARCHAR"):
            when = timestamp_expr(f"NULLIF(trim({q(ts)}), '')", choose_date_format(con, f.name, ts))
        else:  # a typed column (Parquet): the pipeline reads it as it is
            when = f"TRY_CAST({q(ts)} AS TIMESTAMP)"
        ev = staging.fresh("events")
        con.execute(f"""
            CREATE TEMP TABLE {q(ev)} AS
            SELECT _file, _line,
                   NULLIF(trim({q(case)}), '') AS case_id,
                   NULLIF(trim({q(activity)}), '') AS activity,
                   {f"NULLIF(trim({q(resource)}), '')" if resource else null} AS resource,
                   {f"NULLIF(trim({q(customer)}), '')" if customer else null} AS customer,
                   {team} AS team, {q(ts)} AS at, {when} AS ts
            FROM {t(f)}""")
        numbered = staging.fresh("events_numbered")
        con.execute(f"""
            CREATE TEMP TABLE {q(numbered)} AS
            SELECT *,
                   row_number() OVER (PARTITION BY case_id ORDER BY ts NULLS LAST, _file, _line)
                       AS n,
                   regexp_matches(lower(coalesce(activity, '')), '{CUSTOMER_ACTIVITY}')
                       AS by_customer
            FROM {q(ev)}""")
        cases = staging.fresh("cases")
        by_column = self.customers == "column" and customer is not None
        owner = (
            "coalesce('customer:' || arg_min(customer, _line), 'case:' || case_id)"
            if by_column
            else "'case:' || case_id"
        )
        con.execute(f"""
            CREATE TEMP TABLE {q(cases)} AS
            SELECT case_id, {owner} AS customer_id,
                   min(ts) AS started_at, max(ts) AS last_at,
                   arg_max(activity, n) AS last_activity,
                   min(_file) AS _file, min(_line) AS _line
            FROM {q(numbered)} WHERE case_id IS NOT NULL GROUP BY case_id""")
        closing = f"regexp_matches(lower(coalesce(last_activity, '')), '{CLOSING}')"
        c, e = q(cases), q(numbered)
        return [
            derive(
                staging,
                "customers",
                f"""
                SELECT customer_id, min(_file) AS _file, min(_line) AS _line
                FROM {c} GROUP BY customer_id""",
                [],
                [f],
            ),
            derive(
                staging,
                "journeys",
                f"""
                SELECT case_id AS journey_id, customer_id, 'support' AS kind, started_at,
                       CASE WHEN {closing} THEN last_at END AS ended_at,
                       'ticket resolved' AS desired_outcome,
                       CASE WHEN {closing} THEN 'achieved' ELSE 'open' END AS outcome,
                       CASE WHEN NOT {closing}
                            THEN 'last activity: ' || coalesce(last_activity, '(none)')
                            END AS outcome_reason,
                       _file, _line
                FROM {c}""",
                [],
                [f],
            ),
            derive(
                staging,
                "touchpoints",
                f"""
                SELECT e.case_id || '#' || CAST(e.n AS VARCHAR) AS touchpoint_id,
                       c.customer_id, e.case_id AS journey_id, e.at, 'helpdesk' AS channel,
                       CASE WHEN e.by_customer THEN 'inbound' ELSE 'outbound' END AS direction,
                       CASE WHEN e.by_customer THEN 'customer' ELSE 'person' END AS actor,
                       CASE WHEN NOT e.by_customer THEN e.resource END AS agent_id,
                       CASE WHEN NOT e.by_customer THEN e.team END AS team,
                       NULLIF(trim(regexp_replace(lower(e.activity), '[^a-z0-9]+', '_', 'g'),
                                   '_'), '') AS kind,
                       e._file, e._line,
                       CASE WHEN e.case_id IS NULL
                            THEN 'the event has no case id, so it belongs to no ticket' END
                           AS _reject
                FROM {e} e LEFT JOIN {c} c USING (case_id)""",
                [f],
            ),
        ]


ADAPTER = TicketLog()

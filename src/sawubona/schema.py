"""The canonical data model, declared once (DESIGN.md §3).

Everything else is derived from the declarations in this module: ingest
validation, the store's DDL, ``docs/data-model.md`` (checked by a test), the
mapping template written by ``sawubona init`` and the demo generator's output
columns. Change the model here and nowhere else.

Logical types
-------------
``string``     text (empty text is treated as missing)
``timestamp``  an instant, stored in UTC without zone
``money``      a decimal amount, stored as a double rounded to 4 places,
               always next to a ``currency`` column (ISO 4217 code)
``float``      a real number
``int``        a whole number
``bool``       true/false (``yes/no``, ``1/0``, ``VRAI/FAUX``… are accepted)
``json``       a JSON object (e.g. plan allowances: metric → quantity)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

LOGICAL_TYPES = ("string", "timestamp", "money", "float", "int", "bool", "json")

#: Score ranges per survey instrument (inclusive). Custom instruments carry no range.
SURVEY_SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


@dataclass(frozen=True)
class Column:
    """One canonical column."""

    name: str
    type: str
    description: str
    required: bool = False
    #: values the column may take (compared after lower-casing and trimming)
    allowed: tuple[str, ...] | None = None
    #: inclusive numeric range
    minimum: float | None = None
    maximum: float | None = None
    #: ``table`` or ``table.column`` this column refers to
    references: str | None = None
    #: the column holds personal data (names, addresses, free text)
    personal: bool = False
    #: other spellings seen in exports, matched after normalisation
    aliases: tuple[str, ...] = ()
    #: a timestamp that may lie in the future (deadlines, planned ends)
    future_ok: bool = False
    #: text compared in lower case (categories such as kind, channel, metric)
    lower: bool = False

    def __post_init__(self) -> None:
        if self.type not in LOGICAL_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type}")


@dataclass(frozen=True)
class Rule:
    """A rule across columns of one row: ``left`` must not be before ``right``."""

    left: str
    right: str
    reason: str


@dataclass(frozen=True)
class Table:
    """One canonical table."""

    name: str
    row: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...] = ()
    aliases: tuple[str, ...] = field(default=())
    #: when a row came into being (the first non-empty of these columns); rows after a
    #: lens's ``as_of`` are invisible to it. Empty for reference data (plans, items).
    event_time: tuple[str, ...] = ()

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def references(self) -> list[tuple[str, str, str]]:
        """(column, referenced table, referenced column) triples."""
        out = []
        for c in self.columns:
            if c.references:
                tbl, _, col = c.references.partition(".")
                out.append((c.name, tbl, col or c.name))
        return out


def _c(name: str, type: str, description: str, **kw: object) -> Column:
    return Column(name, type, description, **kw)  # type: ignore[arg-type]


OUTCOMES = ("achieved", "failed", "open")
DIRECTIONS = ("inbound", "outbound")
ACTORS = ("customer", "person", "bot", "system")
PLAN_KINDS = ("plan", "addon")
TRIGGERS = ("system", "agent", "audit")
INITIATORS = ("organisation", "customer")

TABLES: tuple[Table, ...] = (
    Table(
        "customers",
        "a customer",
        ("customer_id",),
        (
            _c(
                "customer_id",
                "string",
                "The customer's id in your systems.",
                required=True,
                aliases=("customerid", "customer", "client_id", "user_id", "customer_unique_id"),
            ),
            _c(
                "joined_at",
                "timestamp",
                "When they became a customer.",
                aliases=("signup_date", "reg_date", "created_at", "since"),
            ),
            _c("segment", "string", "A segment or tier you use."),
            _c("name", "string", "Their name (personal data).", personal=True),
            _c("email", "string", "Their e-mail address (personal data).", personal=True),
        ),
        event_time=("joined_at",),
    ),
    Table(
        "journeys",
        "an episode in which a customer pursues a desired outcome: an order, a support case, "
        "a visit, a plan change",
        ("journey_id",),
        (
            _c(
                "journey_id",
                "string",
                "Id of the order, case or visit.",
                required=True,
                aliases=("order_id", "case_id", "ticket_id", "invoice"),
            ),
            _c("customer_id", "string", "Who pursued it.", required=True, references="customers"),
            _c(
                "kind",
                "string",
                lower=True,
                description="order, support, visit, plan_change, ... (lower case).",
                required=True,
            ),
            _c("started_at", "timestamp", "When it started.", required=True),
            _c("ended_at", "timestamp", "When the outcome was reached (or the journey closed)."),
            _c("desired_outcome", "string", "What the customer came for, in words."),
            _c(
                "outcome",
                "string",
                lower=True,
                description="achieved, failed or open; empty when unknown.",
                allowed=OUTCOMES,
            ),
            _c("outcome_reason", "string", "Why it failed or what happened."),
            _c("value", "money", "Money value of the journey to the organisation.", minimum=0),
            _c("currency", "string", "ISO 4217 code of value."),
        ),
        rules=(Rule("ended_at", "started_at", "ended_at is before started_at"),),
        event_time=("started_at",),
    ),
    Table(
        "journey_items",
        "a thing the customer wanted in a journey",
        ("journey_id", "item_id"),
        (
            _c("journey_id", "string", "The journey.", required=True, references="journeys"),
            _c(
                "item_id",
                "string",
                "The product or service wanted (stable across journeys).",
                required=True,
                aliases=("product_id", "stockcode", "sku"),
            ),
            _c("quantity", "float", "How many.", minimum=0),
            _c("unit_price", "money", "Price of one unit.", minimum=0),
            _c("fulfilled", "bool", "false = wanted but not supplied (e.g. out of stock)."),
        ),
    ),
    Table(
        "touchpoints",
        "one contact between customer and organisation",
        ("touchpoint_id",),
        (
            _c(
                "touchpoint_id",
                "string",
                "Id of the message, call or event.",
                required=True,
                aliases=("message_id", "event_id", "tweet_id"),
            ),
            _c("customer_id", "string", "The customer.", required=True, references="customers"),
            _c("journey_id", "string", "The journey it belongs to, if any.", references="journeys"),
            _c(
                "at",
                "timestamp",
                "When it happened.",
                required=True,
                aliases=("timestamp", "sent_at", "created_at"),
            ),
            _c(
                "channel",
                "string",
                lower=True,
                description="email, phone, chat, social, store, app, letter, ...",
                required=True,
            ),
            _c(
                "direction",
                "string",
                lower=True,
                description="inbound (from the customer) or outbound.",
                required=True,
                allowed=DIRECTIONS,
            ),
            _c(
                "actor",
                "string",
                lower=True,
                description="Who spoke: customer, person, bot or system.",
                allowed=ACTORS,
            ),
            _c("agent_id", "string", "The agent, when a person spoke for the organisation."),
            _c("team", "string", "The agent's team."),
            _c(
                "kind",
                "string",
                lower=True,
                description="inquiry, reply, transfer, callback, apology, notification, "
                "marketing, survey_invite, ...",
            ),
            _c("text", "string", "The message text (personal data).", personal=True),
            _c("template_id", "string", "Template the message came from, if known."),
        ),
        event_time=("at",),
    ),
    Table(
        "promises",
        "something the organisation told the customer it would do by a time",
        ("promise_id",),
        (
            _c("promise_id", "string", "Id of the promise.", required=True),
            _c("customer_id", "string", "To whom.", required=True, references="customers"),
            _c("journey_id", "string", "In which journey.", references="journeys"),
            _c(
                "kind",
                "string",
                lower=True,
                description="delivery, callback, reply, refund, fix, visit, ...",
                required=True,
            ),
            _c("made_at", "timestamp", "When it was made.", required=True),
            _c("due_at", "timestamp", "When it falls due.", required=True, future_ok=True),
            _c("made_by", "string", "Agent or system that made it."),
            _c("team", "string", "Team accountable for it."),
            _c("channel", "string", lower=True, description="Channel it was made on."),
            _c("kept_at", "timestamp", "When it was fulfilled."),
            _c("cancelled_at", "timestamp", "When it was cancelled."),
            _c("cancel_reason", "string", "Why it was cancelled."),
        ),
        rules=(
            Rule("due_at", "made_at", "due_at is before made_at"),
            Rule("kept_at", "made_at", "kept_at is before made_at"),
        ),
        event_time=("made_at",),
    ),
    Table(
        "plans",
        "a tariff or add-on the organisation sells",
        ("plan_id",),
        (
            _c(
                "plan_id", "string", "Id of the plan.", required=True, aliases=("plan", "plan_name")
            ),
            _c("name", "string", "Its name as customers see it."),
            _c("kind", "string", lower=True, description="plan or addon.", allowed=PLAN_KINDS),
            _c(
                "monthly_fee",
                "money",
                "Fee per month for a new customer today.",
                required=True,
                minimum=0,
            ),
            _c("currency", "string", "ISO 4217 code of the fees."),
            _c(
                "allowances",
                "json",
                'Included quantity per metric, e.g. {"minutes": 500}; '
                "a metric absent is unlimited.",
            ),
            _c("overage", "json", "Price per unit beyond the allowance, per metric."),
            _c(
                "rounding",
                "json",
                'Billing rounding per metric, e.g. {"minutes": "per_event_ceil:1"}.',
            ),
            _c("open_to_new", "bool", "Can a new customer take it today?"),
            _c("valid_from", "timestamp", "First day on sale.", future_ok=True),
            _c("valid_to", "timestamp", "Last day on sale.", future_ok=True),
        ),
    ),
    Table(
        "subscriptions",
        "a customer on a plan or add-on",
        ("customer_id", "plan_id", "started_at"),
        (
            _c("customer_id", "string", "The customer.", required=True, references="customers"),
            _c("plan_id", "string", "The plan or add-on.", required=True, references="plans"),
            _c("started_at", "timestamp", "When it started.", required=True),
            _c("ended_at", "timestamp", "When it ended (empty = still on it).", future_ok=True),
            _c(
                "monthly_fee_paid",
                "money",
                "What this customer actually pays per month.",
                minimum=0,
            ),
        ),
        rules=(Rule("ended_at", "started_at", "ended_at is before started_at"),),
        event_time=("started_at",),
    ),
    Table(
        "usage",
        "metered use in a period",
        ("customer_id", "period_start", "metric"),
        (
            _c("customer_id", "string", "The customer.", required=True, references="customers"),
            _c("period_start", "timestamp", "Start of the billing period.", required=True),
            _c(
                "metric",
                "string",
                lower=True,
                description="minutes, messages, data_mb, ...",
                required=True,
            ),
            _c("quantity", "float", "How much was used in the period.", required=True, minimum=0),
            _c("plan_id", "string", "Plan the use was billed on.", references="plans"),
        ),
        event_time=("period_start",),
    ),
    Table(
        "surveys",
        "a survey invitation and its answer",
        ("survey_id",),
        (
            _c(
                "survey_id",
                "string",
                "Id of the invitation or response.",
                required=True,
                aliases=("response_id", "review_id"),
            ),
            _c("customer_id", "string", "Who was asked.", required=True, references="customers"),
            _c("journey_id", "string", "About which journey.", references="journeys"),
            _c(
                "instrument",
                "string",
                lower=True,
                description="nps (0-10), csat (1-5), ces (1-7) or a custom name.",
                required=True,
            ),
            _c("invited_at", "timestamp", "When the invitation went out."),
            _c("responded_at", "timestamp", "When they answered (empty = no answer)."),
            _c("score", "float", "The answer, on the instrument's scale."),
            _c("comment", "string", "What they wrote (personal data).", personal=True),
            _c("agent_id", "string", "Agent the survey is attributed to."),
            _c("team", "string", "Team the survey is attributed to."),
            _c(
                "trigger",
                "string",
                lower=True,
                description="system, agent or audit: who caused the invitation.",
                allowed=TRIGGERS,
            ),
        ),
        rules=(Rule("responded_at", "invited_at", "responded_at is before invited_at"),),
        event_time=("invited_at", "responded_at"),
    ),
    Table(
        "actions",
        "something the organisation did to or for the customer with money or an offer",
        ("action_id",),
        (
            _c("action_id", "string", "Id of the action.", required=True),
            _c("customer_id", "string", "The customer.", required=True, references="customers"),
            _c("at", "timestamp", "When.", required=True),
            _c(
                "kind",
                "string",
                lower=True,
                description="upsell, cross_sell, price_rise, fee, penalty, discount, refund, "
                "credit, compensation, downgrade_advice, proactive_help, gift, "
                "retention_offer, ...",
                required=True,
            ),
            _c("amount", "money", "Money involved (positive)."),
            _c("currency", "string", "ISO 4217 code of amount."),
            _c(
                "initiated_by",
                "string",
                lower=True,
                description="organisation or customer.",
                allowed=INITIATORS,
            ),
            _c("agent_id", "string", "Agent who did it."),
            _c("journey_id", "string", "Journey it belongs to.", references="journeys"),
        ),
        event_time=("at",),
    ),
)

TABLE_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}

#: Columns every ingested row carries besides its canonical ones.
LINEAGE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("_source", "string", "file and line (or batch id) the row came from"),
    ("_ingested_at", "timestamp", "when the row was loaded or last changed"),
)


def table(name: str) -> Table:
    """The declaration of canonical table ``name``."""
    try:
        return TABLE_BY_NAME[name]
    except KeyError:
        known = ", ".join(TABLE_BY_NAME)
        raise KeyError(f"{name} is not a canonical table (known: {known})") from None


def load_order() -> list[str]:
    """Canonical tables ordered so that every referenced table comes first."""
    done: list[str] = []

    def visit(t: Table) -> None:
        if t.name in done:
            return
        for _, ref, _ in t.references:
            if ref != t.name:
                visit(TABLE_BY_NAME[ref])
        done.append(t.name)

    for t in TABLES:
        visit(t)
    return done


def iter_columns() -> Iterator[tuple[Table, Column]]:
    for t in TABLES:
        for c in t.columns:
            yield t, c


def normalise_name(name: str) -> str:
    """Normalise a column or file name for matching: ``Customer ID`` → ``customer_id``."""
    import re

    s = name.strip().lstrip("\ufeff")
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower()
    return s


def data_model_markdown() -> str:
    """The text of ``docs/data-model.md``, generated from the declarations."""
    lines = [
        "# The canonical data model",
        "",
        "Generated from `src/sawubona/schema.py` (a test fails if this file and the",
        "declaration differ: run `python -m sawubona._docs`).",
        "",
        "Timestamps are UTC. Money is a decimal amount next to an ISO 4217 currency",
        "code. Any table may be absent; each lens says what it cannot do without it.",
        "Every ingested row also carries "
        + ", ".join(f"`{n}` ({d})" for n, _, d in LINEAGE_COLUMNS)
        + ".",
        "",
        "Types: " + ", ".join(f"`{t}`" for t in LOGICAL_TYPES) + ".",
        "Survey scales: "
        + ", ".join(f"`{k}` {lo}–{hi}" for k, (lo, hi) in SURVEY_SCALES.items())
        + "; a custom instrument carries no range check.",
        "",
    ]
    for t in TABLES:
        lines += [
            f"## `{t.name}`",
            "",
            f"One row is {t.row}. Key: " + ", ".join(f"`{k}`" for k in t.key) + ".",
            "",
        ]
        lines += ["| column | type | required | rules | description |", "|---|---|---|---|---|"]
        for c in t.columns:
            rules = []
            if c.allowed:
                rules.append("one of " + "/".join(c.allowed))
            if c.minimum is not None:
                rules.append(f"≥ {c.minimum:g}")
            if c.maximum is not None:
                rules.append(f"≤ {c.maximum:g}")
            if c.references:
                rules.append(f"refers to `{c.references}`")
            if c.personal:
                rules.append("personal data")
            if c.aliases:
                rules.append("also read from " + ", ".join(f"`{a}`" for a in c.aliases))
            lines.append(
                f"| `{c.name}` | {c.type} | {'**yes**' if c.required else ''} | "
                f"{'; '.join(rules)} | {c.description} |"
            )
        for r in t.rules:
            lines.append("")
            lines.append(f"Rule: `{r.left}` must not be before `{r.right}`.")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(data_model_markdown(), end="")

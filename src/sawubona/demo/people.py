"""Customers and agents of the demo worlds.

Customers get a clearly synthetic name from small first/last-name lists and an
``@example.com`` address, a join date, a segment, and a latent *satisfaction*
(standard normal) that nudges their survey scores up and their churn hazard
down only weakly — so what customers say predicts what they do only a little.

Agents (``A0001``...) belong to teams and have a planted behaviour:

``honest``          surveys as the process says, scores reflect the experience;
``begging``         asks for top scores in the reply before the survey; scores inflated;
``selective``       triggers surveys (``trigger = agent``) only after achieved outcomes;
``concession``      gives a discount or credit shortly before the survey; scores higher;
``honest_small_n``  honest, but handles few journeys (noisy averages, not a problem).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.common import DAY, HISTORY_START, I64, choice_p, format_ids, join, to_seconds

FIRST_NAMES = (
    "Amara",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Finn",
    "Grace",
    "Hamza",
    "Isla",
    "Jonah",
    "Kemi",
    "Leo",
    "Maya",
    "Nikhil",
    "Olive",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sipho",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Xena",
    "Yusuf",
    "Zara",
    "Aiden",
    "Bea",
    "Carlos",
    "Dina",
    "Emil",
    "Fatima",
    "Gus",
    "Hana",
    "Ivo",
    "Jade",
    "Kofi",
    "Lena",
    "Milo",
    "Nia",
    "Oscar",
    "Priya",
    "Rafe",
    "Sofia",
    "Theo",
    "Uma",
    "Viktor",
    "Wren",
    "Yara",
    "Zeke",
)
LAST_NAMES = (
    "Abbott",
    "Banda",
    "Castillo",
    "Dlamini",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ibrahim",
    "Jensen",
    "Khumalo",
    "Lopez",
    "Mensah",
    "Nowak",
    "Okafor",
    "Patel",
    "Quinlan",
    "Rossi",
    "Singh",
    "Turner",
    "Ueda",
    "Varga",
    "Walsh",
    "Xu",
    "Young",
    "Zulu",
    "Ahmed",
    "Brown",
    "Chen",
    "Dubois",
    "Eze",
    "Flynn",
    "Gupta",
    "Horvat",
    "Ivanova",
    "Jones",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nkosi",
)
AGENT_NAMES = (
    "Alex",
    "Bongani",
    "Cara",
    "Dan",
    "Esme",
    "Femi",
    "Gina",
    "Harry",
    "Ines",
    "Jack",
    "Kiran",
    "Lucy",
    "Marco",
    "Nomsa",
    "Owen",
    "Pippa",
    "Ravi",
    "Sara",
    "Tom",
    "Ursula",
    "Vik",
    "Will",
    "Yasmin",
    "Zoe",
    "Aaron",
    "Beth",
    "Callum",
    "Daisy",
    "Ella",
    "Fraser",
)
SEGMENTS = ("consumer", "business", "vip")
BEHAVIOURS = ("honest", "begging", "selective", "concession", "honest_small_n")
HONEST, BEGGING, SELECTIVE, CONCESSION, SMALL_N = range(5)


@dataclass
class Customers:
    """The customers of one block (``offset`` is the global index of the first)."""

    offset: int
    n: int
    ids: pa.Array
    joined: np.ndarray
    segment: np.ndarray
    first: pa.Array
    name: pa.Array
    email: pa.Array
    sat: np.ndarray

    @property
    def start(self) -> np.ndarray:
        """When the customer's activity in the history can begin."""
        return np.maximum(self.joined, HISTORY_START)


def customer_width(n_total: int) -> int:
    """Digits of customer ids: at least 7 (``C0000001``)."""
    return max(7, len(str(n_total)))


def make_customers(
    rng: np.random.Generator,
    offset: int,
    n: int,
    width: int,
    *,
    share_before: float,
    years_before: float,
    segment_p: Sequence[float],
) -> Customers:
    """``n`` customers; ``share_before`` of them joined up to ``years_before`` years
    before the history started, the rest during it (more of them later on)."""
    before = rng.random(n) < share_before
    span_before = years_before * 365 * DAY
    t_before = HISTORY_START - (rng.random(n) * span_before).astype(I64) - DAY
    # within the history: density rising slowly (more recent sign-ups)
    u = np.sqrt(rng.random(n) * 0.75 + 0.25) * 2 - 1  # in [0, 1], skewed late
    t_during = HISTORY_START + (u * 700 * DAY).astype(I64)
    joined = to_seconds(
        np.where(before, t_before, t_during) + rng.integers(8, 20, n) * 3_600_000_000
    )
    segment = choice_p(rng, n, segment_p)
    fi = rng.integers(0, len(FIRST_NAMES), n)
    li = rng.integers(0, len(LAST_NAMES), n)
    first = pa.array(FIRST_NAMES, pa.string()).take(pa.array(fi))
    last = pa.array(LAST_NAMES, pa.string()).take(pa.array(li))
    number = np.arange(offset + 1, offset + n + 1, dtype=I64)
    ids = format_ids("C", number, width)
    email = join(
        pc.utf8_lower(first),
        ".",
        pc.utf8_lower(last),
        ".",
        pc.cast(pa.array(number), pa.string()),
        "@example.com",
    )
    return Customers(
        offset=offset,
        n=n,
        ids=ids,
        joined=joined,
        segment=segment,
        first=first,
        name=join(first, " ", last),
        email=email,
        sat=rng.standard_normal(n),
    )


@dataclass
class Agents:
    """The agents of a world, with their team and planted behaviour."""

    ids: pa.Array
    first: pa.Array
    team: np.ndarray
    teams: tuple[str, ...]
    behaviour: np.ndarray
    weight: np.ndarray
    p_template: np.ndarray
    #: planted padders: they quote deadlines PAD_FACTOR times the usual (see promises.py)
    padding: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def n(self) -> int:
        return len(self.ids)

    def pick(self, rng: np.random.Generator, n: int, among: np.ndarray | None = None) -> np.ndarray:
        """``n`` agents drawn by workload (optionally only from the ``among`` mask)."""
        w = self.weight if among is None else np.where(among, self.weight, 0.0)
        return choice_p(rng, n, w)

    def team_names(self) -> pa.Array:
        return pa.array(self.teams, pa.string()).take(pa.array(self.team))

    def plant_padders(self, rng: np.random.Generator) -> None:
        """Mark 3% of the honest agents (at least three) as padders, drawn by workload
        from those with at least the median workload, so each makes enough promises to be
        seen; from their own stream, so nothing else in the world moves."""
        honest = np.flatnonzero(
            (self.behaviour == HONEST) & (self.weight >= np.median(self.weight))
        )
        k = min(len(honest), max(3, round(0.03 * self.n)))
        pad = np.zeros(self.n, bool)
        if k:
            p = self.weight[honest] / self.weight[honest].sum()
            pad[rng.choice(honest, size=k, replace=False, p=p)] = True
        self.padding = pad


def make_agents(
    rng: np.random.Generator,
    n_customers: int,
    teams: Sequence[str],
    n_agent_teams: int,
    customers_per_agent: int = 400,
) -> Agents:
    """Agents in the first ``n_agent_teams`` of ``teams``, one per
    ``customers_per_agent`` customers (30 to 3,000); the other teams are accountable
    for system promises."""
    n = int(np.clip(n_customers // customers_per_agent, 30, 3000))
    behaviour = np.full(n, HONEST, dtype=I64)
    counts = {
        BEGGING: max(3, round(0.04 * n)),
        SELECTIVE: max(3, round(0.04 * n)),
        CONCESSION: max(3, round(0.04 * n)),
        SMALL_N: max(3, round(0.05 * n)),
    }
    order = rng.permutation(n)
    pos = 0
    for b, k in counts.items():
        behaviour[order[pos : pos + k]] = b
        pos += k
    weight = rng.gamma(6.0, 1 / 6.0, n)
    weight[behaviour == SMALL_N] = rng.uniform(0.08, 0.25, int((behaviour == SMALL_N).sum()))
    return Agents(
        ids=format_ids("A", np.arange(1, n + 1), 4),
        first=pa.array(AGENT_NAMES, pa.string()).take(
            pa.array(rng.integers(0, len(AGENT_NAMES), n))
        ),
        team=rng.integers(0, n_agent_teams, n).astype(I64),
        teams=tuple(teams),
        behaviour=behaviour,
        weight=weight,
        p_template=rng.beta(2.0, 4.0, n),
    )

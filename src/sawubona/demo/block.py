"""The working state of one block of customers while a world is generated.

A world is generated in blocks of customers (see ``generator.py``); each block
has its own random stream (derived from the seed and the block number), its
customers, the world's agents, and row sinks for the event tables. Helpers here
add outbound messages — templated or personal — to the touchpoint sink.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.common import (
    A_PERSON,
    ACTION_SPEC,
    I64,
    OUTBOUND,
    PROMISE_SPEC,
    SURVEY_SPEC,
    TP_SPEC,
    Sink,
    date_text,
    labels,
)
from sawubona.demo.people import Agents, Customers
from sawubona.demo.text import Template, personal_text, render_many


class TemplateBook:
    """Numbers the templates of a world in the order they are first used."""

    def __init__(self) -> None:
        self.templates: list[Template] = []
        self._code: dict[str, int] = {}

    def code(self, tpl: Template) -> int:
        if tpl.key not in self._code:
            self._code[tpl.key] = len(self.templates)
            self.templates.append(tpl)
        return self._code[tpl.key]


@dataclass
class Block:
    """One block of customers and the rows generated for them."""

    rng: np.random.Generator
    cust: Customers
    agents: Agents
    book: TemplateBook
    #: customers who are only ever sent templates (planted neglect)
    neglected: np.ndarray
    tp: Sink = field(default_factory=lambda: Sink(TP_SPEC))
    promises: Sink = field(default_factory=lambda: Sink(PROMISE_SPEC))
    surveys: Sink = field(default_factory=lambda: Sink(SURVEY_SPEC))
    actions: Sink = field(default_factory=lambda: Sink(ACTION_SPEC))
    truth: dict[str, list[pa.Table]] = field(default_factory=dict)
    #: a second stream for the planted promise gaming, pauses and make-good amounts
    plant: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    #: the world's declared compensation rules: promise kind -> rule (see promises.py)
    compensation: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def first(self, cust: np.ndarray) -> pa.Array:
        """Customers' first names."""
        return labels(self.cust.first, np.asarray(cust, dtype=I64))

    def agent_first(self, agent: np.ndarray) -> pa.Array:
        """Agents' first names (empty for no agent)."""
        a = np.asarray(agent, dtype=I64)
        return labels(self.agents.first, np.maximum(a, 0))

    def add_truth(self, name: str, table: pa.Table) -> None:
        self.truth.setdefault(name, []).append(table)

    # ----------------------------------------------------------------- outbound messages

    def send_templates(
        self,
        templates: Sequence[Template],
        which: np.ndarray,
        slots: Mapping[str, pa.Array],
        **cols: object,
    ) -> None:
        """Add outbound messages, row ``i`` from ``templates[which[i]]``."""
        n = len(which)
        if n == 0:
            return
        codes = np.array([self.book.code(t) for t in templates], dtype=np.int16)
        share = np.array([t.id_share for t in templates])
        self.tp.add(
            n,
            direction=OUTBOUND,
            text=render_many(templates, which, slots),
            tpl=codes[which],
            show_tpl=self.rng.random(n) < share[which],
            **cols,  # type: ignore[arg-type]
        )

    def send_mixed(
        self,
        cust: np.ndarray,
        agent: np.ndarray,
        templated: np.ndarray,
        canned: Sequence[Template],
        slots: Mapping[str, pa.Array],
        detail: pa.Array,
        when: np.ndarray,
        suffix: pa.Array | None = None,
        **cols: object,
    ) -> np.ndarray:
        """Messages from persons: canned (templated) where ``templated``, else personal.

        ``suffix`` (e.g. a begging sentence, or empty) goes before a personal
        message's sign-off and after a canned one.
        Returns the touchpoint sink positions of the rows, in input order.
        """
        n = len(cust)
        if n == 0:
            return np.zeros(0, I64)
        rng = self.rng
        which = rng.integers(0, len(canned), n)
        canned_text = render_many(canned, which, slots)
        own = personal_text(
            rng, self.first(cust), self.agent_first(agent), detail, date_text(when), suffix
        )
        if suffix is not None:
            canned_text = pc.binary_join_element_wise(canned_text, suffix, "")
        text = pc.if_else(pa.array(templated), canned_text, own)
        codes = np.array([self.book.code(t) for t in canned], dtype=np.int16)
        share = np.array([t.id_share for t in canned])
        start = self.tp.n
        self.tp.add(
            n,
            cust=cust,
            agent=agent,
            direction=OUTBOUND,
            actor=A_PERSON,
            text=text,
            tpl=np.where(templated, codes[which], -1),
            show_tpl=templated & (rng.random(n) < share[which]),
            **cols,  # type: ignore[arg-type]
        )
        return np.arange(start, start + n, dtype=I64)

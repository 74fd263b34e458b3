"""Touch lens: did a person ever speak to this customer, or only templates and bots?

DESIGN.md §1 ("technology drives out the human touch") and §5.6. Outbound texts
are normalised (names, numbers, dates, amounts, references, links, sign-offs
masked), shingled, MinHashed and clustered by LSH into near-duplicates; a
cluster is a template when one of its wordings reached ``min_recipients``
customers word for word (or ``min_cluster_recipients`` customers got a
near-duplicate of its example), whether or not the messages carry a
``template_id`` (which is used as given, and checked). Bots, system notices and
marketing are never a person.

Results: ``touch_messages``, ``touch_templates``, ``touch_customers``,
``touch_only_machines``, ``touch_teams``, ``touch_template_ids`` and findings.
See ``docs/lenses/touch.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.errors import SawubonaError
from sawubona.lenses.base import LensInput, LensOutput, Setting
from sawubona.lenses.touch.findings import findings
from sawubona.lenses.touch.normalise import fold_digits
from sawubona.lenses.touch.people import customers_table, only_machines_table, teams_table
from sawubona.lenses.touch.summary import (
    classify,
    customer_codes,
    template_ids_table,
    templates_table,
)
from sawubona.lenses.touch.templates import Params, near_duplicates

OUTBOUND_COLUMNS = (
    "touchpoint_id",
    "customer_id",
    "at",
    "channel",
    "actor",
    "agent_id",
    "team",
    "kind",
    "text",
    "template_id",
)


class TouchLens:
    """A person or a template (see the module docstring)."""

    name = "touch"
    title = "Touch — a person or a template"
    needs = ("touchpoints",)
    uses = ("customers",)
    after: tuple[str, ...] = ()
    settings = (
        Setting("shingle_words", 3, "words per shingle (a message shorter is one shingle)"),
        Setting("permutations", 128, "MinHash permutations per message"),
        Setting("bands", 32, "LSH bands; must divide permutations (rows per band = the quotient)"),
        Setting(
            "threshold",
            0.6,
            "estimated Jaccard similarity of shingles at which two messages are near-duplicates",
        ),
        Setting(
            "min_recipients",
            3,
            "customers one text must reach word for word (once masked) to make its cluster "
            "of near-duplicates a template",
        ),
        Setting(
            "min_cluster_recipients",
            100,
            "customers a cluster must reach with messages near-duplicate of its example to be "
            "a template even when no text in it repeats word for word",
        ),
        Setting("seed", 0, "seed of the MinHash permutations (same seed, same clusters)"),
    )

    def params(self, values: Mapping[str, Any]) -> Params:
        params = Params(
            shingle_words=int(values["shingle_words"]),
            permutations=int(values["permutations"]),
            bands=int(values["bands"]),
            threshold=float(values["threshold"]),
            seed=int(values["seed"]),
        )
        try:
            params.check()
        except ValueError as exc:
            raise SawubonaError(f"touch lens: {exc}") from None
        return params

    def run(self, data: LensInput) -> LensOutput:
        values = {s.name: data.settings.get(s.name, s.default) for s in self.settings}
        params = self.params(values)
        min_recipients = int(values["min_recipients"])
        min_cluster = int(values["min_cluster_recipients"])
        tp = data.until("touchpoints")
        # Read unordered and order by time in Arrow (a sort in the database would hold
        # every column there as well), and number the distinct texts (ASCII digits read
        # as 0, which masking cannot tell apart) so that each is normalised once and no
        # column of every message's text is kept.
        outbound = _plain_strings(
            tp.filter(tp.direction == "outbound").select(*OUTBOUND_COLUMNS).to_pyarrow()
        )
        text_chunks = outbound["text"].chunks
        outbound = outbound.drop_columns(["text"])
        codes, distinct = _text_codes(text_chunks)
        order = pc.sort_indices(
            outbound, sort_keys=[("at", "ascending"), ("touchpoint_id", "ascending")]
        )
        outbound = outbound.take(order)
        codes = codes[np.asarray(order, dtype=np.int64)]
        del order
        # Arrow's allocator keeps what it freed (the raw texts, the unsorted columns)
        # for reuse; hand it back before the text work, which is NumPy's.
        pa.default_memory_pool().release_unused()
        inbound_expr = tp.filter(tp.direction == "inbound")
        inbound = (
            inbound_expr.group_by("customer_id")
            .aggregate(inbound=inbound_expr.count(), last_inbound_at=inbound_expr.at.max())
            .to_pyarrow()
        )
        inbound = inbound.cast(
            pa.schema(
                [
                    ("customer_id", pa.string()),
                    ("inbound", pa.int64()),
                    ("last_inbound_at", outbound.schema.field("at").type),
                ]
            )
        )
        skipped = []
        if outbound.num_rows == 0:
            skipped.append(f"no outbound touchpoints up to {data.as_of:%Y-%m-%d}")
        near = near_duplicates(_draining(distinct), params, _name_words(data), codes=codes)
        customer = customer_codes(outbound["customer_id"])
        messages, clusters = classify(
            outbound, near, min_recipients, min_cluster, params.threshold, customer[0]
        )
        tables = {
            "touch_messages": messages,
            "touch_templates": templates_table(messages, clusters, near),
        }
        customers = customers_table(messages, inbound, data.as_of, customer)
        del customer
        tables["touch_customers"] = customers
        tables["touch_only_machines"] = only_machines_table(customers)
        tables["touch_teams"] = teams_table(messages)
        tables["touch_template_ids"] = template_ids_table(messages, clusters, near)
        return LensOutput(tables=tables, findings=findings(tables, min_recipients), skipped=skipped)


def _plain_strings(t: pa.Table) -> pa.Table:
    """String views and large strings as plain strings (DuckDB may return either)."""
    fields = [
        pa.field(f.name, pa.string())
        if pa.types.is_large_string(f.type) or f.type == pa.string_view()
        else f
        for f in t.schema
    ]
    schema = pa.schema(fields)
    return t if schema == t.schema else t.cast(schema)


def _text_codes(chunks: list[pa.Array]) -> tuple[npt.NDArray[np.int64], list[pa.Array]]:
    """Each message's number of its text (``-1``: none), and the distinct texts.

    Texts are numbered with their ASCII digits read as ``0`` (:func:`fold_digits`):
    masking gives the same result for both, and far fewer texts stay distinct
    (4.2 million raw texts are 1.6 million on the large telco world). ``chunks``
    is emptied as it is read, so each raw chunk is let go of once folded.
    """
    folded = []
    chunks.reverse()
    while chunks:
        folded.append(fold_digits(chunks.pop()))
    if not folded:
        return np.zeros(0, np.int64), []
    encoded = pc.dictionary_encode(pa.chunked_array(folded))  # one dictionary for all
    del folded
    codes = np.concatenate(
        [np.asarray(pc.fill_null(c.indices, -1), dtype=np.int64) for c in encoded.chunks]
    )
    return codes, [encoded.chunks[0].dictionary]


def _draining(chunks: list[pa.Array]) -> Iterator[pa.Array]:
    """Yield ``chunks`` in order, letting go of each one as the next is asked for."""
    chunks.reverse()
    while chunks:
        yield chunks.pop()


def _name_words(data: LensInput) -> list[str]:
    """The distinct words of customers' names (to mask them in texts), if known."""
    if not data.has("customers") or "name" not in data.table("customers").columns:
        return []
    c = data.table("customers")
    names = c.filter(c["name"].notnull()).select("name").distinct().to_pyarrow()["name"]
    if len(names) == 0:
        return []
    words = pc.unique(pc.list_flatten(pc.utf8_split_whitespace(names)))
    return [w for w in words.to_pylist() if w]


LENS = TouchLens()

__all__ = ["LENS", "TouchLens"]

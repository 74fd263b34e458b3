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

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.errors import SawubonaError
from sawubona.lenses.base import LensInput, LensOutput, Setting
from sawubona.lenses.touch.findings import findings
from sawubona.lenses.touch.people import customers_table, only_machines_table, teams_table
from sawubona.lenses.touch.summary import classify, template_ids_table, templates_table
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
        out = tp.filter(tp.direction == "outbound")
        # Each distinct text is read and normalised once (in chunks); messages carry
        # its number instead of the text, so no column of all the texts is ever held.
        texts = out.filter(out.text.notnull()).select("text").distinct()
        texts = texts.mutate(code=ibis.row_number().over(order_by=texts.text))
        joined = out.left_join(texts, out.text == texts.text)
        outbound = (
            joined.select(
                *[joined[c] for c in OUTBOUND_COLUMNS if c != "text"],
                code=joined.code.fill_null(-1).cast("int64"),
            )
            .order_by(["at", "touchpoint_id"])
            .to_pyarrow()
        )
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
        outbound = _plain_strings(outbound)
        skipped = []
        if outbound.num_rows == 0:
            skipped.append(f"no outbound touchpoints up to {data.as_of:%Y-%m-%d}")
        codes = np.asarray(outbound["code"], dtype=np.int64)
        outbound = outbound.drop_columns(["code"])
        names = _name_words(data)
        chunks = _plain_strings(texts.order_by("code").select("text").to_pyarrow())["text"].chunks
        near = near_duplicates(_draining(chunks), params, names, codes=codes)
        messages, clusters = classify(outbound, near, min_recipients, min_cluster, params.threshold)
        tables = {
            "touch_messages": messages,
            "touch_templates": templates_table(messages, clusters, near),
        }
        customers = customers_table(messages, inbound, data.as_of)
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

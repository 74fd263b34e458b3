"""From clustered messages to messages, templates and template ids (Arrow, vectorised).

:func:`classify` decides each outbound message's ``touch``; :func:`templates_table`
and :func:`template_ids_table` aggregate per cluster and per given template id.
Column meanings: :data:`sawubona.lenses.touch.columns.COLUMNS`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.touch.templates import NearDuplicates

#: what an outbound message is, in the order the rules are tried
TOUCHES = ("bot", "marketing", "system", "templated", "personal", "spoken", "unknown")
#: touches that are a person speaking or writing to the customer themselves
PERSON_TOUCHES = ("personal", "spoken")
#: touches that count for a team's template share (written by people)
WRITTEN = ("templated", "personal")

Bool = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]


def is_value(column: pa.Array | pa.ChunkedArray, value: str) -> Bool:
    return np.asarray(pc.fill_null(pc.equal(column, value), False), dtype=bool)


def classify(
    msgs: pa.Table,
    near: NearDuplicates,
    min_recipients: int,
    min_cluster_recipients: int,
    threshold: float,
    customer: I64 | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Each message's touch, and per-cluster statistics.

    ``msgs`` holds the outbound touchpoints in time order. A cluster of
    near-duplicates is a **template** when one of its texts was sent word for
    word (once masked) to ``min_recipients`` or more customers; when
    ``min_cluster_recipients`` customers got a message at least ``threshold``
    similar to the cluster's example (a template whose every copy differs in
    a free-text slot — a chain of merely similar messages does not count); or
    when it holds two or more messages and one of them carries a
    ``template_id``. A message is ``templated`` when it carries a
    ``template_id`` or sits in a template cluster.

    ``customer`` numbers each message's customer (:func:`customer_codes`);
    counts of distinct customers are taken over these numbers, by sorting.
    """
    n = msgs.num_rows
    cluster = near.cluster
    with_id = np.asarray(pc.is_valid(msgs["template_id"]), dtype=bool)
    has_cluster = cluster >= 0
    if customer is None:
        customer = customer_codes(msgs["customer_id"])[0]
    key = near.firsts  # each cluster's first message, ascending
    n_clusters = len(key)
    rows = np.flatnonzero(has_cluster)  # messages with words, in time order
    k = near.cluster_index[rows]  # their cluster's number
    who = customer[rows]
    size = np.bincount(k, minlength=n_clusters)
    recipients = distinct_per_group(k, who, n_clusters)
    close = near.similarity[rows] >= threshold
    near_recipients = distinct_per_group(k[close], who[close], n_clusters)
    tagged = np.bincount(k[with_id[rows]], minlength=n_clusters)
    # messages are in time order: a cluster's first and last messages bound its times
    at = msgs["at"]
    dated = np.asarray(pc.is_valid(at), dtype=bool)[rows]
    first_at = np.full(n_clusters, n, np.int64)
    np.minimum.at(first_at, k[dated], rows[dated])
    last_at = np.full(n_clusters, -1, np.int64)
    np.maximum.at(last_at, k[dated], rows[dated])
    first_seen = at.take(pa.array(np.minimum(first_at, n - 1), mask=first_at >= n))
    last_seen = at.take(pa.array(np.maximum(last_at, 0), mask=last_at < 0))
    # core: customers reached by the cluster's most repeated word-for-word text
    doc = near.text[rows]
    n_docs = int(doc.max()) + 1 if len(doc) else 0
    per_doc = distinct_per_group(doc, who, n_docs)
    cluster_of_doc = np.zeros(n_docs, np.int64)
    cluster_of_doc[doc] = k  # every message of a text sits in the same cluster
    core = np.zeros(n_clusters, np.int64)
    np.maximum.at(core, cluster_of_doc, per_doc)
    del doc, who, close, dated
    is_template = (
        (core >= min_recipients)
        | (near_recipients >= min_cluster_recipients)
        | ((size >= 2) & (tagged > 0))
    )

    in_template = np.zeros(n, bool)
    size_of = np.zeros(n, np.int64)
    recipients_of = np.zeros(n, np.int64)
    in_template[rows] = is_template[k]
    size_of[rows] = size[k]
    recipients_of[rows] = recipients[k]
    del rows, k

    actor, kind = msgs["actor"], msgs["kind"]
    has_words = near.words > 0
    rules = [
        is_value(actor, "bot"),
        is_value(kind, "marketing"),
        is_value(actor, "system"),
        with_id | in_template,
        has_words,
        is_value(actor, "person"),
    ]
    which = np.select(rules, list(range(len(TOUCHES) - 1)), default=len(TOUCHES) - 1)
    touch = pa.array(TOUCHES, pa.string()).take(pa.array(which.astype(np.int8)))
    inferred = _inferred_ids(msgs["template_id"], cluster)
    in_multi = has_cluster & (size_of >= 2)
    messages = pa.table(
        {
            "touchpoint_id": msgs["touchpoint_id"],
            "customer_id": msgs["customer_id"],
            "at": msgs["at"],
            "channel": msgs["channel"],
            "actor": msgs["actor"],
            "agent_id": msgs["agent_id"],
            "team": msgs["team"],
            "kind": msgs["kind"],
            "touch": touch,
            "cluster_id": _decoded(near.cluster_id, in_multi),
            "cluster_messages": pa.array(np.where(has_cluster, size_of, 0)),
            "cluster_recipients": pa.array(np.where(has_cluster, recipients_of, 0)),
            "similarity": pa.array(np.where(in_multi, near.similarity, np.nan), from_pandas=True),
            "template_id": msgs["template_id"],
            "template_id_inferred": inferred,
            "words": pa.array(near.words),
        }
    )
    clusters = pa.table(
        {
            "cluster": pa.array(key),
            "messages": pa.array(size),
            "recipients": pa.array(recipients),
            "core_recipients": pa.array(core),
            "near_recipients": pa.array(near_recipients),
            "with_template_id": pa.array(tagged),
            "first_seen": first_seen,
            "last_seen": last_seen,
            "is_template": pa.array(is_template),
        }
    )
    return messages, clusters


def _decoded(ids: pa.Array, keep: Bool) -> pa.Array:
    """Cluster ids as plain strings where ``keep`` (null elsewhere)."""
    if not isinstance(ids, pa.DictionaryArray):
        return pc.if_else(pa.array(keep), ids, pa.scalar(None, pa.string()))
    index = pc.if_else(pa.array(keep), ids.indices, pa.scalar(None, ids.indices.type))
    return ids.dictionary.take(index)


def customer_codes(values: pa.ChunkedArray | pa.Array) -> tuple[I64, pa.Array]:
    """A number per distinct value (``-1`` for null), and the values so numbered."""
    encoded = pc.dictionary_encode(values)
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks:
        return np.zeros(0, np.int64), pa.array([], pa.string())
    codes = np.concatenate(
        [np.asarray(pc.fill_null(c.indices, -1), dtype=np.int64) for c in chunks]
    )
    return codes, chunks[0].dictionary  # one dictionary shared by every chunk


def distinct_per_group(group: I64, value: I64, n_groups: int) -> I64:
    """How many distinct ``value`` (``>= 0``; negative ones left out) each group holds.

    Pairs are made one integer and sorted (NumPy's sort is much faster than a hash
    aggregation here); a pair counts where it differs from the one before.
    """
    ok = value >= 0
    group, value = group[ok], value[ok]
    if len(group) == 0:
        return np.zeros(n_groups, np.int64)
    width = int(value.max()) + 1
    pairs = np.sort(group * width + value)
    new = np.r_[True, pairs[1:] != pairs[:-1]]
    return np.bincount(pairs[new] // width, minlength=n_groups)


def _inferred_ids(
    template_id: pa.ChunkedArray | pa.Array, cluster: npt.NDArray[np.int64]
) -> pa.Array:
    """The most frequent given ``template_id`` of each message's cluster (ties: smallest id)."""
    t = pa.table({"cluster": pa.array(cluster), "template_id": template_id}).filter(
        pc.and_(pc.is_valid(template_id), pa.array(cluster >= 0))
    )
    if t.num_rows == 0:
        return pa.nulls(len(cluster), pa.string())
    counts = t.group_by(["cluster", "template_id"]).aggregate([("template_id", "count")])
    counts = counts.sort_by(
        [
            ("cluster", "ascending"),
            ("template_id_count", "descending"),
            ("template_id", "ascending"),
        ]
    )
    c = np.asarray(counts["cluster"], dtype=np.int64)
    first = np.r_[True, c[1:] != c[:-1]]
    top = counts.filter(pa.array(first))
    pos = np.searchsorted(np.asarray(top["cluster"], dtype=np.int64), cluster)
    pos = np.minimum(pos, top.num_rows - 1)
    hit = (cluster >= 0) & (np.asarray(top["cluster"], dtype=np.int64)[pos] == cluster)
    return pc.if_else(
        pa.array(hit), top["template_id"].take(pa.array(pos)), pa.scalar(None, pa.string())
    )


def _joined(lists: pa.ListArray | pa.ChunkedArray) -> pa.Array:
    """Each list's distinct non-null strings, sorted and joined with ``", "``."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    parent = pc.list_parent_indices(lists)
    pairs = pa.table({"list": parent, "value": pc.list_flatten(lists).cast(pa.string())})
    pairs = pairs.filter(pc.is_valid(pairs["value"])).group_by(["list", "value"]).aggregate([])
    pairs = pairs.sort_by([("list", "ascending"), ("value", "ascending")])
    counts = np.bincount(np.asarray(pairs["list"], dtype=np.int64), minlength=len(lists))
    offsets = np.zeros(len(lists) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    sorted_lists = pa.ListArray.from_arrays(pa.array(offsets), pairs["value"].combine_chunks())
    return pc.binary_join(sorted_lists, ", ")


def templates_table(messages: pa.Table, clusters: pa.Table, near: NearDuplicates) -> pa.Table:
    """One row per cluster of two or more messages, biggest first."""
    multi = clusters.filter(pc.greater_equal(clusters["messages"], 2))
    first = np.asarray(multi["cluster"], dtype=np.int64)
    # only the columns aggregated (a filter copies every column it is given)
    aggregated = ["agent_id", "team", "actor", "kind", "channel", "template_id", "similarity"]
    m = (
        messages.select(aggregated)
        .append_column("cluster", pa.array(near.cluster))
        .filter(pc.is_valid(messages["cluster_id"]))
    )
    per = m.group_by("cluster").aggregate(
        [
            ("agent_id", "count_distinct"),
            ("team", "distinct"),
            ("actor", "distinct"),
            ("kind", "distinct"),
            ("channel", "distinct"),
            ("template_id", "distinct"),
            ("similarity", "min"),
            ("similarity", "mean"),
        ]
    )
    order = np.argsort(np.asarray(per["cluster"], dtype=np.int64))
    per = per.take(pa.array(order))
    pos = np.searchsorted(np.asarray(per["cluster"], dtype=np.int64), first)
    per = per.take(pa.array(pos))
    table = pa.table(
        {
            "cluster_id": messages["cluster_id"].take(pa.array(first)),
            "is_template": multi["is_template"],
            "messages": multi["messages"],
            "recipients": multi["recipients"],
            "core_recipients": multi["core_recipients"],
            "near_recipients": multi["near_recipients"],
            "agents": per["agent_id_count_distinct"],
            "teams": _joined(per["team_distinct"]),
            "actors": _joined(per["actor_distinct"]),
            "kinds": _joined(per["kind_distinct"]),
            "channels": _joined(per["channel_distinct"]),
            "template_ids": _joined(per["template_id_distinct"]),
            "with_template_id": multi["with_template_id"],
            "example": near.tokens.readable(near.code[first]),
            "example_touchpoint_id": messages["touchpoint_id"].take(pa.array(first)),
            "first_seen": multi["first_seen"],
            "last_seen": multi["last_seen"],
            "min_similarity": per["similarity_min"],
            "mean_similarity": per["similarity_mean"],
        }
    )
    return table.sort_by([("messages", "descending"), ("cluster_id", "ascending")])


def template_ids_table(messages: pa.Table, clusters: pa.Table, near: NearDuplicates) -> pa.Table:
    """Every given ``template_id`` checked against the text clusters.

    ``template_like``: its messages whose text sits in a template cluster
    (the rest read as written one by one, though tagged); ``clusters``: how
    many text clusters its messages fall in (more than one: a free-text slot
    such as an item name, or several versions of the template);
    ``share_in_main_cluster``: the share in the biggest of them;
    ``found_without_id``: messages in that cluster that carry no template id
    (the same text sent untagged).
    """
    tagged = pc.is_valid(messages["template_id"])
    cluster = pa.array(near.cluster)
    tpl = np.zeros(len(near.cluster), bool)
    key = np.asarray(clusters["cluster"], dtype=np.int64)
    tpl_clusters = key[np.asarray(clusters["is_template"], dtype=bool)]
    tpl[np.isin(near.cluster, tpl_clusters)] = True
    t = pa.table(
        {
            "template_id": messages["template_id"],
            "cluster": cluster,
            "with_text": pa.array((near.cluster >= 0).astype(np.int64)),
            "template_like": pa.array(((near.cluster >= 0) & tpl).astype(np.int64)),
        }
    ).filter(tagged)
    per = t.group_by("template_id").aggregate(
        [("template_id", "count"), ("with_text", "sum"), ("template_like", "sum")]
    )
    in_cluster = t.filter(pc.greater_equal(t["cluster"], 0))
    pairs = in_cluster.group_by(["template_id", "cluster"]).aggregate([("cluster", "count")])
    pairs = pairs.sort_by(
        [("template_id", "ascending"), ("cluster_count", "descending"), ("cluster", "ascending")]
    )
    ids = pairs["template_id"].to_pylist()
    first = (
        np.r_[True, np.array(ids[1:], dtype=object) != np.array(ids[:-1], dtype=object)]
        if ids
        else np.zeros(0, bool)
    )
    main = pairs.filter(pa.array(first))
    n_clusters = pairs.group_by("template_id").aggregate([("cluster", "count")])
    per = per.join(main, "template_id", join_type="left outer").join(
        n_clusters.rename_columns(["template_id", "clusters"]),
        "template_id",
        join_type="left outer",
    )
    main_cluster = np.asarray(pc.fill_null(per["cluster"], -1), dtype=np.int64)
    size_by_cluster = dict(
        zip(key.tolist(), np.asarray(clusters["messages"]).tolist(), strict=True)
    )
    tagged_by_cluster = dict(
        zip(key.tolist(), np.asarray(clusters["with_template_id"]).tolist(), strict=True)
    )
    found_without = [
        size_by_cluster.get(c, 0) - tagged_by_cluster.get(c, 0) if c >= 0 else 0
        for c in main_cluster.tolist()
    ]
    main_id = pc.if_else(
        pa.array(main_cluster >= 0),
        _decoded(
            near.cluster_id.take(pa.array(np.maximum(main_cluster, 0))),
            np.ones(len(main_cluster), bool),
        ),
        pa.scalar(None, pa.string()),
    )
    with_text = np.asarray(per["with_text_sum"], dtype=float)
    in_main = np.asarray(pc.fill_null(per["cluster_count"], 0), dtype=float)
    like = np.asarray(per["template_like_sum"], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(with_text > 0, in_main / with_text, np.nan)
        share_like = np.where(with_text > 0, like / with_text, np.nan)
    table = pa.table(
        {
            "template_id": per["template_id"],
            "messages": per["template_id_count"],
            "with_text": pa.array(with_text.astype(np.int64)),
            "template_like": pa.array(like.astype(np.int64)),
            "share_template_like": pa.array(share_like, from_pandas=True),
            "clusters": pc.fill_null(per["clusters"], 0),
            "main_cluster_id": main_id,
            "share_in_main_cluster": pa.array(share, from_pandas=True),
            "found_without_id": pa.array(found_without, pa.int64()),
        }
    )
    return table.sort_by([("messages", "descending"), ("template_id", "ascending")])

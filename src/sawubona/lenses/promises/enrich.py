"""The ledger's second stage: what is learnt from other promises and other tables.

Over the per-promise core of :mod:`.ledger`: the kind norms (median promised business
time, time to keep at the at-risk quantile), at-risk and padding, renegotiated due
dates, the first make-good after a broken promise and any later follow-up, and — for
the make-right and at-risk lists — what the customer has at stake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sawubona.lenses.promises.clock import asof_join
from sawubona.lenses.promises.ledger import Options

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from sawubona.lenses.base import LensInput


def kind_norms(core: ir.Table, opts: Options) -> ir.Table:
    """Per kind: promises, the norm (median promised business hours) and the time to keep
    at the at-risk quantile (business hours, over promises kept by ``as_of``)."""
    return core.group_by("kind").aggregate(
        calendar=core.calendar.min(),
        at_risk_share=core.at_risk_share.min(),
        promises=core.count(),
        kind_norm_business_hours=core.promised_business_hours.median(),
        p90_time_to_keep_hours=core.time_to_keep_hours.quantile(opts.at_risk_quantile),
    )


def enrich(data: LensInput, core: ir.Table, norms: ir.Table, opts: Options) -> ir.Table:
    """The ledger's second stage over the first (``core``): at-risk, padding,
    renegotiations, make-goods. The side tables are small (per kind — ``norms``, from
    :func:`kind_norms` — or for the few promises they concern) and are joined to
    ``core`` in one pass."""
    import ibis

    t = core
    norms = norms.select(
        _nk=norms.kind,
        kind_norm_business_hours=norms.kind_norm_business_hours,
        p90_time_to_keep_hours=norms.p90_time_to_keep_hours,
    )
    reneg = _renegotiations(t)
    mg = _make_good(data, t, opts)
    j = (
        t.left_join(norms, t.kind == norms._nk)
        .left_join(reneg, t.promise_id == reneg._rp)
        .left_join(mg, t.promise_id == mg._bp)
    )
    t = j.select(
        *t.columns,
        "kind_norm_business_hours",
        "p90_time_to_keep_hours",
        "renegotiated",
        "replaced_by",
        "replaces",
        "original_due_at",
        "make_good_at",
        "make_good_id",
        "make_good_via",
        "followed_up_at",
    )
    ratio = t.promised_business_hours / t.kind_norm_business_hours.nullif(0)
    open_ = t.state == "open"
    by_share = (open_ & (t.elapsed_share >= t.at_risk_share)).fill_null(False)
    by_time = (open_ & (t.business_time_left_hours < t.p90_time_to_keep_hours)).fill_null(False)
    share_txt = ((t.elapsed_share * 100) + 0.5).floor().cast("int64").cast("string")
    left_txt = one_decimal(t.business_time_left_hours)
    p90_txt = one_decimal(t.p90_time_to_keep_hours)
    return t.select(
        "promise_id",
        "customer_id",
        "journey_id",
        "kind",
        "source",
        "made_by",
        "team",
        "channel",
        "made_at",
        "due_at",
        "stated_due_at",
        "kept_at",
        "cancelled_at",
        "cancel_reason",
        status=ibis.ifelse(by_share | by_time, "at_risk", t.state),
        broken_how=t.broken_how,
        status_at=t.status_at,
        calendar=t.calendar,
        promised_hours=t.promised_hours,
        promised_business_hours=t.promised_business_hours,
        paused_business_hours=t.paused_business_hours,
        lateness_hours=t.lateness_hours,
        business_lateness_hours=t.business_lateness_hours,
        time_left_hours=t.time_left_hours,
        business_time_left_hours=t.business_time_left_hours,
        elapsed_share=t.elapsed_share,
        at_risk_reason=ibis.cases(
            (by_share, "elapsed " + share_txt + "% of the promised time"),
            (by_time, left_txt + " h left < p90 time to keep " + p90_txt + " h"),
            else_=ibis.null("string"),
        ),
        promised_vs_norm=ratio,
        padded=(ratio >= opts.padding_ratio).fill_null(False),
        renegotiated=t.renegotiated.fill_null(False),
        replaced_by=t.replaced_by,
        replaces=t.replaces,
        original_due_at=t.original_due_at,
        made_good=ibis.ifelse(t.state == "broken", t.make_good_at.notnull(), None),
        make_good_at=t.make_good_at,
        make_good_id=t.make_good_id,
        make_good_via=t.make_good_via,
        followed_up_at=t.followed_up_at,
        evidence=t.source_row,
    )


def one_decimal(x: ir.NumericValue) -> ir.StringValue:
    """``x`` as text with one decimal (``184.0``, ``-2.5``), alike on every engine: casting a
    rounded double to text gives ``184.0`` on DuckDB and ``184`` on PostgreSQL."""
    import ibis

    tenths = (x.abs() * 10 + 0.5).floor().cast("int64")
    sign = ibis.ifelse(x < 0, "-", "")
    return sign + (tenths // 10).cast("string") + "." + (tenths % 10).cast("string")


def evidence(t: ir.Table) -> ir.StringValue:
    """A sentence saying what happened to each promise of ``t`` (a ledger subset)."""
    import ibis

    fmt = "%Y-%m-%d %H:%M"
    due_txt = t.due_at.strftime(fmt)
    return ibis.cases(
        (t.status == "kept", "kept " + t.kept_at.strftime(fmt) + ", due " + due_txt),
        (
            t.broken_how == "late",
            "kept "
            + t.kept_at.strftime(fmt)
            + ", "
            + one_decimal(t.lateness_hours)
            + " h after due "
            + due_txt,
        ),
        (t.broken_how == "not_kept", "not kept by " + due_txt + " (nor by as_of)"),
        (
            t.status == "cancelled",
            "cancelled "
            + t.cancelled_at.strftime(fmt)
            + ": "
            + t.cancel_reason.fill_null("no reason given"),
        ),
        else_="due " + due_txt + ", " + one_decimal(t.time_left_hours) + " h left",
    )


def _renegotiations(t: ir.Table) -> ir.Table:
    """Promises whose due date was moved: a later promise of the same kind for the same
    journey (else customer), made while this one was pending, due later. Only groups with
    more than one such promise are sorted. Columns ``_rp`` (the promise), ``renegotiated``,
    ``replaced_by``, ``replaces``, ``original_due_at``."""
    import ibis

    # a journey belongs to one customer, so (customer, journey, kind) groups by journey,
    # and by customer where the journey is unknown
    base = t.filter(t.source == "promises").select(
        "promise_id",
        "customer_id",
        "journey_id",
        "kind",
        "made_at",
        "stated_due_at",
        "due_at",
        "kept_at",
    )
    keys = ["customer_id", "journey_id", "kind"]
    # only groups with two or more promises can hold a renegotiation: find them by a
    # hash of the keys (cheap to group; a collision only lets a few more rows through)
    h = base.customer_id.hash() ^ base.journey_id.hash() ^ base.kind.hash()
    base = base.mutate(_h=h)
    multi = base.group_by("_h").aggregate(_n=base.count()).filter(lambda x: x._n > 1)
    sub = base.semi_join(multi, base._h == multi._h)
    w = ibis.window(group_by=[sub[k] for k in keys], order_by=[sub.made_at, sub.promise_id])
    sub = sub.mutate(
        _nm=sub.made_at.lead().over(w),
        _nd=sub.stated_due_at.lead().over(w),
        _ni=sub.promise_id.lead().over(w),
        _pm=sub.made_at.lag().over(w),
        _pd=sub.stated_due_at.lag().over(w),
        _pdue=sub.due_at.lag().over(w),
        _pk=sub.kept_at.lag().over(w),
        _pi=sub.promise_id.lag().over(w),
    )
    reneg = (
        sub._nm.notnull()
        & (sub._nm <= sub.due_at)
        & (sub.kept_at.isnull() | (sub._nm < sub.kept_at))
        & (sub._nd > sub.stated_due_at)
    ).fill_null(False)
    replaces = (
        sub._pm.notnull()
        & (sub.made_at <= sub._pdue)
        & (sub._pk.isnull() | (sub.made_at < sub._pk))
        & (sub.stated_due_at > sub._pd)
    ).fill_null(False)
    sub = sub.mutate(_r=reneg, _x=replaces)
    return sub.filter(sub._r | sub._x).select(
        _rp=sub.promise_id,
        renegotiated=sub._r,
        replaced_by=ibis.ifelse(sub._r, sub._ni, None),
        replaces=ibis.ifelse(sub._x, sub._pi, None),
        original_due_at=ibis.ifelse(sub._x, sub._pd, None),
    )


def _make_good(data: LensInput, t: ir.Table, opts: Options) -> ir.Table:
    """Per broken promise (``_bp``): the first apology or credit to the customer after it
    fell due, within ``make_good_days`` of the later of due and fulfilment; and the first
    later outbound message from a person in its journey (``followed_up_at``)."""
    import ibis

    null_ts, null_s = ibis.null("timestamp"), ibis.null("string")
    b = t.filter(t.state == "broken").select(
        _bp=t.promise_id, _bc=t.customer_id, _bj=t.journey_id, _bdue=t.due_at, _bk=t.kept_at
    )
    events = []
    if data.has("touchpoints") and opts.make_good_touchpoint_kinds:
        tp = data.until("touchpoints")
        tp = tp.filter(
            (tp.direction == "outbound") & tp.kind.isin(list(opts.make_good_touchpoint_kinds))
        )
        events.append(
            tp.select(
                _ec=tp.customer_id, _ea=tp.at, _ei=tp.touchpoint_id, _ev="touchpoint:" + tp.kind
            )
        )
    if data.has("actions") and opts.make_good_action_kinds:
        ac = data.until("actions")
        ac = ac.filter(ac.kind.isin(list(opts.make_good_action_kinds)))
        events.append(
            ac.select(_ec=ac.customer_id, _ea=ac.at, _ei=ac.action_id, _ev="action:" + ac.kind)
        )
    if events:
        ev = events[0].union(*events[1:]) if len(events) > 1 else events[0]
        j = asof_join(b, ev, "_bdue", "<", "_ea", ("_bc", "_ec"))
        limit = ibis.greatest(j._bdue, j._bk.fill_null(j._bdue)) + ibis.interval(
            seconds=int(opts.make_good_days * 86400)
        )
        ok = j._ea.notnull() & (j._ea <= limit)
        b = j.select(
            *b.columns,
            make_good_at=ibis.ifelse(ok, j._ea, null_ts),
            make_good_id=ibis.ifelse(ok, j._ei, null_s),
            make_good_via=ibis.ifelse(ok, j._ev, null_s),
        )
    else:
        b = b.mutate(make_good_at=null_ts, make_good_id=null_s, make_good_via=null_s)
    if data.has("touchpoints"):
        tp = data.until("touchpoints")
        fu = tp.filter((tp.direction == "outbound") & (tp.actor == "person"))
        b0 = t.filter(t.state == "broken")
        fu = fu.semi_join(b0, fu.journey_id == b0.journey_id).select(_fj=fu.journey_id, _fa=fu.at)
        j = asof_join(b, fu, "_bdue", "<", "_fa", ("_bj", "_fj"))
        b = j.select(*b.columns, followed_up_at=j._fa)
    else:
        b = b.mutate(followed_up_at=null_ts)
    # only promises with something to add (this also tells the engine the side is small)
    b = b.filter(b.make_good_at.notnull() | b.followed_up_at.notnull())
    return b.drop("_bc", "_bj", "_bdue", "_bk")


def stake(data: LensInput, subset: ir.Table, ledger: ir.Table) -> ir.Table:
    """``subset`` of the ledger with what its customers have at stake: ``stake`` (the
    journey's value) and ``currency``, ``customer_value`` (all their journeys), and
    ``customer_broken`` (how many of their promises were broken)."""
    import ibis

    cols = subset.columns
    if data.has("journeys"):
        j = data.until("journeys")
        jv = j.select(_sj=j.journey_id, stake=j.value, currency=j.currency)
        mine = j.semi_join(subset, j.customer_id == subset.customer_id)
        cv = mine.group_by(_sc=mine.customer_id).aggregate(customer_value=mine.value.sum())
        subset = (
            subset.left_join(jv, subset.journey_id == jv._sj)
            .left_join(cv, subset.customer_id == cv._sc)
            .select(*cols, "stake", "currency", "customer_value")
        )
    else:
        subset = subset.mutate(
            stake=ibis.null("float64"),
            currency=ibis.null("string"),
            customer_value=ibis.null("float64"),
        )
    br = ledger.filter(ledger.status == "broken")
    nb = br.group_by(_bc=br.customer_id).aggregate(customer_broken=br.count())
    subset = subset.left_join(nb, subset.customer_id == nb._bc).select(
        *subset.columns, "customer_broken"
    )
    return subset.mutate(customer_broken=subset.customer_broken.fill_null(0))

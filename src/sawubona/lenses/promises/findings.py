"""Sentences with numbers about the ledger, each linked to the rows behind it."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa

from sawubona.lenses.base import Finding

LENS = "promises"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _hours(h: float) -> str:
    if h != h:
        return "n/a"
    if abs(h) >= 48:
        return f"{h / 24:.1f} days"
    return f"{h:.1f} h"


def findings(
    integrity: pa.Table,
    make_right: pa.Table,
    at_risk: pa.Table,
    gaming: pa.Table,
    *,
    fdr: float,
    min_n: int,
) -> list[Finding]:
    out: list[Finding] = []
    ig = integrity.to_pandas()
    allrow = ig[ig["dimension"] == "all"]
    if allrow.empty or int(allrow["n"].iloc[0]) == 0:
        return [
            Finding(
                LENS,
                "integrity",
                "No promise has fallen due yet: no integrity rate.",
                table="promises_status",
            )
        ]
    a = allrow.iloc[0]
    n, kept, broken = int(a["n"]), int(a["kept"]), int(a["broken"])
    late, unkept = int(a["broken_late"]), int(a["broken_not_kept"])
    out.append(
        Finding(
            LENS,
            "integrity",
            f"Integrity {_pct(a['integrity_rate'])} (95% CI {_pct(a['low'])}–{_pct(a['high'])}, "
            f"n = {n:,}): {kept:,} promises kept by their due time, {broken:,} broken "
            f"({late:,} kept late, {unkept:,} not kept); {int(a['cancelled']):,} cancelled "
            "are reported apart.",
            value=float(a["integrity_rate"]),
            n=n,
            low=float(a["low"]),
            high=float(a["high"]),
            table="promises_status",
            where={"status": "broken"},
            severity="attention" if a["integrity_rate"] < 0.9 else "info",
        )
    )
    if late:
        text = (
            f"Promises kept late came a median {_hours(a['median_lateness_hours'])} after they "
            f"were due (90th percentile {_hours(a['p90_lateness_hours'])})"
        )
        if unkept:
            text += (
                f"; {unkept:,} never kept are overdue by a median "
                f"{_hours(a['median_overdue_hours'])} at as_of"
            )
        out.append(
            Finding(
                LENS,
                "lateness",
                text + ".",
                value=float(a["median_lateness_hours"]),
                n=late,
                table="promises_status",
                where={"broken_how": "late"},
            )
        )
    kinds = ig[(ig["dimension"] == "kind") & (ig["n"] >= min_n)]
    if len(kinds) > 1:
        w = kinds.sort_values("integrity_rate").iloc[0]
        out.append(
            Finding(
                LENS,
                "worst_kind",
                f"{w['group']} promises are kept least often: {_pct(w['integrity_rate'])} "
                f"(95% CI {_pct(w['low'])}–{_pct(w['high'])}, n = {int(w['n']):,}).",
                value=float(w["integrity_rate"]),
                n=int(w["n"]),
                low=float(w["low"]),
                high=float(w["high"]),
                table="promises_status",
                where={"kind": w["group"], "status": "broken"},
            )
        )
    teams = ig[(ig["dimension"] == "team") & (ig["n"] > 0)]
    if len(teams) > 1:
        flagged = teams[teams["flagged"]].sort_values("shrunk_rate")
        if len(flagged):
            names = ", ".join(
                f"{r['group']} {_pct(r['integrity_rate'])} (shrunk {_pct(r['shrunk_rate'])}, "
                f"n = {int(r['n']):,})"
                for _, r in flagged.head(5).iterrows()
            )
            text = (
                f"{len(flagged)} of {len(teams):,} teams keep their word less often than "
                f"their mix of promises leads to expect (FDR {_pct(fdr)}): {names}. "
                "A prompt for review, not a verdict."
            )
        else:
            text = (
                f"No team keeps its word significantly less often than its mix of promises "
                f"leads to expect ({len(teams):,} teams, FDR {_pct(fdr)})."
            )
        small = int((teams["n"] <= 3).sum())
        if small:
            text += (
                f" The rates of the {small:,} teams with 1–3 judged promises are shrunk "
                f"towards the mean of {_pct(teams['prior_mean'].iloc[0])} (raw rate beside)."
            )
        out.append(
            Finding(
                LENS,
                "teams",
                text,
                value=float(len(flagged)),
                n=len(teams),
                table="promises_integrity",
                where={"dimension": "team", "flagged": True}
                if len(flagged)
                else {"dimension": "team"},
                severity="attention" if len(flagged) else "info",
            )
        )
    if make_right.num_rows:
        mr = make_right.to_pandas()
        top = mr.head(10)
        stake = top["stake"].sum() if "stake" in top and top["stake"].notna().any() else math.nan
        cur = top["currency"].dropna().iloc[0] if top["currency"].notna().any() else ""
        extra = (
            f"; the 10 with most at stake are worth {stake:,.2f} {cur}".rstrip()
            if stake == stake
            else ""
        )
        out.append(
            Finding(
                LENS,
                "make_right",
                f"{len(mr):,} of {broken:,} broken promises have had no apology or credit{extra}.",
                value=float(len(mr)),
                n=broken,
                table="promises_make_right",
                severity="action",
            )
        )
    if at_risk.num_rows:
        ar = at_risk.to_pandas()
        risky = ar[ar["status"] == "at_risk"]
        soon = int((risky["time_left_hours"] <= 24).sum())
        out.append(
            Finding(
                LENS,
                "at_risk",
                f"{len(risky):,} of {len(ar):,} open promises are at risk of being broken; "
                f"{soon:,} of them fall due within 24 hours.",
                value=float(len(risky)),
                n=len(ar),
                table="promises_at_risk",
                where={"status": "at_risk"},
                severity="action" if len(risky) else "info",
            )
        )
    out.extend(_gaming(gaming.to_pandas(), fdr))
    return out


def _gaming(g: pd.DataFrame, fdr: float) -> list[Finding]:
    out: list[Finding] = []
    seen: set[str] = set()
    for dim, noun in (("team", "teams"), ("agent", "agents")):
        d = g[g["dimension"] == dim]
        pad = d[d["padding_flag"]].sort_values("median_promised_vs_norm", ascending=False)
        names_set = set(pad["group"].astype(str))
        if len(pad) and names_set != seen:  # agents who are their own team: said once
            seen = names_set
            names = ", ".join(
                f"{r['group']} (median {r['median_promised_vs_norm']:.1f}× the norm, "
                f"n = {int(r['promises']):,})"
                for _, r in pad.head(5).iterrows()
            )
            out.append(
                Finding(
                    LENS,
                    f"padding_{dim}",
                    f"{len(pad)} {noun} give themselves more time than the norm for their kinds "
                    f"of promise (padded deadlines, FDR {_pct(fdr)}): {names}.",
                    value=float(len(pad)),
                    n=len(d),
                    table="promises_gaming",
                    where={"dimension": dim, "padding_flag": True},
                    severity="attention",
                )
            )
        reneg = d[d["renegotiation_flag"]]
        if len(reneg):
            out.append(
                Finding(
                    LENS,
                    f"renegotiation_{dim}",
                    f"{len(reneg)} {noun} move due dates more often than expected "
                    f"(FDR {_pct(fdr)}): "
                    + ", ".join(
                        reneg.sort_values("renegotiated_share", ascending=False)
                        .head(5)["group"]
                        .astype(str)
                    )
                    + ".",
                    value=float(len(reneg)),
                    n=len(d),
                    table="promises_gaming",
                    where={"dimension": dim, "renegotiation_flag": True},
                    severity="attention",
                )
            )
    t = g[g["dimension"] == "team"]
    pauses = int(t["pauses"].sum())
    if pauses:
        after = int(t["pauses_after_customer"].sum())
        out.append(
            Finding(
                LENS,
                "pauses",
                f"{pauses:,} pauses stopped promise clocks; {after:,} "
                f"({_pct(after / pauses)}) started right after a customer message.",
                value=after / pauses,
                n=pauses,
                table="promises_gaming",
                where={"dimension": "team"},
            )
        )
    return out

"""The touch lens's findings: sentences with numbers, each linked to its rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.base import Finding
from sawubona.stats import wilson

LENS = "touch"
#: a template id is flagged when less of its text than this reads as a template
ID_MATCH_FLOOR = 0.9
#: at most this many findings of one kind (teams, template ids)
MAX_EACH = 5


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _count(t: pa.Table, column: str, value: str) -> int:
    return int(pc.sum(pc.equal(t[column], value)).as_py() or 0)


def findings(tables: dict[str, pa.Table], min_recipients: int) -> list[Finding]:
    """Findings over the result tables (see docs/lenses/touch.md)."""
    msgs = tables["touch_messages"]
    out: list[Finding] = []
    templated = _count(msgs, "touch", "templated")
    written = templated + _count(msgs, "touch", "personal")
    if written:
        low, high = wilson(templated, written)
        out.append(
            Finding(
                LENS,
                "templated_share",
                f"{_pct(templated / written)} of the {written:,} messages people wrote were "
                f"templates ({templated:,}; 95% interval {_pct(float(low))}–{_pct(float(high))}).",
                value=templated / written,
                n=written,
                low=float(low),
                high=float(high),
                table="touch_messages",
                where={"touch": "templated"},
            )
        )
    out.extend(_only_machines(tables["touch_customers"], tables["touch_only_machines"]))
    out.extend(_templates(tables["touch_templates"], msgs, min_recipients))
    out.extend(_template_ids(tables["touch_template_ids"]))
    out.extend(_teams(tables["touch_teams"]))
    return out


def _only_machines(customers: pa.Table, only: pa.Table) -> list[Finding]:
    sent = int(pc.sum(pc.greater(customers["outbound"], 0)).as_py() or 0)
    if not sent:
        return []
    k = only.num_rows
    wrote = int(pc.sum(only["wrote_to_us"]).as_py() or 0)
    low, high = wilson(k, sent)
    return [
        Finding(
            LENS,
            "only_machines",
            f"{k:,} of the {sent:,} customers we sent anything ({_pct(k / sent)}) have only "
            f"ever heard from templates, bots, system notices and marketing; {wrote:,} of "
            "them wrote to us and still never got a person.",
            value=k / sent,
            n=sent,
            low=float(low),
            high=float(high),
            table="touch_only_machines",
            severity="attention" if wrote else "info",
        )
    ]


def _templates(templates: pa.Table, msgs: pa.Table, min_recipients: int) -> list[Finding]:
    tpl = templates.filter(templates["is_template"])
    if tpl.num_rows == 0:
        return []
    untagged = int(pc.sum(pc.equal(tpl["with_template_id"], 0)).as_py() or 0)
    is_tpl = pc.equal(msgs["touch"], "templated")
    tpl_msgs = int(pc.sum(is_tpl).as_py() or 0)
    no_id = int(pc.sum(pc.and_(is_tpl, pc.is_null(msgs["template_id"]))).as_py() or 0)
    top = tpl.slice(0, 1).to_pylist()[0]
    text = (
        f"{tpl.num_rows:,} templates found in the text (one wording, names and numbers aside, "
        f"sent to {min_recipients}+ customers); {untagged:,} of them never carry a "
        f"template_id, and "
        f"{no_id:,} of the {tpl_msgs:,} templated messages ({_pct(no_id / max(tpl_msgs, 1))}) "
        f"were recognised from the text alone. The most sent reached "
        f'{top["recipients"]:,} customers: "{_short(top["example"])}"'
    )
    return [
        Finding(
            LENS,
            "templates_found",
            text,
            value=float(tpl.num_rows),
            n=tpl_msgs,
            table="touch_templates",
            where={"is_template": True},
        )
    ]


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _template_ids(ids: pa.Table) -> list[Finding]:
    out: list[Finding] = []
    share = np.asarray(pc.fill_null(ids["share_template_like"], 1.0), dtype=float)
    flagged = np.flatnonzero(share < ID_MATCH_FLOOR)
    for i in flagged[:MAX_EACH]:
        row = ids.slice(int(i), 1).to_pylist()[0]
        unlike = row["with_text"] - row["template_like"]
        out.append(
            Finding(
                LENS,
                "template_id_unlike_text",
                f"Template id {row['template_id']}: {unlike:,} of its {row['with_text']:,} "
                f"messages with text ({_pct(1 - row['share_template_like'])}) read as written "
                "one by one, not as the template: the id may be set on personal messages.",
                value=1 - row["share_template_like"],
                n=row["with_text"],
                table="touch_template_ids",
                where={"template_id": row["template_id"]},
                severity="attention",
            )
        )
    return out


def _teams(teams: pa.Table) -> list[Finding]:
    out: list[Finding] = []
    flagged = teams.filter(teams["above_rest"]).sort_by([("q_value", "ascending")])
    for row in flagged.slice(0, MAX_EACH).to_pylist():
        out.append(
            Finding(
                LENS,
                "team_templates_above_rest",
                f"Team {row['team']}: {_pct(row['template_share'])} of {row['written']:,} "
                f"written messages were templates (95% interval {_pct(row['low'])}–"
                f"{_pct(row['high'])}) against {_pct(row['rest_share'])} in the other teams "
                f"(false-discovery rate q = {row['q_value']:.3f}); a prompt to look, "
                "not a verdict.",
                value=row["template_share"],
                n=row["written"],
                low=row["low"],
                high=row["high"],
                table="touch_teams",
                where={"team": row["team"]},
                severity="attention",
            )
        )
    return out

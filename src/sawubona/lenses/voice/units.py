"""Units of the review queue (agents and teams) and the shape of an honesty signal row."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

Array = npt.NDArray[np.float64]

#: highest score of the "bottom" band per instrument (NPS detractors, CSAT 1–2, CES 1–3)
BOTTOM_MAX = {"nps": 6, "csat": 2, "ces": 3}
#: unit kind → (column in the survey summaries, column in the journey cube)
UNIT_COLUMNS = {"agent": ("agent_id", "journey_agent"), "team": ("team", "journey_team")}

HONESTY_COLUMNS = (
    "unit_kind",
    "unit",
    "team",
    "signal",
    "instrument",
    "statistic_name",
    "statistic",
    "observed",
    "expected",
    "n",
    "p_value",
    "q_value",
    "flagged",
    "prompt",
    "rows_table",
    "rows_where",
)


def pct(k: float, n: float) -> str:
    return f"{100 * k / n:.0f}% ({k:.0f} of {n:.0f})" if n > 0 else "none"


def teams_of(frame: pd.DataFrame, agent_col: str, team_col: str) -> dict[str, str]:
    """Each agent's most frequent team (weighted by ``rows`` or ``journeys`` when present)."""
    f = frame.dropna(subset=[agent_col, team_col])
    if f.empty:
        return {}
    weight = next((c for c in ("rows", "journeys", "messages") if c in f.columns), None)
    w = f[weight].astype(float) if weight else pd.Series(1.0, index=f.index)
    counts = w.groupby([f[agent_col].astype(str), f[team_col].astype(str)]).sum()
    best = (
        counts.rename("w")
        .reset_index()
        .sort_values(["w", team_col], ascending=[False, True], kind="stable")
    )
    best = best.drop_duplicates(agent_col)
    return dict(zip(best[agent_col], best[team_col], strict=True))


def signal_frame(
    kind: str,
    units: Any,
    teams: dict[str, str],
    signal: str,
    statistic_name: str | list[str],
    statistic: npt.ArrayLike,
    p: npt.ArrayLike,
    n: npt.ArrayLike,
    prompts: list[str],
    rows_table: str,
    wheres: list[dict[str, Any]],
    observed: npt.ArrayLike,
    expected: npt.ArrayLike,
    instrument: str | None = None,
) -> pd.DataFrame:
    names = [str(u) for u in units]
    return pd.DataFrame(
        {
            "unit_kind": kind,
            "unit": names,
            "team": [teams.get(u) if kind == "agent" else u for u in names],
            "signal": signal,
            "instrument": instrument,
            "statistic_name": statistic_name,
            "statistic": np.asarray(statistic, float),
            "observed": np.asarray(observed, float),
            "expected": np.asarray(expected, float),
            "n": np.asarray(n, float),
            "p_value": np.asarray(p, float),
            "prompt": prompts,
            "rows_table": rows_table,
            "rows_where": [json.dumps(w, sort_keys=True) for w in wheres],
        }
    )


def cells(df: pd.DataFrame, unit: str, a: str, b: str, weight: str) -> pd.DataFrame:
    """Per unit, the 2×2 counts of boolean columns ``a`` × ``b`` as columns tt, tf, ft, ff."""
    g = df.groupby([unit, a, b], observed=True)[weight].sum()
    wide = g.unstack([a, b], fill_value=0)
    out = pd.DataFrame(index=wide.index)
    for x, label_x in ((True, "t"), (False, "f")):
        for y, label_y in ((True, "t"), (False, "f")):
            out[label_x + label_y] = wide[(x, y)] if (x, y) in wide.columns else 0
    return out.astype(float)

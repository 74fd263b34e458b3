"""Two writer processes and a running analysis on one worklist: no lost or duplicated update."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from sawubona.work import Worklist

N = 60

SETUP = """
import datetime as dt, sys
from sawubona.work import Item, Worklist
AS_OF = dt.datetime(2025, 6, 30)
def items(tag):
    return [Item(key=f"gift:best_plan:C{i}:p", kind="gift", subkind="best_plan",
                 customer_id=f"C{i}", title="t", why=f"why {tag}", wording="w",
                 urgency="low", cause="c") for i in range(__N__)]
""".replace("__N__", str(N))

WRITER = (
    SETUP
    + """
import json, random
from sawubona.work import WorkError, item_id_of
me, seed = sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
ok = []
with Worklist(sys.argv[1], timeout=120) as wl:
    order = list(range(__N__)); rng.shuffle(order)
    for i in order:
        iid = item_id_of(f"gift:best_plan:C{i}:p")
        for op in ("assign", "close"):
            try:
                if op == "assign":
                    wl.assign(iid, me, who=me)
                elif (i + seed) % 2:
                    wl.done(iid, f"done by {me}", who=me)
                else:
                    wl.dismiss(iid, f"dismissed by {me}", who=me)
                ok.append([iid, op])
            except WorkError:
                pass
print(json.dumps(ok))
""".replace("__N__", str(N))
)

ANALYZE = (
    SETUP
    + """
import json
counts = []
with Worklist(sys.argv[1], timeout=120) as wl:
    for run in range(15):
        counts.append(wl.refresh(items(run), AS_OF))
print(json.dumps(counts))
"""
)


def test_two_writers_and_a_running_analysis(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb.work.sqlite"
    with Worklist(path) as wl:
        import datetime as dt

        from sawubona.work import Item

        wl.refresh(
            [
                Item(
                    key=f"gift:best_plan:C{i}:p",
                    kind="gift",
                    subkind="best_plan",
                    customer_id=f"C{i}",
                    title="t",
                    why="why",
                    wording="w",
                    urgency="low",
                    cause="c",
                )
                for i in range(N)
            ],
            dt.datetime(2025, 6, 30),
        )
    scripts = {name: tmp_path / f"{name}.py" for name in ("writer", "analyze")}
    scripts["writer"].write_text(textwrap.dedent(WRITER))
    scripts["analyze"].write_text(textwrap.dedent(ANALYZE))
    procs = [
        subprocess.Popen(
            [sys.executable, str(scripts["analyze"]), str(path)], stdout=subprocess.PIPE, text=True
        ),
        subprocess.Popen(
            [sys.executable, str(scripts["writer"]), str(path), "ana", "1"],
            stdout=subprocess.PIPE,
            text=True,
        ),
        subprocess.Popen(
            [sys.executable, str(scripts["writer"]), str(path), "bob", "2"],
            stdout=subprocess.PIPE,
            text=True,
        ),
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    refreshes = json.loads(outs[0])
    done_ops = {"ana": json.loads(outs[1]), "bob": json.loads(outs[2])}
    with Worklist(path) as wl:
        items = wl.items(state=None, include_holdout=True)
        events = wl.events()
    assert len(items) == N and len({i["dedup_key"] for i in items}) == N  # no duplicate item
    assert sum(r["new"] for r in refreshes) == 0 and sum(r["expired"] for r in refreshes) == 0
    by_item: dict[str, list[dict]] = {}
    for e in events:
        by_item.setdefault(e["item_id"], []).append(e)
    for who, ops in done_ops.items():
        # every successful write is recorded exactly once, by its author
        mine = [e for e in events if e["who"] == who]
        assert len(mine) == len(ops), who
    for item in items:
        chain = by_item[item["item_id"]]
        # no lost update: each event starts from the state the previous one left
        for prev, nxt in itertools.pairwise(chain):
            assert nxt["from_state"] == prev["to_state"], chain
        assert chain[-1]["to_state"] == item["state"]
        assert item["state"] in ("done", "dismissed")  # one writer closed it; nobody reopened it
        closes = [e for e in chain if e["event"] in ("done", "dismissed")]
        assert len(closes) == 1
        # version counts every change of the row: creation + state changes + analysis updates
        assert item["version"] == len(chain)
    # the analysis kept updating open items while the writers worked
    assert sum(r["updated"] for r in refreshes) > 0

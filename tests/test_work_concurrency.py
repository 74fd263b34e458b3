"""Two writer processes and a running analysis on one worklist: no lost or duplicated update."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
import textwrap
import time
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
import os, time
for _ in range(1200):  # wait (at most a minute) for the analysis to be under way
    if os.path.exists(sys.argv[1] + ".started"):
        break
    time.sleep(0.05)
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
        if run == 0:  # the writers start once the analysis is under way
            open(sys.argv[1] + ".started", "w").close()
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


REAL_WRITER = """
import json, os, sys, time
from sawubona.work import WorkError, Worklist
path, me, ids, stop = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
ok = []
with Worklist(path, timeout=120) as wl:
    for n, iid in enumerate(ids):  # paced, and on until the analysis has finished
        if os.path.exists(stop):
            break
        try:
            wl.assign(iid, me, who=me)
            ok.append([iid, "assign"])
            time.sleep(0.1)
            if n % 2:
                wl.done(iid, f"called them ({me})", who=me)
            else:
                wl.dismiss(iid, f"not now ({me})", who=me)
            ok.append([iid, "close"])
        except WorkError:
            pass
        time.sleep(0.1)
print(json.dumps(ok))
"""


def test_two_writers_and_a_real_analyze_process(demo_store: Path, tmp_path: Path) -> None:
    """The same, with `sawubona analyze` itself running over the store meanwhile."""
    import shutil

    from sawubona.work import worklist_path

    store = tmp_path / "s.duckdb"
    shutil.copy(demo_store, store)
    shutil.copy(worklist_path(demo_store), worklist_path(store))
    with Worklist(worklist_path(store)) as wl:
        before = {i["item_id"]: i for i in wl.items(state=None, include_holdout=True)}
        open_ids = [i["item_id"] for i in wl.items() if i["state"] == "open"]
    assert len(open_ids) >= 200
    script, stop = tmp_path / "writer.py", tmp_path / "stop"
    script.write_text(REAL_WRITER)
    analysis = subprocess.Popen(
        [sys.executable, "-m", "sawubona", "analyze", "--store", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(worklist_path(store)),
                who,
                json.dumps(ids),
                str(stop),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for who, ids in (("ana", open_ids), ("bob", open_ids[::-1]))
    ]
    assert analysis.wait(timeout=900) == 0, analysis.stderr.read() if analysis.stderr else ""
    finished = time.time()
    stop.touch()
    outs = [w.communicate(timeout=600)[0] for w in writers]
    assert all(w.returncode == 0 for w in writers), outs
    ops = {who: json.loads(out) for who, out in zip(("ana", "bob"), outs, strict=True)}
    with Worklist(worklist_path(store)) as wl:
        after = {i["item_id"]: i for i in wl.items(state=None, include_holdout=True)}
        events = wl.events()
    # the writers were still writing when the analysis refreshed the worklist (its last step)
    last = max(dt.datetime.fromisoformat(e["at"]) for e in events if e["who"] in ops)
    assert last.replace(tzinfo=dt.UTC).timestamp() >= finished - 2.0
    touched = {iid for done in ops.values() for iid, _ in done}
    assert touched, "the writers changed items"
    assert len({i["dedup_key"] for i in after.values()}) == len(after)  # no duplicates
    assert set(before) <= set(after)  # the re-analysis of the same data lost no item
    for who, done in ops.items():
        assert len([e for e in events if e["who"] == who]) == len(done), who
    for iid in touched:
        chain = [e for e in events if e["item_id"] == iid]
        for prev, nxt in itertools.pairwise(chain):
            assert nxt["from_state"] == prev["to_state"], chain
        closes = [e for e in chain if e["event"] in ("done", "dismissed")]
        assert len(closes) == 1, chain  # closed once, by one of the two writers
        assert after[iid]["state"] == closes[0]["to_state"]  # and analyze did not reopen it

"""Privacy: `forget` erases a customer everywhere (tables and file bytes), pseudonymised
exports use keyed hashes, and nothing personal reaches a log."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pyarrow.csv as pacsv
import pytest

import sawubona
from conftest import HOSTILE_NAME
from sawubona import privacy, schema

HOSTILE_ID = "X<script>1"
HOSTILE_EMAIL = "eve@example.com"
OTHER = "C0000002"
GHOST = "GHOST-7"
GHOST_NAME = "Ghostly Quarantina"
CLI = [sys.executable, "-m", "sawubona"]


def _plant(folder: Path) -> None:
    """Rows that put the hostile customer in the quarantine and in another customer's text,
    and a customer who exists only in the quarantine."""
    folder.mkdir()
    (folder / "surveys.csv").write_text(
        "survey_id,customer_id,instrument,responded_at,score,comment\n"
        '"xs-bad","X<script>1",nps,2024-06-02,not-a-score,"call me, Eve"\n',
        encoding="utf-8",
    )
    (folder / "touchpoints.csv").write_text(
        "touchpoint_id,customer_id,at,channel,direction,text\n"
        f"tp-planted,{OTHER},2024-06-03T10:00:00,email,inbound,"
        f'"my neighbour {HOSTILE_EMAIL} said hi"\n',
        encoding="utf-8",
    )
    (folder / "customers.csv").write_text(
        f"customer_id,name,email,joined_at\n{GHOST},{GHOST_NAME},ghost@example.org,not-a-date\n",
        encoding="utf-8",
    )


@pytest.fixture
def planted(demo_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "planted.duckdb"
    shutil.copy(demo_store, path)
    _plant(tmp_path / "plant")
    with sawubona.open(path) as s:
        report = s.ingest(tmp_path / "plant")
        assert report.rows_quarantined == 2 and report.rows_loaded == 1, report.to_dict()
    return path


def _text_hits(store: sawubona.Store, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every text cell in the store that contains a needle."""
    hits = []
    con = store._con
    for table in store.tables():
        cols = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND table_name = ? AND data_type = 'VARCHAR'",
            [table],
        ).fetchall()
        for (col,) in cols:
            for needle in needles:
                n = con.execute(
                    f'SELECT count(*) FROM "{table}" WHERE strpos(lower("{col}"), lower(?)) > 0',
                    [needle],
                ).fetchall()[0][0]
                if n:
                    hits.append((table, col, needle))
    return hits


def _file_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    wal = path.with_name(path.name + ".wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def _rows_of(store: sawubona.Store, customer_id: str) -> dict[str, int]:
    out = {}
    for t in schema.TABLES:
        if "customer_id" in t.column_names:
            out[t.name] = store._con.execute(
                f'SELECT count(*) FROM "{t.name}" WHERE customer_id = ?', [customer_id]
            ).fetchall()[0][0]
    return out


def test_forget_erases_every_trace_and_nothing_else(planted: Path) -> None:
    needles = [HOSTILE_ID, HOSTILE_EMAIL, HOSTILE_NAME]
    with sawubona.open(planted) as s:
        before = s.counts()
        other_before = _rows_of(s, OTHER)
        # The planted data is really there (so the searches below can fail).
        found = {n for _, _, n in _text_hits(s, needles)}
        assert found == set(needles)
        assert s.count("quarantine") == 2
    assert HOSTILE_ID.encode() in _file_bytes(planted)

    with sawubona.open(planted) as s:
        receipt = privacy.forget(s, HOSTILE_ID)
        after = s.counts()
        assert _text_hits(s, needles) == []
        # The other customer keeps every row; only the planted mention is redacted.
        assert _rows_of(s, OTHER) == other_before
        text = s._con.execute(
            "SELECT text FROM touchpoints WHERE touchpoint_id = 'tp-planted'"
        ).fetchall()
        assert text == [(f"my neighbour {privacy.REDACTED} said hi",)]
        remaining_ghost = s._con.execute(
            "SELECT count(*) FROM quarantine WHERE raw LIKE '%GHOST-7%'"
        ).fetchall()[0][0]
        assert remaining_ghost == 1
    assert receipt.rewritten
    # The receipt is exact: one customer row, the planted survey and its quarantined twin.
    assert receipt.removed["customers"] == 1
    assert receipt.removed["surveys"] == 1
    assert receipt.removed["quarantine"] == 1
    assert receipt.redacted == {"touchpoints.text": 1}
    for name, n in before.items():
        assert after[name] == n - receipt.removed.get(name, 0), name
    assert sum(receipt.removed.values()) == sum(before.values()) - sum(after.values())
    # And the file's bytes no longer hold the customer.
    data = _file_bytes(planted)
    for needle in needles:
        assert needle.encode() not in data, needle
    assert not planted.with_name(planted.name + ".forget-tmp").exists()


def test_forget_reaches_a_customer_known_only_to_the_quarantine(planted: Path) -> None:
    with sawubona.open(planted) as s:
        before = s.counts()
        receipt = privacy.forget(s, GHOST)
        assert receipt.removed == {"quarantine": 1}
        assert _text_hits(s, [GHOST, GHOST_NAME, "ghost@example.org"]) == []
        after = s.counts()
    assert after == {**before, "quarantine": before["quarantine"] - 1}
    assert GHOST_NAME.encode() not in _file_bytes(planted)


def test_forget_an_unknown_id_changes_nothing(planted: Path) -> None:
    with sawubona.open(planted) as s:
        before = s.counts()
        receipt = privacy.forget(s, "C")  # a prefix of every id: whole-token matching only
        assert receipt.total == 0 and not receipt.rewritten
        assert s.counts() == before


def test_forget_cli_prints_a_receipt(planted: Path) -> None:
    res = subprocess.run(
        [*CLI, "forget", OTHER, "--store", str(planted), "--yes", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    receipt = json.loads(res.stdout)
    assert receipt["customer_id"] == OTHER and receipt["removed"]["customers"] == 1
    assert receipt["removed"]["touchpoints"] >= 1 and receipt["file_rewritten"] is True
    with sawubona.open(planted, read_only=True) as s:
        assert sum(_rows_of(s, OTHER).values()) == 0
    again = subprocess.run(
        [*CLI, "forget", OTHER, "--store", str(planted), "--yes"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and "holds nothing about customer" in again.stdout


def _hash(key: bytes, value: str) -> str:
    # Reference: RFC 2104 HMAC with SHA-256, first 128 bits as hex.
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def test_pseudonymised_export_uses_keyed_hashes(demo_store: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key = b"k" * 8 + os.urandom(24).hex().encode()
    key_file.write_bytes(key + b"\n")
    out = tmp_path / "out"
    res = subprocess.run(
        [
            *CLI,
            "export",
            "--store",
            str(demo_store),
            "--out",
            str(out),
            "--format",
            "csv",
            "--pseudonymise",
            "--key-file",
            str(key_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert not (out / "quarantine.csv").exists()
    with sawubona.open(demo_store, read_only=True) as s:
        ids = sorted(r[0] for r in s._con.execute("SELECT customer_id FROM customers").fetchall())
        journey_owner = dict(
            s._con.execute("SELECT journey_id, customer_id FROM journeys").fetchall()
        )
    customers = pacsv.read_csv(out / "customers.csv").to_pydict()
    assert sorted(customers["customer_id"]) == sorted(_hash(key, i) for i in ids)
    assert set(customers["name"]) == {None} and set(customers["email"]) == {None}
    journeys = pacsv.read_csv(out / "journeys.csv").to_pydict()
    # Same id, same pseudonym in every table: joins still work.
    pairs = set(zip(journeys["journey_id"], journeys["customer_id"], strict=True))
    assert pairs == {(_hash(key, j), _hash(key, c)) for j, c in journey_owner.items()}
    # No original id, name or e-mail is left in any exported file.
    blob = b"".join(p.read_bytes() for p in out.iterdir())
    for needle in (ids[0], ids[-1], HOSTILE_ID, HOSTILE_EMAIL, "example.com"):
        assert needle.encode() not in blob, needle


def test_pseudonymise_refuses_without_a_key(demo_store: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != privacy.KEY_ENV}
    res = subprocess.run(
        [
            *CLI,
            "export",
            "--store",
            str(demo_store),
            "--out",
            str(tmp_path / "o"),
            "--pseudonymise",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 1
    assert res.stderr.strip().startswith("Error: --pseudonymise needs a secret key")
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()
    (tmp_path / "short").write_text("abc")
    with pytest.raises(sawubona.SawubonaError, match="at least 16"):
        privacy.load_key(tmp_path / "short")
    os.environ[privacy.KEY_ENV] = "0123456789abcdef-env"
    try:
        assert privacy.load_key() == b"0123456789abcdef-env"
    finally:
        del os.environ[privacy.KEY_ENV]
    assert privacy.pseudonym(b"a" * 16, "C1") != privacy.pseudonym(b"b" * 16, "C1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_personal_reaches_a_log(tmp_path: Path) -> None:
    """ingest, analyze and serve with --debug on a world with a planted name and e-mail:
    neither appears in any output, log table or server log."""
    from sawubona.demo import generate

    name, email = "Zebedee Quarkwhistle", "zebedee.quark@planted.example"
    generate(tmp_path / "world", world="cafe", size=300, seed=3)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "customers.csv").write_text(
        f"customer_id,name,email,joined_at\nZQ1,{name},{email},2024-01-01\n"
        f"ZQ2,{name},{email},yesterday-ish\n",  # quarantined: its raw line holds both
        encoding="utf-8",
    )
    store = tmp_path / "s.duckdb"
    outputs = []
    for args in (
        ["ingest", str(tmp_path / "world"), str(extra)],
        ["analyze"],
        ["customer", "ZQ1"],
        ["tables"],
    ):
        res = subprocess.run(
            [*CLI, "--debug", *args, "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        outputs.append(res.stdout + res.stderr)
        if args[0] != "customer":
            assert res.returncode == 0, res.stderr
    # The portrait is a view the user asked for (it shows the name); every other output
    # is a log of work done and must not hold it.
    assert name in outputs[2]
    for out in (outputs[0], outputs[1], outputs[3]):
        assert name not in out and email not in out and "quarkwhistle" not in out.lower()
    port = _free_port()
    server = subprocess.Popen(
        [*CLI, "--debug", "serve", "--store", str(store), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tables", timeout=5)
                break
            except OSError:
                time.sleep(0.1)
        for path in ("/customer/ZQ1", f"/customers?q={quote(email)}", "/api/customers/ZQ1"):
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30).read()
            assert name.encode() in body  # served to the user …
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/customer/{quote(email)}", timeout=30)
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    finally:
        server.terminate()
        served_out, served_err = server.communicate(timeout=30)
    log = (served_out + served_err).decode(errors="replace")
    assert name not in log and email not in log  # … but never logged
    with sawubona.open(store, read_only=True) as s:
        assert s.count("quarantine") >= 1  # the quarantined row holds them (as data) …
        logs = _text_hits(s, [name, email])
    assert {t for t, _, _ in logs} <= {"customers", "quarantine"}  # … and no log table does


def test_forget_erases_the_customer_s_work_items_too(demo_store: Path, tmp_path: Path) -> None:
    from sawubona.work import Worklist, worklist_path

    store = tmp_path / "s.duckdb"
    shutil.copy(demo_store, store)
    shutil.copy(worklist_path(demo_store), worklist_path(store))
    with Worklist(worklist_path(store)) as wl:
        counts = Counter(i["customer_id"] for i in wl.items(state=None, include_holdout=True))
    customer, n = counts.most_common(1)[0]
    assert n >= 1

    def work_bytes() -> bytes:
        files = [p for p in tmp_path.iterdir() if p.name.startswith("s.duckdb.work")]
        return b"".join(p.read_bytes() for p in files)

    assert customer.encode() in work_bytes()  # so the search below can fail
    with sawubona.open(store) as s:
        receipt = privacy.forget(s, customer)
    assert receipt.removed["work_items"] == n
    with Worklist(worklist_path(store)) as wl:
        left = Counter(i["customer_id"] for i in wl.items(state=None, include_holdout=True))
    assert customer not in left
    assert sum(left.values()) == sum(counts.values()) - n  # nobody else's items went
    assert customer.encode() not in work_bytes()

"""Hostile input: Hypothesis over every reader (CSV, JSON Lines, Parquet) and every adapter.

Each example writes a file (or an adapter's folder) full of trouble — random bytes,
truncation, mixed encodings, giant and deeply quoted fields, wrong types, duplicate and
conflicting keys, timestamps at the edges (year 1, year 9999, DST gaps, leap seconds as
text), NaN/inf, negative money — loads it into a fresh store, and checks:

* the load ends with a report or an :class:`~sawubona.InputError` whose message is one
  line (any other exception fails the test: that is a crash);
* per table, rows read = rows loaded + rows quarantined, and the ingest log says the same;
* the store is consistent: each canonical table holds exactly the rows inserted, the
  quarantine exactly the rows quarantined; after an error, nothing at all.

The default run is bounded (about a minute); ``-m slow`` runs the same properties with
many more examples. The number of cases run is printed at the end of the module.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sawubona
import test_adapter_nps_verbatims as nps
import test_adapter_telco_churn as churn
import test_adapter_ticket_log as ticket
import test_adapter_twitter_support as twitter
from conftest import data_root
from sawubona import schema

CASES: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()
QUICK = 10  # examples per property in the default run (about a minute in all)
SLOW = 100  # examples per property under -m slow (run in CI by make test)


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = (
        f"fuzz: {sum(CASES.values())} hostile cases ran "
        f"({', '.join(f'{k} {v}' for k, v in sorted(CASES.items()))}); outcomes: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(OUTCOMES.items()))}"
    )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(line)


# -- hostile cells ------------------------------------------------------------------------

EDGE = [
    "0001-01-01",
    "0001-01-01T00:00:00",
    "9999-12-31",
    "9999-12-31T23:59:59.999999",
    "10000-01-01",
    "0000-00-00",
    "-2024-01-01",
    "2024-03-31T02:30:00",  # a DST gap in Europe
    "2024-03-10T02:30:00-05:00",
    "2024-11-03T01:30:00 America/New_York",
    "2016-12-31T23:59:60Z",  # a leap second, as text
    "2016-12-31 23:59:60",
    "2023-02-29",
    "2024-02-29",
    "1970-01-01T00:00:00+14:00",
    "31/12/1899",
    "12/31/99",
    "1e10",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-1e309",
    "-0",
    "-12.50",
    "\u22125",  # a Unicode minus
    "1,234.56",
    "1.234,56",
    "9" * 400,
    "0x1F",
    "",
    " ",
    "NULL",
    "null",
    "None",
    "N/A",
    "true",
    "VRAI",
    '"',
    '""',
    '"""',
    '"' * 51,
    "'",
    "=cmd|' /C calc'!A0",
    "<script>alert(1)</script>",
    "\x00",
    "\ufeff",
    "\u202eevil",
    "é",
    "a\nb",
    "a\r\nb",
    "\r",
    "a,b;c\td|e",
    "x" * 70_000,  # a giant field
]
CELL = st.one_of(st.sampled_from(EDGE), st.text(max_size=40))
IDS = st.sampled_from(["c1", "c2", "c3", "c1 ", "C1", "", "\u00e91", "1", "1.0"])


def _delimited(rows: list[list[str]], delimiter: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue()


# -- the invariant --------------------------------------------------------------------------


def _one_sentence(message: str) -> None:
    assert message.strip(), "an empty error message"
    assert "\n" not in message.strip(), message
    assert "Traceback" not in message, message


def check_load(
    folder: Path,
    paths: list[Path] | Path,
    *,
    adapter: str | None = None,
    kind: str,
    keep: bool = False,
) -> str:
    """Load into a fresh store and check the invariant; returns 'loaded' or 'refused'."""
    CASES[kind] += 1
    # A file store for the fixed cases (read back afterwards), memory for the generated ones:
    # the same code path, three times faster; the crash tests cover the file itself.
    store = sawubona.open(folder / "fuzz.duckdb" if keep else ":memory:")
    try:
        before = store.counts()
        try:
            report = store.ingest(paths, adapter=adapter)
        except sawubona.InputError as exc:
            _one_sentence(str(exc))
            assert store.counts() == before  # nothing half-loaded
            OUTCOMES["refused"] += 1
            return "refused"
        log = store.query_log("ingest_log", {"load_id": report.load_id}).to_pylist()
        logged: Counter[str] = Counter()
        for row in log:
            assert row["rows_read"] == row["rows_loaded"] + row["rows_quarantined"], row
            logged[row["table_name"]] += row["rows_read"]
        quarantined = 0
        for t in report.tables:
            assert t.rows_read == t.rows_loaded + t.rows_quarantined, t
            assert logged[t.table] == t.rows_read, (t.table, logged)
            assert store.count(t.table) == before[t.table] + t.inserted, t
            assert t.inserted + t.updated + t.unchanged == t.rows_loaded, t
            quarantined += t.rows_quarantined
        assert store.count("quarantine") == before["quarantine"] + quarantined
        for name in schema.TABLE_BY_NAME:  # tables the load did not touch are untouched
            if name not in {t.table for t in report.tables}:
                assert store.count(name) == before[name], name
        OUTCOMES["loaded"] += 1
        return "loaded"
    finally:
        store.close()


def _fuzz(max_examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


# -- generic CSV ----------------------------------------------------------------------------

CSV_TABLES = {
    "customers": ["customer_id", "joined_at", "segment", "name", "email"],
    "surveys": ["survey_id", "customer_id", "instrument", "responded_at", "score", "comment"],
    "journeys": [
        "journey_id",
        "customer_id",
        "kind",
        "started_at",
        "ended_at",
        "value",
        "currency",
    ],
}


@st.composite
def csv_world(draw: st.DrawFn) -> dict[str, bytes]:
    """Files named after canonical tables, with hostile cells, duplicate keys, extra and
    missing fields, mixed encodings, truncation and random bytes."""
    files: dict[str, bytes] = {}
    for table in draw(st.sets(st.sampled_from(sorted(CSV_TABLES)), min_size=1)):
        header = list(CSV_TABLES[table])
        if draw(st.integers(0, 3)) == 0:  # an extra column with a hostile name
            header.append(draw(st.sampled_from(['x"; DROP TABLE customers; --', "_line", ""])))
        rows = []
        for _ in range(draw(st.integers(0, 8))):
            row = [draw(IDS) if c.endswith("_id") else draw(CELL) for c in header]
            if draw(st.integers(0, 9)) == 0:  # a wrong field count
                row = row[: draw(st.integers(0, len(row)))] + draw(st.lists(CELL, max_size=2))
            rows.append(row)
        delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
        text = _delimited([header, *rows], delimiter)
        encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "mixed"]))
        if encoding == "mixed":  # utf-8 with one line in latin-1
            lines = text.split("\n")
            k = draw(st.integers(0, len(lines) - 1))
            data = b"\n".join(
                ln.encode("latin-1", "replace") if i == k else ln.encode("utf-8")
                for i, ln in enumerate(lines)
            )
        else:
            data = text.encode(encoding, "replace")
        mutation = draw(st.sampled_from(["none", "none", "truncate", "bytes", "crlf", "quote"]))
        if mutation == "truncate" and data:
            data = data[: draw(st.integers(0, len(data)))]
        elif mutation == "bytes":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(max_size=60)) + data[at:]
        elif mutation == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif mutation == "quote":  # an opening quote that never closes
            at = data.find(b"\n") + 1
            data = data[:at] + b'"' + data[at:]
        files[f"{table}.csv"] = data
    return files


def _write(folder: Path, files: dict[str, bytes]) -> list[Path]:
    paths = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def _csv_property(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        check_load(folder, _write(folder, files), kind="csv")


@_fuzz(QUICK * 2)
@given(files=csv_world())
def test_csv_hostile(files: dict[str, bytes]) -> None:
    _csv_property(files)


@pytest.mark.slow
@_fuzz(SLOW * 2)
@given(files=csv_world())
def test_csv_hostile_long(files: dict[str, bytes]) -> None:
    _csv_property(files)


@_fuzz(QUICK)
@given(data=st.binary(max_size=2000), name=st.sampled_from(sorted(schema.TABLE_BY_NAME)))
def test_random_bytes_in_any_table_file(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ext = ["csv", "jsonl", "parquet"][len(data) % 3]
        check_load(folder, _write(folder, {f"{name}.{ext}": data}), kind="bytes")


# -- JSON Lines --------------------------------------------------------------------------

JSON_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        CELL,
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def jsonl_file(draw: st.DrawFn) -> bytes:
    cols = CSV_TABLES["surveys"]
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append(draw(st.text(max_size=30)))  # not JSON
        elif kind == 1:
            lines.append(json.dumps(draw(JSON_VALUE)))  # JSON, maybe not an object
        else:
            record = {
                c: draw(IDS) if c.endswith("_id") else draw(st.one_of(JSON_VALUE, CELL))
                for c in cols
                if draw(st.integers(0, 5))
            }
            if draw(st.booleans()):
                record[draw(st.text(max_size=8))] = draw(JSON_VALUE)  # an unknown key
            line = json.dumps(record)  # NaN/Infinity appear as bare words, as Python writes
            if kind == 2:  # a duplicate key in one object
                line = line[:-1] + (', "survey_id": "dup"}' if len(line) > 2 else "}")
            lines.append(line)
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@_fuzz(QUICK)
@given(data=jsonl_file())
def test_jsonl_hostile(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "customers.csv").write_text("customer_id\nc1\nc2\nc3\n", encoding="utf-8")
        check_load(
            folder,
            [folder / "customers.csv", *_write(folder, {"surveys.jsonl": data})],
            kind="jsonl",
        )


# -- Parquet ----------------------------------------------------------------------------

ARROW_COLUMNS = st.sampled_from(
    [
        lambda n, d: pa.array(d.draw(st.lists(CELL, min_size=n, max_size=n)), pa.string()),
        lambda n, d: pa.array(
            d.draw(st.lists(st.integers(-(2**63), 2**63 - 1) | st.none(), min_size=n, max_size=n)),
            pa.int64(),
        ),
        lambda n, d: pa.array(d.draw(st.lists(st.floats() | st.none(), min_size=n, max_size=n))),
        lambda n, d: pa.array(d.draw(st.lists(st.booleans() | st.none(), min_size=n, max_size=n))),
        lambda n, d: pa.array(
            d.draw(st.lists(st.datetimes() | st.none(), min_size=n, max_size=n)), pa.timestamp("us")
        ),
        lambda n, d: pa.array(
            d.draw(st.lists(st.integers(-(10**15), 10**15), min_size=n, max_size=n)),
            pa.timestamp("s"),
        ),
        lambda n, d: pa.array(
            d.draw(st.lists(st.lists(st.integers(0, 9), max_size=2), min_size=n, max_size=n))
        ),
    ]
)


@_fuzz(QUICK)
@given(data=st.data(), n=st.integers(0, 6))
def test_parquet_wrong_types(data: st.DataObject, n: int) -> None:
    cols = CSV_TABLES["journeys"]
    arrays = {}
    for c in cols:
        if data.draw(st.integers(0, 6)):
            make = data.draw(ARROW_COLUMNS)
            arrays[c] = make(n, data)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pq.write_table(
            pa.table(arrays) if arrays else pa.table({"x": pa.nulls(n)}),
            folder / "journeys.parquet",
        )
        check_load(folder, [folder / "journeys.parquet"], kind="parquet")


# -- adapters ---------------------------------------------------------------------------


def _lines_of(text: str) -> list[str]:
    return [ln for ln in text.replace("\r\n", "\n").split("\n") if ln]


def _olist_seed() -> dict[str, str]:
    root = data_root() / "olist"
    if not root.is_dir():
        pytest.skip(f"public data set 'olist' not found at {root} (set SAWUBONA_DATA)")
    seed = {}
    for path in sorted(root.glob("*.csv")):
        with path.open(encoding="utf-8") as fh:
            seed[path.name] = "".join(fh.readline() for _ in range(12))
    return seed


def _megaline_seed() -> dict[str, str]:
    return {
        "megaline_users.csv": "user_id,first_name,last_name,age,city,reg_date,plan,churn_date\n"
        '1000,Anamaria,Bauer,45,"Atlanta, GA MSA",1/24/18,ultimate,\n'
        "1001,Mickey,Wilkerson,28,Seattle,8/13/18,surf,12/18/18\n",
        "megaline_plans.csv": "messages_included,mb_per_month_included,minutes_included,"
        "usd_monthly_pay,usd_per_gb,usd_per_message,usd_per_minute,plan_name\n"
        "50,15360,500,20,10,0.03,0.03,surf\n1000,30720,3000,70,7,0.01,0.01,ultimate\n",
        "megaline_calls.csv": "id,user_id,call_date,duration\n1001_1,1001,8/14/18,0.2\n"
        "1000_1,1000,12/27/18,8.52\n",
        "megaline_messages.csv": "id,user_id,message_date\n1000_1,1000,12/27/18\n",
        "megaline_internet.csv": "id,user_id,session_date,mb_used\n1000_1,1000,12/29/18,89.86\n",
    }


ADAPTER_SEEDS: dict[str, Callable[[], dict[str, str]]] = {
    "telco-churn": lambda: {
        "Telco-Customer-Churn.csv": churn.HEADER
        + "\n"
        + churn._row("7590-VHVEG", "1", "Month-to-month", "29.85", "29.85", "No")
        + "\n"
        + churn._row("5575-GNVDE", "34", "One year", "56.95", "1889.5", "Yes")
        + "\n"
    },
    "twitter-support": lambda: {
        "twcs.csv": "\n".join([twitter.HEADER, *[r.replace("\n", " ") for r in twitter.ROWS[:6]]])
        + "\n"
    },
    "nps-verbatims": lambda: {
        "verbatim.csv": nps.HEADER
        + "28/12/2017 19:34,Order,Promoter,10,Lovely,Q1\n"
        + "01/05/2018 20:23,First Payment,Detractor,0,Nobody called back,other\n"
    },
    "ticket-log": lambda: {
        "helpdesk.csv": ticket.HELPDESK
        + ticket._row(
            "Case 1", "Assign seriousness", "Value 1", "2012/10/09 14:50:17.000", "V7", "W1"
        )
        + ticket._row("Case 1", "Closed", "Value 3", "2012/10/12 08:00:00.000", "V7", "W2")
        + ticket._row("Case 2", "Wait", "Value 1", "2012/11/02 10:00:00.000", "V8", "W1")
    },
    "online-retail": lambda: {
        "online_retail_II.csv": "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,"
        "Customer ID,Country\n"
        "489434,85048,GLASS BALL,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n"
        "C489449,22087,PAPER BUNTING,-12,2009-12-03 10:33:00,2.95,13085.0,United Kingdom\n"
        "489435,22350,CAT BOWL,4,2009-12-01 07:46:00,2.55,,United Kingdom\n"
    },
    "telecom-usage": _megaline_seed,
    "olist": _olist_seed,
}


@st.composite
def mutations(draw: st.DrawFn) -> list[tuple[int, int, int, str, str]]:
    """(file, line, field, kind, value) edits to apply to an adapter's seed folder."""
    kinds = st.sampled_from(["cell", "cell", "cell", "dup", "drop", "bytes", "truncate"])
    return draw(
        st.lists(
            st.tuples(st.integers(0, 20), st.integers(0, 40), st.integers(0, 30), kinds, CELL),
            min_size=1,
            max_size=6,
        )
    )


def _mutate(seed: dict[str, str], edits: list[tuple[int, int, int, str, str]]) -> dict[str, bytes]:
    files = {name: list(csv.reader(io.StringIO(text))) for name, text in seed.items()}
    names = sorted(files)
    raw: dict[str, bytes] = {}
    for f, line, field, kind, value in edits:
        name = names[f % len(names)]
        rows = files[name]
        if len(rows) < 2:
            continue
        r = 1 + line % (len(rows) - 1)  # never the header: that is a refusal, tested elsewhere
        if kind == "cell" and rows[r]:
            rows[r][field % len(rows[r])] = value
        elif kind == "dup":  # the same key again, maybe with a conflicting value
            rows.insert(r, list(rows[r]))
            if rows[r] and len(rows[r]) > 1:
                rows[r][1 + field % (len(rows[r]) - 1)] = value
        elif kind == "drop" and rows[r]:
            del rows[r][field % len(rows[r])]
        elif kind in ("bytes", "truncate"):
            raw[name] = kind.encode() + value.encode("utf-8", "surrogatepass")
    out = {}
    for name, rows in files.items():
        data = _delimited(rows).encode("utf-8", "surrogatepass")
        if raw.get(name, b"").startswith(b"truncate"):
            data = data[
                : max(len(data.split(b"\n", 1)[0]) + 1, len(data) * (len(raw[name]) % 7) // 7)
            ]
        elif raw.get(name, b"").startswith(b"bytes"):
            data = data + raw[name][5:] + b"\xff\xfe\xc3\x28"
        out[name] = data
    return out


def _adapter_property(adapter: str, edits: list[tuple[int, int, int, str, str]]) -> None:
    seed = ADAPTER_SEEDS[adapter]()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        _write(folder, _mutate(seed, edits))
        check_load(Path(tmp), folder, adapter=adapter, kind=f"adapter {adapter}")


@pytest.mark.parametrize("adapter", sorted(ADAPTER_SEEDS))
def test_adapter_hostile(adapter: str) -> None:
    ADAPTER_SEEDS[adapter]()  # a missing public data set skips here, naming it

    @_fuzz(QUICK // 2 + 1)
    @given(edits=mutations())
    def run(edits: list[tuple[int, int, int, str, str]]) -> None:
        _adapter_property(adapter, edits)

    run()


@pytest.mark.slow
@pytest.mark.parametrize("adapter", sorted(ADAPTER_SEEDS))
def test_adapter_hostile_long(adapter: str) -> None:
    ADAPTER_SEEDS[adapter]()

    @_fuzz(SLOW)
    @given(edits=mutations())
    def run(edits: list[tuple[int, int, int, str, str]]) -> None:
        _adapter_property(adapter, edits)

    run()


# -- fixed hostile files ------------------------------------------------------------------


def test_ten_megabyte_single_lines(tmp_path: Path) -> None:
    """A 10 MB comment loads; a 10 MB line of junk with no line end is quarantined or refused."""
    big = "w" * (10 * 1024 * 1024)
    (tmp_path / "customers.csv").write_text("customer_id\nc1\n", encoding="utf-8")
    (tmp_path / "surveys.csv").write_text(
        "survey_id,customer_id,instrument,responded_at,score,comment\n"
        f"s1,c1,nps,2024-01-01,9,{big}\ns2,c1,nps,2024-01-02,NaN,x\n",
        encoding="utf-8",
    )
    assert check_load(
        tmp_path, [tmp_path / "customers.csv", tmp_path / "surveys.csv"], kind="10MB", keep=True
    )
    with sawubona.open(tmp_path / "fuzz.duckdb", read_only=True) as s:
        comment = s._con.execute("SELECT length(comment) FROM surveys").fetchall()
        assert comment == [(len(big),)]  # kept whole; the NaN score is quarantined
        assert s.count("quarantine") == 1
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "customers.csv").write_bytes(
        b"customer_id,segment\n" + b'"' + b"q" * (10 * 1024 * 1024)
    )
    check_load(junk, [junk / "customers.csv"], kind="10MB")


def test_nan_inf_and_negative_money_are_quarantined_not_loaded(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text("customer_id\nc1\n", encoding="utf-8")
    (tmp_path / "journeys.csv").write_text(
        "journey_id,customer_id,kind,started_at,value,currency\n"
        "j1,c1,order,2024-01-01,NaN,EUR\n"
        "j2,c1,order,2024-01-01,inf,EUR\n"
        "j3,c1,order,2024-01-01,-12.50,EUR\n"
        "j4,c1,order,0001-01-01,1,EUR\n"
        "j5,c1,order,9999-12-31T23:59:59,1,EUR\n"
        "j6,c1,order,2016-12-31T23:59:60,1,EUR\n"
        "j7,c1,order,2024-03-31T02:30:00,1,EUR\n"
        "j8,c1,order,2024-01-01,12.50,EUR\n",
        encoding="utf-8",
    )
    check_load(
        tmp_path, [tmp_path / "customers.csv", tmp_path / "journeys.csv"], kind="edges", keep=True
    )
    with sawubona.open(tmp_path / "fuzz.duckdb", read_only=True) as s:
        values = s._con.execute("SELECT journey_id, value FROM journeys").fetchall()
        loaded = dict(values)
        reasons = dict(
            s._con.execute(
                "SELECT line, reason FROM quarantine WHERE table_name = 'journeys'"
            ).fetchall()
        )
    # No NaN, infinity or negative amount reaches the store.
    assert all(v is None or (math.isfinite(v) and v >= 0) for v in loaded.values())
    assert loaded["j8"] == 12.5 and loaded["j7"] == 1  # a DST-gap time is a valid naive time
    assert {2, 3, 4} <= set(reasons), reasons  # NaN, inf, negative
    assert all(r for r in reasons.values())


def test_cli_errors_are_one_sentence_on_hostile_files(tmp_path: Path) -> None:
    """Through the real command: a clear one-line error or a clean load, never a trace."""
    cases = {
        "empty.csv": b"",
        "customers.csv": b"\xff\xfe\x00garbage\x00\x00\n\x01\x02",
        "surveys.parquet": b"PAR1 this is not parquet",
        "journeys.jsonl": b'{"journey_id": "j1"\n[1,2,3]\n\xff\n',
        "weird.xlsx": b"PK\x03\x04",
    }
    for name, data in cases.items():
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / name).write_bytes(data)
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "sawubona",
                "ingest",
                str(folder / name),
                "--store",
                str(folder / "s.duckdb"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        CASES["cli"] += 1
        assert "Traceback" not in res.stderr, (name, res.stderr)
        assert "failed unexpectedly" not in res.stderr, (name, res.stderr)
        if res.returncode:
            assert res.returncode == 1, (name, res.returncode)
            lines = res.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: "), (name, res.stderr)


def test_hostile_header_names_are_data_not_sql(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text(
        'customer_id,"x""; DROP TABLE customers; --",_line,_file,_source,segment\n'
        "c1,a,b,c,d,gold\nc2,e,f,g,h,\n",
        encoding="utf-8",
    )
    assert check_load(tmp_path, [tmp_path / "customers.csv"], kind="edges", keep=True) == "loaded"
    with sawubona.open(tmp_path / "fuzz.duckdb", read_only=True) as s:
        rows = s._con.execute(
            "SELECT customer_id, segment, _source FROM customers ORDER BY 1"
        ).fetchall()
    # the staged line numbers are sawubona's own, not the file's "_line" column
    assert rows == [
        ("c1", "gold", f"{tmp_path / 'customers.csv'}:2"),
        ("c2", None, f"{tmp_path / 'customers.csv'}:3"),
    ]

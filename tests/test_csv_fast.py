"""The fast CSV path (DuckDB's reader) stages exactly what the careful reader stages.

``read_csv`` first tries DuckDB's parallel reader and keeps its result only when
nothing can differ; otherwise it reads the file with Python's ``csv``, which
explains every malformed record. Here every file is staged both ways and the
staged rows (values, ``_file`` and the physical ``_line``), the record count and
the rejects must be identical — for hand-made edge cases, for generated files with
quotes, delimiters, line feeds, carriage returns, blank lines and non-ASCII text
inside fields, and for the real data sets.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sawubona.ingest import readers


def stage(path: Path, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[object, pa.Table, bool]:
    staging = readers.Staging()
    try:
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(readers, "_read_csv_fast", lambda *a, **k: None)
            f = readers.read_csv(path, staging)
        rows = staging.con.sql(f'SELECT * FROM "{f.name}" ORDER BY "_line"').to_arrow_table()
        took = staging.con.sql(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", params=[f"{f.name}__csv"]
        ).fetchall()[0][0]
        summary = (f.rows_read, f.columns, [(r.line, r.rule, r.raw) for r in f.rejects], f.notes)
        return summary, rows, bool(took)
    finally:
        staging.close()


def same_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Assert both readers agree; return whether the fast path was taken."""
    fast_summary, fast_rows, took = stage(path, True, monkeypatch)
    slow_summary, slow_rows, _ = stage(path, False, monkeypatch)
    assert fast_summary == slow_summary
    assert fast_rows.equals(slow_rows), (fast_rows.to_pylist()[:5], slow_rows.to_pylist()[:5])
    return took


CASES = {
    # name: (bytes, whether the fast path takes it: True, False, None = either)
    "plain": (b"a,b,c\n1,2,3\n4,5,6\n", True),
    "crlf": (b"a,b,c\r\n1,2,3\r\n4,5,6\r\n", True),
    "no final newline": (b"a,b\n1,2\n3,4", True),
    "blank lines": (b"a,b\n\n1,2\n\n\n3,4\n\n", True),
    "a crlf blank among lf lines": (b"a,b\n\n1,2\n\r\n\n3,4\n\n", None),
    "quoted newline and quotes": (b'a,b\n1,"two\nlines ""quoted"""\n"x,y",3\n4,5\n', True),
    "quoted crlf": (b'a,b\r\n1,"two\r\nlines"\r\n3,4\r\n', True),
    "empty and quoted empty": (b'a,b,c\n,"",x\n"",,\n,,\n', True),
    "spaces kept": (b"a,b\n  1 , two  \n", True),
    "bom": (b"\xef\xbb\xbfid,name\n1,Z\xc3\xa9\n", True),
    "semicolon": (b"a;b;c\n1;2,5;3\n4;5;6\n", True),
    "non-ascii": ('id,text\n1,Ça va? 日本語 😀\n2,"ñ,ü"\n'.encode(), True),
    "too many fields": (b"a,b\n1,2\n3,4,5\n6,7\n", False),
    "too few fields": (b"a,b,c\n1,2\n3,4,5\n", False),
    "stray quote": (b'a,b\n1,5" screen\n2,3\n', False),
    "unclosed quote": (b'a,b\n1,"open\n2,3\n', False),
    "bad utf-8": (b"a,b\n1,caf\xe9\n2,ok\n", False),
    "spaces-only line": (b"a,b\n1,2\n   \n3,4\n", False),
    "header only": (b"a,b\n", True),
    "header not on line 1": (b"\n\na,b\n1,2\n", False),
    "bare cr inside": (b"a,b\n1,x\ry\n2,3\n", False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_edge_cases_read_the_same_both_ways(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, fast_ok = CASES[case]
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    took = same_both_ways(path, monkeypatch)
    if fast_ok is False:
        assert not took  # the careful reader explains what is wrong
    elif fast_ok and case != "header only":
        assert took


def test_a_long_field_reads_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "long.csv"
    path.write_text("id,text\n1," + "x" * (10 << 20) + "\n2,short\n")
    assert same_both_ways(path, monkeypatch)


FIELD = st.text(alphabet=st.sampled_from(list("abc ,;\"\n\r\t'xyzé日😀0123456789-.")), max_size=12)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.lists(FIELD, min_size=3, max_size=3), max_size=25),
    crlf=st.booleans(),
    blanks=st.lists(st.integers(0, 30), max_size=4),
    final_newline=st.booleans(),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
)
def test_generated_files_read_the_same_both_ways(
    rows: list[list[str]],
    crlf: bool,
    blanks: list[int],
    final_newline: bool,
    quoting: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n", quoting=quoting)
    writer.writerow(["id", "text", "more"])
    lines = []
    for row in rows:
        one = io.StringIO()
        csv.writer(one, lineterminator="\r\n" if crlf else "\n", quoting=quoting).writerow(row)
        lines.append(one.getvalue())
    for at in sorted(blanks, reverse=True):
        lines.insert(min(at, len(lines)), "\r\n" if crlf else "\n")
    text = out.getvalue() + "".join(lines)
    if not final_newline:
        text = text.rstrip("\r\n")
    path = tmp_path / "gen.csv"
    path.write_bytes(text.encode("utf-8"))
    same_both_ways(path, monkeypatch)


@pytest.mark.realdata
def test_real_data_reads_the_same_both_ways(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sorted(shared_data.rglob("*.csv"))
    assert files
    taken = [same_both_ways(p, monkeypatch) for p in files]
    assert all(taken)  # every real export is well-formed, so every one goes the fast way


@pytest.mark.parametrize("block", [1, 2, 3, 7])
def test_record_lines_do_not_depend_on_the_block_size(
    block: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks may cut a CRLF, a quoted field or a blank line anywhere."""
    path = tmp_path / "f.csv"
    path.write_bytes(b'a,b\r\n\r\n1,"x\r\ny"\r\n\n2,""""\r\n\r\n3,4')
    whole = readers.record_lines(path)
    assert whole[0].tolist() == [1, 3, 6, 8] and whole[1]
    monkeypatch.setattr(readers, "SCAN_BLOCK", block)
    small = readers.record_lines(path)
    assert small[0].tolist() == whole[0].tolist() and small[1] == whole[1]

"""The ``sawubona`` command: thin. Each command opens the library, makes a call, renders.

Errors reach the user as ``Error: <one sentence that names the fix>`` with exit
code 1 (2 for usage errors); ``--debug`` (or ``SAWUBONA_DEBUG=1``) shows the trace.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import sawubona
from sawubona import console
from sawubona.errors import SawubonaError, StoreError

app = typer.Typer(
    name="sawubona",
    help="sawubona — I see you. A customer-experience and loyalty engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)

StoreOpt = Annotated[
    Path,
    typer.Option(
        "--store",
        "-s",
        help="The store: a DuckDB file, postgres://user@host:port/db or "
        "spark:local[2]?warehouse=DIR (docs/backends.md).",
        show_default=True,
    ),
]
DEFAULT_STORE = Path("sawubona.duckdb")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print data as JSON.")]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full traces on errors.")] = False,
) -> None:
    if debug:
        os.environ["SAWUBONA_DEBUG"] = "1"


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders to load (not needed with --mapping)."),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    adapter: Annotated[
        str | None,
        typer.Option(
            help="A public format: olist, online-retail, "
            "telco-churn, telecom-usage, twitter-support, "
            "ticket-log, nps-verbatims."
        ),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="A TOML mapping file (write one with `sawubona init`).")
    ] = None,
    allow_orphans: Annotated[
        bool, typer.Option(help="Load rows whose customer, journey or plan is unknown.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Load files into the store: every row is loaded or quarantined with its reason.

    Example: [bold]sawubona ingest exports/ --store shop.duckdb[/bold]
    """
    with sawubona.open(store) as s, console.progress("reading") as update:
        report = s.ingest(
            _paths(paths, mapping),
            adapter=adapter,
            mapping=mapping,
            allow_orphans=allow_orphans,
            progress=update,
        )
        _prepare_portraits(s, update)
    if as_json:
        _print_json(report.to_dict())
    else:
        console.render_ingest(report)


def _prepare_portraits(s: sawubona.Store, update: Any) -> None:
    """Index what portraits look rows up by, after a write (DuckDB; a no-op elsewhere)."""
    from sawubona.portrait import prepare

    update("indexing for portraits", None)
    prepare(s)


@app.command()
def check(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders to check.")] = None,
    store: StoreOpt = DEFAULT_STORE,
    adapter: Annotated[str | None, typer.Option(help="A public format (see ingest).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="A TOML mapping file.")] = None,
    allow_orphans: Annotated[bool, typer.Option(help="Accept unknown references.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate files without loading them; exit 1 if any row would be quarantined.

    References are checked against the store when it exists.
    Example: [bold]sawubona check exports/customers.csv[/bold]
    """
    from sawubona.ingest import ingest as run_ingest

    target = store if store.exists() else Path(":memory:")
    with sawubona.open(target, read_only=store.exists()) as s:
        report = run_ingest(
            s,
            _paths(paths, mapping),
            adapter=adapter,
            mapping=mapping,
            allow_orphans=allow_orphans,
            check_only=True,
        )
    if as_json:
        _print_json(report.to_dict())
    else:
        console.render_ingest(report, checked_only=True)
    if report.rows_quarantined:
        raise SawubonaError(
            f"{report.rows_quarantined:,} of {report.rows_read:,} rows would be quarantined; "
            "fix the rows listed above or load anyway with `sawubona ingest`"
        )


@app.command()
def analyze(
    store: StoreOpt = DEFAULT_STORE,
    lens: Annotated[
        list[str] | None, typer.Option(help="Only this lens (repeat for several).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Analyse as of this date/time (default: the latest event in the "
            "data). A bare date means the end of that day, UTC."
        ),
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option("--set", help="A lens setting, as LENS.NAME=VALUE (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the lenses and write their results into the store.

    Example: [bold]sawubona analyze --lens promises --as-of 2018-08-31[/bold]
    """
    from sawubona.analyze import analyze as run_analyze

    _must_exist(store)
    overrides = {}
    for item in setting or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise SawubonaError(
                f"--set {item!r} is not LENS.NAME=VALUE; e.g. --set promises.at_risk_share=0.8"
            )
        overrides[key.strip()] = value.strip()
    with sawubona.open(store) as s, console.progress("analysing") as update:
        report = run_analyze(s, lens, as_of=as_of, settings=overrides, progress=update)
        _prepare_portraits(s, update)
    if as_json:
        _print_json(report.to_dict())
    else:
        console.render_analyze(report)


@app.command()
def report(
    store: StoreOpt = DEFAULT_STORE,
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path(
        "sawubona-report.html"
    ),
) -> None:
    """Write the report: one self-contained HTML file (works offline, prints).

    Example: [bold]sawubona report --out report.html[/bold]
    """
    from sawubona.report import write_report

    _must_exist(store)
    with sawubona.open(store, read_only=True) as s:
        path = write_report(s, out)
    console.out.print(f"Wrote {path}")


@app.command()
def serve(
    store: StoreOpt = DEFAULT_STORE,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            help="Require this token on every request (needed off 127.0.0.1).",
            envvar="SAWUBONA_TOKEN",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes, each with the store open read-only: more than one "
            "lets requests use more than one core.",
        ),
    ] = 1,
) -> None:
    """Serve the web app (overview, lenses, customers, portraits, JSON API).

    Example: [bold]sawubona serve --store shop.duckdb --port 8765 --workers 2[/bold]
    """
    from sawubona.web import check_bind
    from sawubona.web import serve as run_server

    check_bind(host, token)
    _must_exist(store)
    console.out.print(f"Serving {store} at http://{host}:{port}/ (Ctrl+C to stop)")
    run_server(store, host=host, port=port, token=token, workers=workers)


@app.command()
def customer(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """One customer's portrait: who they are, their story, and what not to do now.

    Example: [bold]sawubona customer C0000042[/bold]
    """
    _must_exist(store)
    with sawubona.open(store, read_only=True) as s:
        p = s.portrait(customer_id)
    if as_json:
        _print_json(p.to_dict())
    else:
        console.render_portrait(p)


@app.command()
def tables(store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """Row counts of every table in the store.

    Example: [bold]sawubona tables --store shop.duckdb[/bold]
    """
    _must_exist(store)
    with sawubona.open(store, read_only=True) as s:
        counts = s.counts()
    if as_json:
        _print_json(counts)
    else:
        console.render_rows(
            f"Tables in {store}", ["table", "rows"], [[k, f"{v:,}"] for k, v in counts.items()]
        )


@app.command()
def quarantine(
    store: StoreOpt = DEFAULT_STORE,
    table: Annotated[str | None, typer.Option(help="Only rows meant for this table.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Rows that were read but not loaded, with their reason and source line.

    Example: [bold]sawubona quarantine --table surveys[/bold]
    """
    _must_exist(store)
    with sawubona.open(store, read_only=True) as s:
        rows = s.query_log("quarantine", {"table_name": table} if table else None)
    data = rows.select(["table_name", "file", "line", "column_name", "reason", "raw"])
    records = data.slice(0, limit).to_pylist()
    if as_json:
        _print_json(records)
        return
    console.render_rows(
        f"Quarantine: {rows.num_rows:,} rows{' for ' + table if table else ''}"
        f"{f' (first {limit})' if rows.num_rows > limit else ''}",
        ["table", "where", "column", "reason", "raw"],
        [
            [
                r["table_name"],
                f"{r['file']}:{r['line']}",
                r["column_name"],
                r["reason"],
                (r["raw"] or "")[:120],
            ]
            for r in records
        ],
    )


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Folder to write into.")],
    store: StoreOpt = DEFAULT_STORE,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    table: Annotated[list[str] | None, typer.Option(help="Only these tables.")] = None,
    pseudonymise: Annotated[
        bool,
        typer.Option(
            "--pseudonymise",
            help="Replace ids with keyed hashes (HMAC-SHA256) and empty personal columns.",
        ),
    ] = False,
    key_file: Annotated[
        Path | None,
        typer.Option(help="Secret key for --pseudonymise (else $SAWUBONA_PSEUDONYM_KEY)."),
    ] = None,
) -> None:
    """Write tables (canonical and results) as Parquet or CSV files.

    Example: [bold]sawubona export --out exported/ --format csv[/bold]
    """
    _must_exist(store)
    if pseudonymise:
        from sawubona import privacy

        key = privacy.load_key(key_file)
        with sawubona.open(store, read_only=True) as s:
            written = privacy.export_pseudonymised(s, out, key, fmt=fmt, tables=table)
    else:
        with sawubona.open(store, read_only=True) as s:
            written = s.export(out, fmt=fmt, tables=table)
    console.render_rows(
        f"Exported to {out}", ["table", "file"], [[k, str(v)] for k, v in written.items()]
    )


@app.command()
def forget(
    customer_id: Annotated[str, typer.Argument(help="The id of the customer to erase.")],
    store: StoreOpt = DEFAULT_STORE,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Erase one customer from every table, result, quarantine row and log; print a receipt.

    Example: [bold]sawubona forget C0000042 --yes[/bold]
    """
    from sawubona import privacy

    _must_exist(store)
    if not yes and not typer.confirm(
        f"Erase everything {store} holds about customer {customer_id}? This cannot be undone"
    ):
        raise SawubonaError("nothing was erased; pass --yes to erase without asking")
    with sawubona.open(store) as s:
        receipt = privacy.forget(s, customer_id)
    if as_json:
        _print_json(receipt.to_dict())
        return
    if not receipt.total:
        console.out.print(f"{store} holds nothing about customer {customer_id}; nothing erased.")
        return
    rows = [[k, f"{v:,} rows removed"] for k, v in sorted(receipt.removed.items())]
    rows += [[k, f"{v:,} cells redacted"] for k, v in sorted(receipt.redacted.items())]
    console.render_rows(
        f"Erased customer {customer_id} from {store} (file rewritten: "
        f"{'yes' if receipt.rewritten else 'no'})",
        ["table", "erased"],
        rows,
    )


@app.command()
def init(
    out: Annotated[Path, typer.Option("--out", help="Where to write the mapping.")] = Path(
        "sawubona.toml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented mapping template (TOML) for every canonical table.

    Example: [bold]sawubona init --out mapping.toml[/bold]
    """
    from sawubona.ingest import template

    if out.exists() and not force:
        raise SawubonaError(f"{out} exists; choose another --out or pass --force")
    out.write_text(template(), encoding="utf-8")
    console.out.print(f"Wrote {out}: edit it, then run `sawubona ingest --mapping {out}`")


@app.command()
def demo(
    world: Annotated[str, typer.Option(help="telco, shop or cafe.")] = "telco",
    size: Annotated[
        str, typer.Option(help="small (10k customers), medium (100k), large (1M).")
    ] = "small",
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 0,
    store: StoreOpt = DEFAULT_STORE,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the generated files (default ./sawubona-demo/WORLD-SIZE-SEED)."
        ),
    ] = None,
    no_serve: Annotated[
        bool,
        typer.Option(
            "--no-serve", help="Stop after the load and the report; do not start the web app."
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8765,
) -> None:
    """Build a demo world with planted truth, load it, analyse it, write the report, serve it.

    Example: [bold]sawubona demo --world shop --size small --no-serve[/bold]
    """
    from sawubona import demo as demo_world

    folder = data or Path("sawubona-demo") / f"{world}-{size}-{seed}"
    _fresh_demo_store(store)
    with console.progress(f"generating the {size} {world} world") as update:
        generated = demo_world.generate(folder, world=world, size=size, seed=seed)
        update("loading")
        with sawubona.open(store) as s:
            loaded = s.ingest(folder, progress=update)
            analysed = s.analyze(progress=update)
            _prepare_portraits(s, update)
            from sawubona.report import write_report

            report_path = write_report(s, "sawubona-report.html")
    console.render_ingest(loaded)
    console.render_analyze(analysed)
    console.out.print(
        f"Demo world: {generated.out_dir} (planted truth in {generated.truth_path}); "
        f"store: {store}; report: {report_path}"
    )
    if not no_serve:
        from sawubona.web import serve as run_server

        console.out.print(f"Serving the web app at http://127.0.0.1:{port}/ (Ctrl+C to stop)")
        run_server(store, port=port)


def _fresh_demo_store(store: Path) -> None:
    """The demo starts from an empty store, but never deletes a store holding other data."""
    if not store.exists():
        return
    with sawubona.open(store, read_only=True) as s:
        files = s.query_log("ingest_log").column("file").to_pylist()
    if any("sawubona-demo" not in str(f) for f in files):
        raise StoreError(
            f"{store} holds data that is not from the demo; pass another --store for the demo"
        )
    store.unlink()
    # the DuckDB write-ahead log, and the worklist kept beside the store (with SQLite's own)
    for suffix in (".wal", ".work.sqlite", ".work.sqlite-wal", ".work.sqlite-shm"):
        store.with_name(store.name + suffix).unlink(missing_ok=True)


def _paths(paths: list[Path] | None, mapping: Path | None) -> list[Path]:
    if not paths and not mapping:
        raise SawubonaError("nothing to load; give files or folders, or --mapping FILE")
    return list(paths or [])


def _must_exist(store: Path) -> None:
    from sawubona.backends import is_url

    if not is_url(store) and not store.exists():
        raise StoreError(
            f"no store at {store}; load data first with `sawubona ingest` or pass --store"
        )


from sawubona.cli_work import work_app  # noqa: E402  (the `sawubona work` commands)

app.add_typer(work_app)


def main() -> None:
    """Console entry point: one-sentence errors, exit 1; traces only with --debug."""
    debug = "--debug" in sys.argv or os.environ.get("SAWUBONA_DEBUG") == "1"
    try:
        app()
    except SawubonaError as exc:
        if debug:
            raise
        console.err.print(f"Error: {exc}", markup=False, highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        console.err.print("Interrupted; nothing was committed by the interrupted step.")
        sys.exit(130)
    except Exception as exc:  # an unexpected failure is a bug: say so, briefly
        if debug:
            raise
        console.err.print(
            f"Error: sawubona failed unexpectedly ({type(exc).__name__}: {exc}); "
            "run again with --debug for the trace and report it",
            markup=False,
            highlight=False,
        )
        sys.exit(1)

"""``sawubona work``: the worklist from the command line (list, show, assign, done, dismiss).

Thin: every command opens the worklist next to the store (``<store>.work.sqlite``)
and calls :mod:`sawubona.work`. Each write records its author (``--author``,
default the OS user).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from sawubona import console
from sawubona.errors import StoreError
from sawubona.work import DONE_KINDS, Worklist, default_author, worklist_path

work_app = typer.Typer(
    name="work",
    help="The worklist: list, show, assign, done, dismiss, outer (causes), impact (did it "
    "help?). Items are made by `sawubona analyze`; their state survives re-analysis.\n\n"
    "Example: [bold]sawubona work list --kind make_right --urgency high[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

StoreOpt = Annotated[
    Path, typer.Option("--store", "-s", help="The store (a DuckDB file).", show_default=True)
]
DEFAULT_STORE = Path("sawubona.duckdb")
AuthorOpt = Annotated[
    str | None, typer.Option("--author", help="Who makes the change (default: the OS user).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print data as JSON.")]


def _open(store: Path) -> Worklist:
    path = worklist_path(store)
    if not path.exists():
        raise StoreError(
            f"no worklist for {store}; run `sawubona analyze --store {store}` to make one"
        )
    return Worklist(path)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _show_item(item: dict[str, object]) -> None:
    console.render_rows(
        f"Work item {item['item_id']}",
        ["field", "value"],
        [
            [k, "" if item[k] is None else str(item[k])]
            for k in (
                "state",
                "kind",
                "subkind",
                "customer_id",
                "urgency",
                "team",
                "owner",
                "title",
                "why",
                "wording",
                "value",
                "cause",
                "evidence",
                "holdout",
                "note",
                "done_kind",
                "link",
            )
        ],
    )


@work_app.command("list")
def list_items(
    store: StoreOpt = DEFAULT_STORE,
    kind: Annotated[str | None, typer.Option(help="Only this kind of item.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner.")] = None,
    urgency: Annotated[str | None, typer.Option(help="high, medium or low.")] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
    state: Annotated[
        list[str] | None, typer.Option(help="States to show (default open and assigned).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many items.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Items to do, most urgent and valuable first.

    Example: [bold]sawubona work list --team delivery --urgency high[/bold]
    """
    with _open(store) as wl:
        states = tuple(state) if state else ("open", "assigned")
        rows = wl.items(
            state=states,
            kind=kind,
            team=team,
            owner=owner,
            urgency=urgency,
            customer_id=customer,
            limit=limit,
        )
        total = wl.count(
            state=states, kind=kind, team=team, owner=owner, urgency=urgency, customer_id=customer
        )
    if as_json:
        _print_json(rows)
        return
    console.render_rows(
        f"Worklist: {total:,} item{'s' if total != 1 else ''}"
        + (f" (first {limit})" if total > limit else ""),
        ["id", "urgency", "kind", "customer", "team", "owner", "state", "title"],
        [
            [
                r["item_id"],
                r["urgency"],
                r["kind"],
                r["customer_id"],
                r["team"] or "",
                r["owner"] or "",
                r["state"],
                r["title"],
            ]
            for r in rows
        ],
    )


@work_app.command()
def show(
    item: Annotated[str, typer.Argument(help="The item's id (or its deduplication key).")],
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """One item: why, suggested wording, evidence, and its history.

    Example: [bold]sawubona work show w3f2a9c1b7d04[/bold]
    """
    with _open(store) as wl:
        data = wl.get(item)
        events = wl.events(item)
    if as_json:
        _print_json({"item": data, "events": events})
        return
    _show_item(data)
    console.render_rows(
        "History",
        ["when", "who", "event", "from", "to", "note"],
        [
            [e["at"], e["who"], e["event"], e["from_state"] or "", e["to_state"], e["note"] or ""]
            for e in events
        ],
    )


@work_app.command()
def assign(
    item: Annotated[str, typer.Argument(help="The item's id.")],
    owner: Annotated[str, typer.Option(help="Who will do it.")],
    team: Annotated[str | None, typer.Option(help="Their team.")] = None,
    store: StoreOpt = DEFAULT_STORE,
    author: AuthorOpt = None,
) -> None:
    """Give an item to a person (and team).

    Example: [bold]sawubona work assign w3f2a9c1b7d04 --owner ana --team care[/bold]
    """
    with _open(store) as wl:
        data = wl.assign(item, owner, team=team, who=author or default_author())
    console.out.print(f"{data['item_id']} assigned to {data['owner']}")


@work_app.command()
def done(
    item: Annotated[str, typer.Argument(help="The item's id.")],
    note: Annotated[str, typer.Option(help="What was actually done.")],
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(DONE_KINDS)}.")] = "other",
    link: Annotated[
        str | None,
        typer.Option(help="The touchpoint or action that shows it: touchpoint:ID or action:ID."),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    author: AuthorOpt = None,
) -> None:
    """Mark an item done, saying what was done.

    Example: [bold]sawubona work done w3f2a9c1b7d04 --note "credited £15" --kind credited[/bold]
    """
    with _open(store) as wl:
        data = wl.done(item, note, who=author or default_author(), done_kind=kind, link=link)
    console.out.print(f"{data['item_id']} done")


@work_app.command()
def dismiss(
    item: Annotated[str, typer.Argument(help="The item's id.")],
    reason: Annotated[str, typer.Option(help="Why it will not be done.")],
    store: StoreOpt = DEFAULT_STORE,
    author: AuthorOpt = None,
) -> None:
    """Close an item without doing it, with the reason.

    Example: [bold]sawubona work dismiss w3f2a9c1b7d04 --reason "asked not to be contacted"[/bold]
    """
    with _open(store) as wl:
        data = wl.dismiss(item, reason, who=author or default_author())
    console.out.print(f"{data['item_id']} dismissed")


@work_app.command()
def outer(store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """The outer loop: which causes keep producing work, and how fast it is handled.

    Example: [bold]sawubona work outer[/bold]
    """
    from sawubona.work.measure import outer_loop

    with _open(store) as wl:
        rows = outer_loop(wl)
    if as_json:
        _print_json(rows)
        return
    console.render_rows(
        "Causes of work, most items first",
        ["kind", "cause", "items", "open", "done", "dismissed", "expired", "median h to handle"],
        [
            [
                r["kind"],
                r["cause"],
                r["items"],
                r["open"] + r["assigned"],
                r["done"],
                r["dismissed"],
                r["expired"],
                "" if r["median_hours_to_handle"] is None else f"{r['median_hours_to_handle']:.1f}",
            ]
            for r in rows[:40]
        ],
    )


@work_app.command()
def impact(
    store: StoreOpt = DEFAULT_STORE,
    horizon: Annotated[float, typer.Option(help="Days after an item appeared.")] = 90.0,
    as_json: JsonOpt = False,
) -> None:
    """Did it help? Handled vs unhandled and held-out items, on what customers did next.

    Example: [bold]sawubona work impact --horizon 90[/bold]
    """
    import sawubona
    from sawubona.work.measure import impact as run_impact

    with _open(store) as wl, sawubona.open(store, read_only=True) as s:
        result = run_impact(s, wl, horizon_days=horizon)
    if as_json:
        _print_json(result)
        return
    rows = []
    for o in result["outcomes"]:
        for label in ("naive", "itt", "per_handled"):
            d = o[label]
            if d is None or d["estimate"] is None:
                continue
            rows.append(
                [
                    o["outcome"],
                    d["label"],
                    f"{d['estimate']:+.3f}",
                    f"{d['low']:+.3f} … {d['high']:+.3f}",
                    f"{d['n_a']} / {d['n_b']}",
                ]
            )
    console.render_rows(
        f"Did it help? {result['measured']} of {result['items']} items are at least "
        f"{horizon:g} days old in the data",
        ["outcome", "comparison", "difference", "95% interval", "n"],
        rows,
    )
    console.out.print(result["caveat"])

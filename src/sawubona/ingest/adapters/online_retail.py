"""UCI Online Retail (a UK online gift retailer's invoice lines) → canonical tables.

Files read: every CSV, Parquet or JSON Lines file in the folder whose name
contains ``retail`` (else every such file in the folder; a file given directly
is read alone; of two files with the same name stem the Parquet one is read).
Both published header variants are accepted, per file:

* Online Retail II (2009–2011, two sheets): ``Invoice, StockCode, Description,
  Quantity, InvoiceDate, Price, Customer ID, Country``;
* the original Online Retail (2010–2011): ``InvoiceNo, StockCode, Description,
  Quantity, InvoiceDate, UnitPrice, CustomerID, Country``.

Excel workbooks are not read: export each sheet to CSV or Parquet first.

Reading the lines:

* ``Customer ID`` is a float in the published Parquet/Excel (``13085.0``); a
  trailing ``.0`` is dropped, so the customer id is ``13085``.
* Quantities and prices are read as numbers (decimal comma detected per file),
  invoice dates in the format that reads most of the file's values
  (``2009-12-01 07:45:00``, ``12/1/2010 8:26``…; two-digit years are read as
  20xx/19xx, never as year 10). The dates reach the store as UTC-naive
  timestamps exactly as printed: the retailer's local (UK) time.
* Several files in one folder are read as one log, but invoices and items are
  formed per file: an invoice present in two files (the II sheets overlap) gives
  two identical journeys, one of which is quarantined as an exact duplicate.

Derivations:

* **customers** — one per distinct customer id over all lines (purchases and
  cancellations: a customer seen only cancelling is still a customer);
  ``segment`` = the country on their first line; ``joined_at`` = the date of
  their first invoice of any kind (the first time the data shows them — the log
  starts on 1 Dec 2009, so earlier customers look as if they joined then).
  Source line = their first line in the (first) file.
* **journeys** — one per invoice that does not start with ``C``, kind
  ``order``, ``desired_outcome`` "receive the order"; ``started_at`` = the
  invoice's earliest date (41 invoices of the II 2009–10 sheet span two
  minutes); ``ended_at`` unknown; ``outcome`` = ``achieved`` (the data holds
  invoices, i.e. goods supplied); ``value`` = Σ quantity × price, in ``GBP``.
  Source line = the invoice's first line.
* **journey_items** — one per (invoice, ``StockCode``) of those invoices:
  ``quantity`` = Σ quantity of its lines, ``unit_price`` = the quantity-weighted
  mean price (Σ quantity × price / Σ quantity, the plain mean when the quantities
  sum to 0), so that quantity × unit_price = the lines' value;
  ``fulfilled`` = true. Non-product codes (``POST`` postage, ``DOT``, ``M``
  manual, ``BANK CHARGES``, ``AMAZONFEE``…) are lines of the invoice and kept as
  items.
* **actions** — cancellations. An invoice starting with ``C`` is not a journey:
  it is a ``refund`` action (``action_id`` = the invoice number, ``at`` = its
  date, ``amount`` = −Σ quantity × price, a positive sum, ``GBP``,
  ``initiated_by`` = ``customer``). The data does not say which order was
  cancelled, so ``journey_id`` is empty and the original order keeps its value
  and outcome.

Quarantined by the adapter (reason in the quarantine table):

* lines with no customer id (guest purchases, and the ``A…`` "Adjust bad debt"
  accounting lines): their invoices (journeys), items and cancellations
  (actions) are quarantined with a reason saying there is **no customer**;
* an invoice whose lines name more than one customer; an invoice or item with a
  quantity or price that is empty or not a number (its value cannot be
  computed);
* a line with no invoice number or no ``StockCode`` (counted under
  ``journey_items``, like records that cannot be read at all: the file's lines
  are counted there; the other tables only aggregate them).

Counts on ``online_retail_ii_2009-2010.parquet`` (525,461 lines): customers
4,383 read and loaded; journeys 24,224 read (invoices not starting with ``C``),
19,215 loaded, 5,009 quarantined with no customer (5,006 guest invoices and 3
bad-debt adjustments); journey_items 502,028 read, 394,987 loaded, 107,041
quarantined with no customer; actions 4,592 read (cancellation invoices), 4,372
loaded, 220 quarantined with no customer.
"""

from __future__ import annotations

from pathlib import Path

from sawubona.errors import InputError
from sawubona.ingest.adapters import date_exprs, derive, number_of, stage, t, text_of
from sawubona.ingest.parse import (
    lit,
    q,
)
from sawubona.ingest.pipeline import Source
from sawubona.ingest.readers import SUFFIXES, StagedFile, Staging

#: canonical role → staged column names of the two header variants
COLUMNS: dict[str, tuple[str, ...]] = {
    "invoice": ("invoice", "invoice_no"),
    "stock_code": ("stock_code",),
    "quantity": ("quantity",),
    "invoice_date": ("invoice_date",),
    "price": ("price", "unit_price"),
    "customer_id": ("customer_id",),
    "country": ("country",),
}

GUEST_ORDER = "no customer id: a guest purchase, which cannot be tied to a customer"
ADJUSTMENT = (
    "no customer id: an accounting adjustment (invoice starting with A, "
    "e.g. 'Adjust bad debt'), not a customer's order"
)
GUEST_ITEM = (
    "no customer id on this invoice (a guest purchase), so its lines cannot be tied to a customer"
)
GUEST_REFUND = "no customer id: a guest's cancellation, which cannot be tied to a customer"


def data_files(folder: Path) -> list[Path]:
    """The files of the log: see the module docstring."""
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise InputError("no such folder; give the folder you downloaded", file=str(folder))
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    named = [p for p in files if "retail" in p.name.lower()]
    files = named or files
    by_stem: dict[Path, Path] = {}
    for p in files:
        key = p.with_suffix("")
        if key not in by_stem or p.suffix.lower() in (".parquet", ".pq"):
            by_stem[key] = p
    if not by_stem:
        excel = any(folder.rglob("*.xls*"))
        hint = "; export each sheet of the Excel workbook to CSV or Parquet" if excel else ""
        raise InputError(
            "the online-retail adapter needs a CSV or Parquet file of invoice lines (named like "
            f"online_retail_ii.csv) in this folder{hint}",
            file=str(folder),
        )
    return sorted(by_stem.values())


class OnlineRetail:
    name = "online-retail"
    title = "UCI Online Retail (II and the original 2010-11 version)"

    def _lines(self, staging: Staging, f: StagedFile) -> str:
        """SELECT of one staged file's lines with normalised names and typed helpers."""
        present = staging.columns(f.name)
        col: dict[str, str] = {}
        for role, names in COLUMNS.items():
            found = next((n for n in names if n in present), None)
            if found is None:
                raise InputError(
                    f"the online-retail adapter needs a column {role} (one of "
                    f"{', '.join(names)} after normalising the header); the header should be "
                    "Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, "
                    "Country (or InvoiceNo … UnitPrice, CustomerID, Country)",
                    file=str(f.path),
                )
            col[role] = found
        at_key, at_text = date_exprs(staging, f, col["invoice_date"])
        customer = rf"NULLIF(regexp_replace({text_of(col['customer_id'])}, '\.0+$', ''), '')"
        return f"""
            SELECT {text_of(col["invoice"])} AS invoice, {text_of(col["stock_code"])} AS stock_code,
                   CAST({q(col["quantity"])} AS VARCHAR) AS qty_raw,
                   {number_of(staging, f, col["quantity"])} AS qty,
                   CAST({q(col["price"])} AS VARCHAR) AS price_raw,
                   {number_of(staging, f, col["price"])} AS price,
                   {at_key} AS at_key, {at_text} AS at_text,
                   {customer} AS customer, {text_of(col["country"])} AS country, _file, _line
            FROM {t(f)}"""

    def read(self, folder: Path, staging: Staging) -> list[Source]:
        files = [stage(staging, p) for p in data_files(folder)]
        lines = staging.fresh("retail_lines")
        staging.con.execute(
            f"CREATE TEMP TABLE {q(lines)} AS "
            + " UNION ALL ".join(self._lines(staging, f) for f in files)
        )
        ln = q(lines)
        first = "(at_key, _file, _line)"  # the earliest line: by date, then position
        bad_number = "(qty IS NULL OR price IS NULL)"
        number_reason = (
            "'line ' || CAST(min(_line) FILTER (WHERE {bad}) AS VARCHAR) || "
            "': quantity ''' || coalesce(arg_min(qty_raw, _line) FILTER (WHERE {bad}), '') || "
            "''' or price ''' || coalesce(arg_min(price_raw, _line) FILTER (WHERE {bad}), '') || "
            "''' is empty or not a number, so the {what} cannot be computed'"
        )
        invoices = f"""(SELECT _file, invoice, min(customer) AS customer,
                               count(DISTINCT customer) AS customers,
                               string_agg(DISTINCT customer, ', ') AS customer_list
                        FROM {ln} WHERE invoice IS NOT NULL GROUP BY _file, invoice)"""
        started = "coalesce(arg_min(at_text, at_key), arg_min(at_text, _line))"
        return [
            derive(
                staging,
                "customers",
                f"""
                SELECT customer AS customer_id,
                       arg_min(at_text, {first}) AS joined_at,
                       arg_min(country, {first}) AS segment,
                       min(struct_pack(f := _file, l := _line)).f AS _file,
                       min(struct_pack(f := _file, l := _line)).l AS _line
                FROM {ln} WHERE customer IS NOT NULL AND invoice IS NOT NULL
                GROUP BY customer""",
                [],
                files,
            ),
            derive(
                staging,
                "journeys",
                f"""
                SELECT invoice AS journey_id, min(customer) AS customer_id, 'order' AS kind,
                       {started} AS started_at, 'receive the order' AS desired_outcome,
                       'achieved' AS outcome, round(sum(qty * price), 2) AS value,
                       'GBP' AS currency, _file, min(_line) AS _line,
                       CASE WHEN count(customer) = 0 AND upper(invoice) LIKE 'A%'
                                THEN {lit(ADJUSTMENT)}
                            WHEN count(customer) = 0 THEN {lit(GUEST_ORDER)}
                            WHEN count(DISTINCT customer) > 1
                                THEN 'the invoice''s lines name more than one customer ('
                                     || string_agg(DISTINCT customer, ', ') || ')'
                            WHEN bool_or({bad_number})
                                THEN {number_reason.format(bad=bad_number, what="invoice value")}
                       END AS _reject
                FROM {ln}
                WHERE invoice IS NOT NULL AND upper(invoice) NOT LIKE 'C%'
                GROUP BY _file, invoice""",
                [],
                files,
            ),
            derive(
                staging,
                "journey_items",
                f"""
                SELECT l.invoice AS journey_id, l.stock_code AS item_id,
                       sum(l.qty) AS quantity,
                       CASE WHEN sum(l.qty) <> 0 THEN sum(l.qty * l.price) / sum(l.qty)
                            ELSE avg(l.price) END AS unit_price,
                       'true' AS fulfilled, l._file, min(l._line) AS _line,
                       CASE WHEN any_value(i.customer) IS NULL THEN {lit(GUEST_ITEM)}
                            WHEN bool_or({bad_number})
                                THEN {number_reason.format(bad=bad_number, what="item")}
                       END AS _reject
                FROM {ln} l JOIN {invoices} i USING (_file, invoice)
                WHERE l.stock_code IS NOT NULL AND upper(l.invoice) NOT LIKE 'C%'
                GROUP BY l._file, l.invoice, l.stock_code
                UNION ALL
                SELECT invoice, stock_code, qty, price, 'true', _file, _line,
                       CASE WHEN invoice IS NULL
                            THEN 'the line has no invoice number, so it belongs to no order'
                            ELSE 'the line has no StockCode, so the item is unknown' END
                FROM {ln}
                WHERE invoice IS NULL
                   OR (stock_code IS NULL AND upper(invoice) NOT LIKE 'C%')""",
                files,
            ),
            derive(
                staging,
                "actions",
                f"""
                SELECT invoice AS action_id, min(customer) AS customer_id,
                       {started} AS at, 'refund' AS kind,
                       round(-sum(qty * price), 2) AS amount, 'GBP' AS currency,
                       'customer' AS initiated_by, _file, min(_line) AS _line,
                       CASE WHEN count(customer) = 0 THEN {lit(GUEST_REFUND)}
                            WHEN count(DISTINCT customer) > 1
                                THEN 'the cancellation''s lines name more than one customer ('
                                     || string_agg(DISTINCT customer, ', ') || ')'
                            WHEN bool_or({bad_number})
                                THEN {number_reason.format(bad=bad_number, what="refund")}
                       END AS _reject
                FROM {ln}
                WHERE invoice IS NOT NULL AND upper(invoice) LIKE 'C%'
                GROUP BY _file, invoice""",
                [],
                files,
            ),
        ]


ADAPTER = OnlineRetail()

"""IBM Telco customer churn (one row per customer) → canonical tables.

File read: ``Telco-Customer-Churn.csv`` (any CSV, Parquet or JSON Lines file
named like ``*churn*``, else ``*telco*``) with the columns ``customerID,
gender, SeniorCitizen, Partner, Dependents, tenure, PhoneService,
MultipleLines, InternetService, OnlineSecurity, OnlineBackup, DeviceProtection,
TechSupport, StreamingTV, StreamingMovies, Contract, PaperlessBilling,
PaymentMethod, MonthlyCharges, TotalCharges, Churn``.

The data carries no dates: ``tenure`` is whole months with the company at one
observation, and ``Churn`` = Yes marks customers who left in the month before
it. Sawubona needs dates, so the adapter fixes the **observation date at
2018-01-31** (``OBSERVED_AT``): the set was published in early 2018 (Kaggle,
February 2018) and IBM gives no date, so the last month end before publication
is the latest moment the observation can have been; any fixed date would do,
and every derived date moves with it. Dates are month ends (2018-01-31 minus 2
months is 2017-11-30).

Derivations:

* **customers** — one per ``customerID``; ``joined_at`` = ``OBSERVED_AT`` −
  ``tenure`` months; ``segment`` = the contract, as its plan id
  (``month-to-month``, ``one_year``, ``two_year``): the company's own commercial
  tier and the strongest known correlate of churn here. (``SeniorCitizen``,
  gender, partner, dependents and payment method have no canonical column and
  are not kept.)
* **plans** — one per ``Contract`` value: ``plan_id`` = ``month-to-month``,
  ``one_year``, ``two_year`` (lower case, spaces → ``_``), ``name`` = the
  contract as written, kind ``plan``, ``USD``, ``open_to_new`` = true, no
  allowances or overage (the data meters nothing). ``monthly_fee`` = the
  **median** ``MonthlyCharges`` of all customers on that contract (73.25, 68.75
  and 64.35 on the IBM file). The data has no price list: ``MonthlyCharges``
  depends on the services each customer takes (phone, DSL or fibre, streaming,
  …), so a contract has no single fee. The median is a descriptive "typical
  bill", not a price a new customer is offered. The median of recent joiners
  (tenure ≤ 3 months: 53.85, 20.20 and 26.08 on 1,025, 21 and 16 customers) was
  rejected: it measures the service mix of a handful of basic-bundle joiners,
  not a price, and would show every long-standing customer as overcharged. Read
  the giving lens's loyalty-penalty figures on this data with that in mind.
* **subscriptions** — one per customer on their contract's plan:
  ``started_at`` = ``joined_at``; ``ended_at`` = ``OBSERVED_AT`` when ``Churn``
  = Yes (they left during the month before it), else empty;
  ``monthly_fee_paid`` = their own ``MonthlyCharges``.
* ``TotalCharges`` is not used (it is blank for the 11 customers with tenure 0,
  who load like everyone else).
* **Add-ons are not derived.** The service columns (``OnlineSecurity``,
  ``TechSupport``, ``StreamingTV``…) say what a customer has, but not what each
  costs (only the bundle's ``MonthlyCharges``), and nothing about use: as
  ``addon`` subscriptions they would need an invented fee, and the giving lens
  would flag every one of them as an unused paid add-on.

Quarantined by the adapter: a customer whose ``tenure`` is empty or not a
whole number ≥ 0 (when they joined is unknown), and a subscription whose
``Churn`` is neither Yes nor No.

Counts on the IBM file: customers 7,043; plans 3; subscriptions 7,043 (1,869
ended) — nothing quarantined.
"""

from __future__ import annotations

from pathlib import Path

from sawubona.errors import InputError
from sawubona.ingest.adapters import derive, find_file, stage, t
from sawubona.ingest.parse import choose_decimal, lit, number_expr, q
from sawubona.ingest.pipeline import Source
from sawubona.ingest.readers import Staging

#: the date the data is taken to describe (see the module docstring)
OBSERVED_AT = "2018-01-31"

NEEDED = ("customer_id", "tenure", "contract", "monthly_charges", "churn")


def _text(col: str) -> str:
    return f"NULLIF(trim(CAST({q(col)} AS VARCHAR)), '')"


class TelcoChurn:
    name = "telco-churn"
    title = "IBM Telco customer churn"

    def read(self, folder: Path, staging: Staging) -> list[Source]:
        path = find_file(
            folder,
            self.name,
            "*churn*.csv",
            "*churn*.parquet",
            "*churn*.jsonl",
            "*telco*.csv",
            "*telco*.parquet",
            "*telco*.jsonl",
        )
        assert path is not None  # required=True raises instead
        f = stage(staging, path)
        columns = staging.columns(f.name)
        missing = [c for c in NEEDED if c not in columns]
        if missing:
            raise InputError(
                "the telco-churn adapter needs the columns customerID, tenure, Contract, "
                f"MonthlyCharges and Churn; missing (after normalising): {', '.join(missing)}",
                file=str(path),
            )
        src = t(f)
        if columns["monthly_charges"].upper().startswith("VARCHAR"):
            dec = choose_decimal(staging.con, f.name, "monthly_charges")
            charges = number_expr(_text("monthly_charges"), dec)
        else:
            charges = 'TRY_CAST("monthly_charges" AS DOUBLE)'
        # whole months only: DuckDB would round '1.5' to 2 when casting to an integer
        whole = rf"regexp_matches({_text('tenure')}, '^[0-9]{{1,4}}(\.0+)?$')"
        tenure = f"CASE WHEN {whole} THEN CAST(CAST({_text('tenure')} AS DOUBLE) AS INTEGER) END"
        bad_tenure = f"({tenure} IS NULL)"
        started = (
            f"CASE WHEN NOT {bad_tenure} THEN strftime(DATE {lit(OBSERVED_AT)} "
            f"- to_months({tenure}), '%Y-%m-%d') END"
        )
        tenure_reason = (
            f"CASE WHEN {bad_tenure} THEN 'tenure ''' || coalesce({_text('tenure')}, '') "
            "|| ''' is not a whole number of months (0 or more), so when they joined is "
            "unknown; fix the value' END"
        )
        plan_id = f"replace(lower({_text('contract')}), ' ', '_')"
        churn = f"lower({_text('churn')})"
        return [
            derive(
                staging,
                "customers",
                f"""
                SELECT {_text("customer_id")} AS customer_id, {started} AS joined_at,
                       {plan_id} AS segment, _file, _line, {tenure_reason} AS _reject
                FROM {src}""",
                [f],
            ),
            derive(
                staging,
                "plans",
                f"""
                SELECT {plan_id} AS plan_id, min({_text("contract")}) AS name,
                       'plan' AS kind, round(median({charges}), 2) AS monthly_fee,
                       'USD' AS currency, 'true' AS open_to_new,
                       min(_file) AS _file, min(_line) AS _line
                FROM {src} WHERE {plan_id} IS NOT NULL GROUP BY 1""",
                [],
                [f],
            ),
            derive(
                staging,
                "subscriptions",
                f"""
                SELECT {_text("customer_id")} AS customer_id, {plan_id} AS plan_id,
                       {started} AS started_at,
                       CASE WHEN {churn} IN ('yes', '1', 'true') THEN {lit(OBSERVED_AT)} END
                           AS ended_at,
                       {_text("monthly_charges")} AS monthly_fee_paid, _file, _line,
                       coalesce({tenure_reason},
                                CASE WHEN {churn} IS NULL
                                          OR {churn} NOT IN ('yes', 'no', '1', '0', 'true',
                                                             'false')
                                     THEN 'Churn ''' || coalesce({_text("churn")}, '')
                                          || ''' is not Yes or No, so whether the '
                                          || 'subscription ended is unknown' END) AS _reject
                FROM {src}""",
                [],
                [f],
            ),
        ]


ADAPTER = TelcoChurn()

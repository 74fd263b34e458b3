"""The canonical model is declared once; the docs and the load order follow from it."""

from __future__ import annotations

from pathlib import Path

from sawubona import schema

DOC = Path(__file__).resolve().parents[1] / "docs" / "data-model.md"


def test_data_model_doc_matches_the_declaration() -> None:
    assert DOC.read_text(encoding="utf-8") == schema.data_model_markdown(), (
        "docs/data-model.md is out of date: run "
        "`.venv/bin/python -c 'from sawubona import schema; "
        'print(schema.data_model_markdown(), end="")\' > docs/data-model.md`'
    )


def test_every_key_column_is_required_and_references_resolve() -> None:
    for t in schema.TABLES:
        for k in t.key:
            assert t.column(k).required, (t.name, k)
        for col, ref, refcol in t.references:
            assert ref in schema.TABLE_BY_NAME, (t.name, col)
            assert schema.table(ref).key == (refcol,)


def test_load_order_puts_referenced_tables_first() -> None:
    order = schema.load_order()
    assert sorted(order) == sorted(schema.TABLE_BY_NAME)
    for t in schema.TABLES:
        for _, ref, _ in t.references:
            assert order.index(ref) < order.index(t.name)


def test_design_columns_are_all_declared() -> None:
    # DESIGN.md §3, one line per table: the key columns named there.
    expected = {
        "customers": "customer_id joined_at segment name email",
        "journeys": "journey_id customer_id kind started_at ended_at desired_outcome outcome "
        "outcome_reason value currency",
        "journey_items": "journey_id item_id quantity unit_price fulfilled",
        "touchpoints": "touchpoint_id customer_id journey_id at channel direction actor agent_id "
        "team kind text template_id",
        "promises": "promise_id customer_id journey_id kind made_at due_at made_by team channel "
        "kept_at cancelled_at cancel_reason",
        "plans": "plan_id name kind monthly_fee currency allowances overage open_to_new "
        "valid_from valid_to",
        "subscriptions": "customer_id plan_id started_at ended_at monthly_fee_paid",
        "usage": "customer_id period_start metric quantity plan_id",
        "surveys": "survey_id customer_id journey_id instrument invited_at responded_at score "
        "comment agent_id team trigger",
        "actions": "action_id customer_id at kind amount currency initiated_by agent_id journey_id",
    }
    for name, cols in expected.items():
        assert set(cols.split()) <= set(schema.table(name).column_names), name


def test_normalise_name() -> None:
    assert schema.normalise_name("Customer ID") == "customer_id"
    assert schema.normalise_name("customerId") == "customer_id"
    assert schema.normalise_name("\ufeffInvoiceDate") == "invoice_date"
    assert schema.normalise_name("Complete Timestamp") == "complete_timestamp"

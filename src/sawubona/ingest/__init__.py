"""Ingest: files and public formats into canonical tables, losing nothing.

``ingest(store, paths, adapter=..., mapping=...)`` is the entry point; see
:mod:`sawubona.ingest.pipeline` for the steps and
:mod:`sawubona.ingest.validate` for the checks.
"""

from sawubona.ingest.mapping import template
from sawubona.ingest.pipeline import ingest
from sawubona.ingest.report import IngestReport, ReasonCount, TableReport

__all__ = ["IngestReport", "ReasonCount", "TableReport", "ingest", "template"]

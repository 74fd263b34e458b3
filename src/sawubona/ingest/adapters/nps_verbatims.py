"""NPS verbatims (a telecom provider's NPS survey answers with comments) → canonical tables.

File read: the first file named like ``verbatim*.csv`` (else ``*nps*.csv``, else
any ``*.csv``) with the columns ``CUSTOMER_RESPONSE_DATE``, ``SURVEY_SUB_TYPE``
(the journey stage: ``Order``, ``First Payment``, ``Equipment Received``,
``Service in Use``), ``NPS_RATING`` (``Promoter``/``Passive``/``Detractor``),
``NPS_SCORE`` (0–10), ``text`` and ``Qtr`` (not used).

Derivations:

* The data carries **no customer id**, so every answer is its own customer and
  its own journey: ``customer_id`` = ``journey_id`` = ``survey_id`` =
  ``nps-<line>`` (the answer's line in the file). Two answers are never assumed
  to come from the same person. Ids depend on the line, so a re-ordered copy of
  the file loads as different customers.
* **customers** — one per answer, with no attributes (the file has none).
* **journeys** — one per answer; ``kind`` = the stage lower-cased with runs of
  other characters turned into ``_`` (``Service in Use`` → ``service_in_use``);
  ``started_at`` = the response date (the only time the file gives); no end,
  desired outcome or outcome (unknown). An answer with no stage is quarantined
  with that reason (and its survey with it, as its journey is missing).
* **surveys** — one per answer: instrument ``nps``, ``responded_at`` = the
  response date, ``score`` = ``NPS_SCORE``, ``comment`` = ``text``,
  ``journey_id`` = the answer's journey. Answers **with no score are kept** with
  an empty score: they answered (and usually commented) but gave no number; NPS
  counts only scored answers. The ``NPS_RATING`` word is not stored (it follows
  from the score); an answer whose word contradicts its score (e.g.
  ``Promoter`` with 3) is quarantined, since one of the two is wrong.
* Dates are read **day first** (``dd/mm/yyyy hh:mm``, declared, not guessed):
  the provider is British, and month-first cannot read values such as
  ``28/12/2017 19:34``.
"""

from __future__ import annotations

from pathlib import Path

from sawubona.errors import InputError
from sawubona.ingest.adapters import derive, find_file, stage, t
from sawubona.ingest.pipeline import Source
from sawubona.ingest.readers import StagedFile, Staging
from sawubona.ingest.validate import ColumnOptions

DATE_FORMAT = "%d/%m/%Y %H:%M"

#: staged column → canonical meaning; the staged names are the file's, normalised
COLUMNS = {
    "date": "customer_response_date",
    "stage": "survey_sub_type",
    "rating": "nps_rating",
    "score": "nps_score",
    "text": "text",
}


def _col(f: StagedFile, key: str) -> str:
    name = COLUMNS[key]
    if name in f.columns:
        return f'"{name}"'
    if key in ("rating", "text"):
        return "CAST(NULL AS VARCHAR)"
    raise InputError(
        f"the nps-verbatims adapter needs a column {name.upper()}; the file has "
        + ", ".join(f.columns.values()),
        file=str(f.path),
    )


class NpsVerbatims:
    name = "nps-verbatims"
    title = "NPS verbatims (score, journey stage, comment)"

    def read(self, folder: Path, staging: Staging) -> list[Source]:
        path = find_file(folder, self.name, "verbatim*.csv", "*nps*.csv", "*.csv")
        f = stage(staging, path)  # type: ignore[arg-type]
        v = t(f)
        date, stage_, rating, score, text = (_col(f, k) for k in COLUMNS)
        ident = "'nps-' || CAST(_line AS VARCHAR)"
        kind = f"trim(regexp_replace(lower(trim({stage_})), '[^a-z0-9]+', '_', 'g'), '_')"
        # The rating word, where given, must agree with the score (NPS bands).
        num = f"TRY_CAST(trim({score}) AS DOUBLE)"
        band = (
            f"CASE WHEN {num} >= 9 THEN 'promoter' WHEN {num} >= 7 THEN 'passive' "
            f"WHEN {num} >= 0 THEN 'detractor' END"
        )
        word = f"NULLIF(lower(trim({rating})), '')"
        contradicts = (
            f"CASE WHEN {word} IS NOT NULL AND {band} IS NOT NULL AND {word} <> {band} "
            f"THEN 'the rating ' || trim({rating}) || ' contradicts the score ' || "
            f"trim({score}) || ' (NPS bands: 0-6 detractor, 7-8 passive, 9-10 promoter)' END"
        )
        no_stage = (
            f"CASE WHEN NULLIF({kind}, '') IS NULL THEN "
            f"'the answer has no SURVEY_SUB_TYPE (journey stage), so no journey kind' END"
        )
        sources = [
            derive(
                staging,
                "customers",
                f"""
                SELECT {ident} AS customer_id, _file, _line FROM {v}""",
                [f],
            ),
            derive(
                staging,
                "journeys",
                f"""
                SELECT {ident} AS journey_id, {ident} AS customer_id,
                       NULLIF({kind}, '') AS kind, {date} AS started_at,
                       _file, _line, {no_stage} AS _reject
                FROM {v}""",
                [f],
            ),
            derive(
                staging,
                "surveys",
                f"""
                SELECT {ident} AS survey_id, {ident} AS customer_id, {ident} AS journey_id,
                       'nps' AS instrument, {date} AS responded_at, {score} AS score,
                       NULLIF(trim({text}), '') AS comment,
                       _file, _line, {contradicts} AS _reject
                FROM {v}""",
                [f],
            ),
        ]
        for s in sources:
            for col in ("started_at", "responded_at"):
                s.options[col] = ColumnOptions(date_format=DATE_FORMAT)
        return sources


ADAPTER = NpsVerbatims()

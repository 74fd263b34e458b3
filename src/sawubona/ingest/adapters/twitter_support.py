"""Customer Support on Twitter (Kaggle, Thought Vector) → canonical tables.

File read: ``twcs.csv`` or its published 93-tweet ``sample.csv`` (the first
file named like ``twcs*.csv``, ``sample*.csv`` or ``*.csv``), with the columns
``tweet_id``, ``author_id``, ``inbound``, ``created_at``
(``Wed Oct 11 06:55:44 +0000 2017``), ``text``, ``response_tweet_id`` (not
used) and ``in_response_to_tweet_id``. The file ends records with CRLF and
some quoted texts hold bare line breaks; the CSV reader keeps those inside
their field (the line of a record is the physical line it starts on).

Derivations:

* **touchpoints** — one per tweet, ``touchpoint_id`` = ``tweet_id``, ``at`` =
  ``created_at`` (read as ``%a %b %d %H:%M:%S %z %Y``, to UTC), channel
  ``social``. ``inbound = True`` (a customer wrote it) → direction ``inbound``,
  actor ``customer``, kind ``inquiry``. ``inbound = False`` (a brand wrote it)
  → direction ``outbound``, actor ``person``, kind ``reply``, ``team`` = the
  brand handle (``author_id``), ``agent_id`` = ``<brand>:<sign-off>`` when the
  text ends with one (``^RR``, ``/AY``, ``-AD``, ``- Mike``, ``^Jools``; links
  and part counters such as ``2/2`` after it are skipped); the brand is part
  of the id because initials repeat across brands (``^AC`` at SouthwestAir,
  ``-AC`` at sprintcare). ``text`` = the tweet with Twitter's ``&lt;``,
  ``&gt;`` and ``&amp;`` escapes decoded; ``template_id`` is left empty (the
  touch lens finds templates by text).
* **customer of a tweet** — its author for an inbound tweet (ids as in the
  data: customer handles are anonymised numbers). For a brand tweet: the
  author of the tweet it replies to, when that tweet is in the file and was
  written by a customer; otherwise the first numeric ``@handle`` in its text
  (the customer it addresses). A brand tweet with neither is **quarantined**
  (its customer is unknown).
* **threads** — ``in_response_to_tweet_id`` chains are followed inside the
  file; the thread's root is the first tweet whose parent is not in the file
  (a tweet replying to a tweet missing from the file starts its own thread).
  Ids written as decimals (``119239.0``, as in the full ``twcs.csv``) are read
  as whole numbers. Tweets whose chain loops are quarantined.
* **journeys** — kind ``support``, one per thread and customer:
  ``journey_id`` = the root tweet id for the customer whose tweet (or who was
  addressed by the brand tweet) starts the thread, and ``<root>/<customer_id>``
  for any other customer who joins the thread ("me too"), so that each
  customer's contacts and the brand's replies to them stay one episode of
  theirs. ``started_at`` = the first tweet of that episode, ``ended_at`` = the
  last one (tweets by time, not file order); ``outcome`` is left **empty**
  (unknown: a thread that stops says nothing about whether the problem was
  solved), as are ``desired_outcome`` and ``value``. Source line = the
  episode's first line in the file.
* **customers** — the distinct customers of the tweets loaded above (inbound
  authors, plus customers only ever addressed by a brand), with no attributes
  (a first tweet is not a join date). Source line = their first line.
"""

from __future__ import annotations

from pathlib import Path

from sawubona.errors import InputError
from sawubona.ingest.adapters import derive, find_file, stage, t
from sawubona.ingest.parse import lit, q, timestamp_expr
from sawubona.ingest.pipeline import Source
from sawubona.ingest.readers import Staging
from sawubona.ingest.validate import ColumnOptions

DATE_FORMAT = "%a %b %d %H:%M:%S %z %Y"
NEEDED = ("tweet_id", "author_id", "inbound", "created_at", "text", "in_response_to_tweet_id")
TRUE = ("true", "t", "1", "yes")
FALSE = ("false", "f", "0", "no")

#: trailing links and part counters ("1/2") that may follow a sign-off
TAIL = r"(\s*(https?://\S+|\d+/\d+))+\s*$"
#: a sign-off at the end: ^AB, /AB, -AB, - Name
SIGN_OFF = r"(^|\s)[\^/-] ?([A-Z][A-Za-z]{1,19})$"


def _words(words: tuple[str, ...]) -> str:
    return ", ".join(lit(w) for w in words)


class TwitterSupport:
    name = "twitter-support"
    title = "Customer Support on Twitter (Kaggle twcs)"

    def read(self, folder: Path, staging: Staging) -> list[Source]:
        path = find_file(folder, self.name, "twcs*.csv", "sample*.csv", "*.csv")
        f = stage(staging, path)  # type: ignore[arg-type]
        missing = [c for c in NEEDED if c not in f.columns]
        if missing:
            raise InputError(
                "the twitter-support adapter needs the columns "
                + ", ".join(missing)
                + "; the file has "
                + ", ".join(f.columns.values()),
                file=str(f.path),
            )
        con = staging.con
        # One row per staged record, with everything the derivations need.
        tw = staging.fresh("tweets")
        text = "replace(replace(replace(text, '&lt;', '<'), '&gt;', '>'), '&amp;', '&')"
        con.execute(f"""
            CREATE TEMP TABLE {q(tw)} AS
            SELECT _file, _line,
                   NULLIF(regexp_replace(trim(tweet_id), '\\.0+$', ''), '') AS id,
                   NULLIF(regexp_replace(trim(in_response_to_tweet_id), '\\.0+$', ''), '')
                       AS parent,
                   CASE WHEN lower(trim(inbound)) IN ({_words(TRUE)}) THEN true
                        WHEN lower(trim(inbound)) IN ({_words(FALSE)}) THEN false END AS inb,
                   inbound AS inbound_raw,
                   NULLIF(trim(author_id), '') AS author,
                   created_at,
                   {timestamp_expr("NULLIF(trim(created_at), '')", DATE_FORMAT)} AS ts,
                   {text} AS text,
                   NULLIF(regexp_extract(text, '@([0-9]+)', 1), '') AS handle,
                   NULLIF(regexp_extract(regexp_replace(rtrim(text), {lit(TAIL)}, ''),
                                         {lit(SIGN_OFF)}, 2), '') AS sign_off
            FROM {t(f)}""")
        # Each tweet id once (its first line), for following reply chains.
        byid = staging.fresh("tweet_ids")
        con.execute(f"""
            CREATE TEMP TABLE {q(byid)} AS
            SELECT id, arg_min(parent, _line) AS parent, arg_min(inb, _line) AS inb,
                   arg_min(author, _line) AS author, arg_min(handle, _line) AS handle
            FROM {q(tw)} WHERE id IS NOT NULL GROUP BY id""")
        roots = staging.fresh("tweet_roots")
        con.execute(f"""
            CREATE TEMP TABLE {q(roots)} AS
            WITH RECURSIVE chain(id, root) AS (
                SELECT b.id, b.id FROM {q(byid)} b
                WHERE b.parent IS NULL OR b.parent NOT IN (SELECT id FROM {q(byid)})
                UNION ALL
                SELECT b.id, c.root FROM {q(byid)} b JOIN chain c ON b.parent = c.id
            )
            SELECT id, root FROM chain""")
        # The customer of a tweet id (used for the thread root's customer).
        cust = (
            "CASE WHEN {x}.inb THEN {x}.author "
            "WHEN NOT {x}.inb THEN coalesce(CASE WHEN {p}.inb THEN {p}.author END, {x}.handle) END"
        )
        resolved = staging.fresh("tweets_resolved")
        con.execute(f"""
            CREATE TEMP TABLE {q(resolved)} AS
            WITH id_customer AS (
                SELECT b.id, {cust.format(x="b", p="p")} AS customer
                FROM {q(byid)} b LEFT JOIN {q(byid)} p ON p.id = b.parent
            )
            SELECT w.*, {cust.format(x="w", p="p")} AS customer, r.root,
                   rc.customer AS root_customer,
                   CASE
                     WHEN w.id IS NULL THEN 'the tweet has no tweet_id'
                     WHEN w.inb IS NULL THEN 'inbound ' || coalesce('''' || w.inbound_raw || '''',
                          '(empty)') || ' is neither True nor False, so the direction is unknown'
                     WHEN w.inb AND w.author IS NULL THEN 'the customer tweet has no author_id'
                     WHEN NOT w.inb AND w.author IS NULL THEN
                          'the brand tweet has no author_id (the brand handle)'
                     WHEN NOT w.inb AND {cust.format(x="w", p="p")} IS NULL THEN
                          'the brand tweet replies to no customer tweet in the file and names '
                          || 'no customer (@<number>), so its customer is unknown'
                     WHEN r.root IS NULL THEN 'the reply chain of this tweet (in_response_to_'
                          || 'tweet_id) loops back on itself, so its thread has no first tweet'
                   END AS _reject
            FROM {q(tw)} w
            LEFT JOIN {q(byid)} p ON p.id = w.parent
            LEFT JOIN {q(roots)} r ON r.id = w.id
            LEFT JOIN id_customer rc ON rc.id = r.root""")
        res = q(resolved)
        journey = "CASE WHEN customer = root_customer THEN root ELSE root || '/' || customer END"
        sources = [
            derive(
                staging,
                "customers",
                f"""
                SELECT customer AS customer_id, min(_file) AS _file, min(_line) AS _line
                FROM {res} WHERE _reject IS NULL GROUP BY customer""",
                [],
                [f],
            ),
            derive(
                staging,
                "journeys",
                f"""
                SELECT {journey} AS journey_id, customer AS customer_id, 'support' AS kind,
                       min(ts) AS started_at, max(ts) AS ended_at,
                       min(_file) AS _file, min(_line) AS _line
                FROM {res} WHERE _reject IS NULL GROUP BY 1, 2""",
                [],
                [f],
            ),
            derive(
                staging,
                "touchpoints",
                f"""
                SELECT id AS touchpoint_id, customer AS customer_id,
                       CASE WHEN _reject IS NULL THEN {journey} END AS journey_id,
                       created_at AS at, 'social' AS channel,
                       CASE WHEN inb THEN 'inbound' ELSE 'outbound' END AS direction,
                       CASE WHEN inb THEN 'customer' ELSE 'person' END AS actor,
                       CASE WHEN NOT inb AND sign_off IS NOT NULL
                            THEN author || ':' || sign_off END AS agent_id,
                       CASE WHEN NOT inb THEN author END AS team,
                       CASE WHEN inb THEN 'inquiry' ELSE 'reply' END AS kind,
                       text, _file, _line, _reject
                FROM {res}""",
                [f],
            ),
        ]
        sources[2].options["at"] = ColumnOptions(date_format=DATE_FORMAT)
        return sources


ADAPTER = TwitterSupport()

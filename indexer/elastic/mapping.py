"""The Elasticsearch index definition: German analysis, field mappings, the index template.

Everything is built with the client's DSL (`elasticsearch.dsl`) and exported once to
`indexer/resources/elasticsearch/ernte-records.index-template.json` (package data) by
`write_template_file()` in a source checkout, so the
JSON an operator can `PUT _index_template/...` by hand is exactly what the code installs
(a test compares the two).

Analysis, kept token-for-token equal to the embedded backend (`indexer.analysis`, whose
docstring names the same analyzers):

* `de` = standard tokenizer -> lowercase -> stop (`german/stopwords_de.txt`, read with
  `indexer.analysis.load_word_list` and inlined when the template is built, so ES needs no
  file and both engines use the very same list) -> `german_normalization` (ä/ae->a, ö/oe->o,
  ü/ue->u, ß->ss) -> `stemmer` `german`, which is Lucene's Snowball GermanStemmer. Snowball
  rather than Elastic's recommended `light_german`: that is Lucene's GermanLightStemmer,
  which no Python library implements, so the embedded backend (PyStemmer = Snowball) could
  not produce the same terms. With Snowball both engines index and query identical tokens.
* `de_exact` = standard -> lowercase: the `.exact` subfields keep umlauts and word forms; the
  query uses them only to boost exact spellings, never as a required match (stop words
  survive there, so requiring them would break parity).
* `name` = standard -> lowercase -> german_normalization -> asciifolding (authors, editors,
  autocomplete): names are neither stemmed nor stop-filtered.
* Subject headings are a set, not prose: `subject`, `subject.exact` and `subject_parts` use
  the `heading_set` similarity (BM25 with k1 0, b 0: a match scores its idf and weight, neither
  the number of headings nor repeats lower or raise it) and keep no norms, as the embedded
  backend scores those fields (`indexer.embedded.queries.no_norms_weight`); measured in
  bench/results/relevance.md (issue 15).
* Every facet keyword has a `.folded` subfield (lowercase + german_normalization) that filters
  compare against, case- and umlaut-insensitively (`indexer.filters`).
* Compounds are not split inside ES: the pipeline writes their parts into `*_parts` fields
  (`harvester.run.document`), analyzed with `de` like other text. An optional `.decomp` subfield
  (`with_decompounder=True`) adds Lucene's `dictionary_decompounder` over the part list
  mounted at `analysis/compound_parts_de.txt` for relevance experiments; it is off by
  default (ES would refuse to create the index without the file) and never part of the
  default query, so both backends still match the same records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from elasticsearch import dsl

from indexer.analysis import load_word_list
from indexer.resources import INDEX_TEMPLATE, source_checkout_file
from indexer.search_model import SUBJECT_NORMS
from indexer.word_lists import stopwords_file

DEFAULT_ALIAS = "ernte-records"
"""The alias searches and incremental writes go through; it points at `ernte-records-<n>`."""

COMPOUND_PARTS_PATH_IN_ES = "analysis/compound_parts_de.txt"
"""Where the optional decompounder expects `german/compound_parts_de.txt`, relative to the ES
config directory (see indexer/resources/elasticsearch/README.md for the docker mount)."""

TEMPLATE_PRIORITY = 200
"""Above Elastic's built-in templates (priority 100) so nothing else shapes our indices."""

REFRESH_INTERVAL = "1s"
AUTO_EXPAND_REPLICAS = "0-1"
"""One replica when a second node exists, none on a single dev node (keeps it green)."""

ISSUED_DATE_FORMAT = "yyyy||yyyy-MM||yyyy-MM-dd"

HEADING_SIMILARITY = "heading_set"
SIMILARITIES: dict[str, dict[str, Any]] = {
    HEADING_SIMILARITY: {"type": "BM25", "k1": 0.0, "b": 0.0},
}
"""Per-field similarities of the index (`settings.index.similarity`): `heading_set` scores a
subject heading match by idf and boost alone (BM25 with k1 = 0)."""


class Analysis:
    """The analyzers and normalizers of the index, built once per template build.

    A class only to share the stop list between the analyzers that need it; use
    `Analysis.load()` to read it from `german/stopwords_de.txt` (config directory or package).
    """

    def __init__(self, stopwords: list[str]) -> None:
        self.stopwords = stopwords
        german_stop = dsl.token_filter("de_stop", "stop", stopwords=stopwords)
        german_stem = dsl.token_filter("de_stem", "stemmer", language="german")
        self.german = dsl.analyzer(
            "de",
            tokenizer="standard",
            filter=["lowercase", german_stop, "german_normalization", german_stem],
        )
        self.exact = dsl.analyzer("de_exact", tokenizer="standard", filter=["lowercase"])
        self.name = dsl.analyzer(
            "name",
            tokenizer="standard",
            filter=["lowercase", "german_normalization", "asciifolding"],
        )
        self.folded = dsl.normalizer("folded", filter=["lowercase", "german_normalization"])
        self.issn = dsl.normalizer(
            "issn",
            char_filter=[
                dsl.char_filter("no_hyphen", "pattern_replace", pattern="-", replacement="")
            ],
            filter=["uppercase"],
        )
        decompounder = dsl.token_filter(
            "de_decompounder",
            "dictionary_decompounder",
            word_list_path=COMPOUND_PARTS_PATH_IN_ES,
            min_subword_size=4,
            only_longest_match=True,
        )
        self.german_decompound = dsl.analyzer(
            "de_decomp",
            tokenizer="standard",
            filter=[
                "lowercase",
                german_stop,
                decompounder,
                "german_normalization",
                german_stem,
                dsl.token_filter("uniq", "unique", only_on_same_position=True),
            ],
        )

    @classmethod
    def load(cls, stopwords: Path | None = None) -> Analysis:
        return cls(load_word_list(stopwords or stopwords_file()))


def build_mapping(analysis: Analysis, *, with_decompounder: bool = False) -> dsl.Mapping:
    """The field mappings for every field `harvester.run.document.build_document` emits.

    `dynamic: strict` makes an unexpected field fail its bulk item (it is quarantined with
    the reason) instead of silently growing the mapping; `date_detection: false` keeps
    strings as strings.
    """

    def german_text(
        *,
        exact: bool = True,
        decompound: bool = False,
        heading_set: bool = False,
        **subfields: dsl.Field,
    ) -> dsl.Text:
        scoring: dict[str, Any] = (
            {"similarity": HEADING_SIMILARITY, "norms": False} if heading_set else {}
        )
        fields: dict[str, dsl.Field] = dict(subfields)
        if exact:
            fields["exact"] = dsl.Text(analyzer=analysis.exact, **scoring)
        if decompound and with_decompounder:
            fields["decomp"] = dsl.Text(analyzer=analysis.german_decompound)
        if not fields:
            return dsl.Text(analyzer=analysis.german, **scoring)
        return dsl.Text(analyzer=analysis.german, fields=fields, **scoring)

    def facet_keyword(**subfields: dsl.Field) -> dsl.Keyword:
        return dsl.Keyword(fields={**subfields, "folded": dsl.Keyword(normalizer=analysis.folded)})

    suggest = dsl.SearchAsYouType(analyzer=analysis.name)
    mapping = dsl.Mapping()
    mapping.meta("dynamic", "strict")
    mapping.meta("date_detection", False)
    properties: dict[str, dsl.Field] = {
        "id": dsl.Keyword(),
        "source": facet_keyword(),
        "set": facet_keyword(),
        "datestamp": dsl.Keyword(),
        "title": german_text(decompound=True, suggest=suggest),
        "subtitle": german_text(),
        "abstract": german_text(decompound=True),
        "subject": german_text(
            decompound=True,
            heading_set=not SUBJECT_NORMS,
            raw=dsl.Keyword(),
            folded=dsl.Keyword(normalizer=analysis.folded),
            suggest=suggest,
        ),
        "author": dsl.Text(
            analyzer=analysis.name,
            fields={"raw": dsl.Keyword(), "folded": dsl.Keyword(normalizer=analysis.folded)},
        ),
        "editor": dsl.Text(analyzer=analysis.name, fields={"raw": dsl.Keyword()}),
        "type": facet_keyword(),
        "normalized_type": facet_keyword(),
        "year": dsl.Integer(),
        "issued": dsl.Date(format=ISSUED_DATE_FORMAT),
        "language": facet_keyword(),
        "journal": german_text(raw=dsl.Keyword(), folded=dsl.Keyword(normalizer=analysis.folded)),
        "publisher": german_text(raw=dsl.Keyword()),
        "place": german_text(raw=dsl.Keyword()),
        "issn": dsl.Keyword(normalizer=analysis.issn),
        "isbn": dsl.Keyword(),
        "doi": dsl.Keyword(),
        "local_id": dsl.Keyword(),
        "handle": dsl.Keyword(),
        "title_parts": german_text(exact=False),
        "subject_parts": german_text(exact=False, heading_set=not SUBJECT_NORMS),
        "abstract_parts": german_text(exact=False),
    }
    for name, field in properties.items():
        mapping.field(name, field)
    return mapping


def build_index(
    name: str, *, analysis: Analysis | None = None, with_decompounder: bool = False
) -> dsl.Index:
    """The index definition (settings + analysis + mappings) under `name`."""
    index = dsl.Index(name)
    _configure(index, analysis or Analysis.load(), with_decompounder=with_decompounder)
    return index


def build_template(
    alias: str = DEFAULT_ALIAS, *, analysis: Analysis | None = None, with_decompounder: bool = False
) -> dsl.ComposableIndexTemplate:
    """The composable template every `<alias>-<n>` index is created from.

    Configured directly rather than via `Index.as_composable_template`, whose index clone
    drops the mapping's `dynamic`/`date_detection` settings (DSL 9.x `Mapping._clone`).
    """
    template = dsl.ComposableIndexTemplate(alias, f"{alias}-*", priority=TEMPLATE_PRIORITY)
    _configure(template, analysis or Analysis.load(), with_decompounder=with_decompounder)
    return template


def _configure(
    index: dsl.Index | dsl.ComposableIndexTemplate,
    analysis: Analysis,
    *,
    with_decompounder: bool,
) -> None:
    index.settings(
        number_of_shards=1,
        auto_expand_replicas=AUTO_EXPAND_REPLICAS,
        refresh_interval=REFRESH_INTERVAL,
        similarity=SIMILARITIES,
    )
    index.mapping(build_mapping(analysis, with_decompounder=with_decompounder))


def template_body(alias: str = DEFAULT_ALIAS, *, with_decompounder: bool = False) -> dict[str, Any]:
    """The `PUT _index_template/<alias>` body as plain JSON data."""
    return build_template(alias, with_decompounder=with_decompounder).to_dict()


def template_json(alias: str = DEFAULT_ALIAS) -> str:
    """The committed template file's exact text (stable key order, UTF-8, final newline)."""
    return json.dumps(template_body(alias), indent=2, ensure_ascii=False) + "\n"


def write_template_file(path: Path | None = None) -> Path:
    """Regenerate the packaged index template from the DSL (a developer's step, run in a source
    checkout: `python -m indexer.elastic.mapping`; ernte itself never writes package data)."""
    path = path or source_checkout_file(INDEX_TEMPLATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(template_json(), encoding="utf-8")
    return path


if __name__ == "__main__":  # python -m indexer.elastic.mapping
    print(f"wrote {write_template_file()}")

"""Normalization throughput on one core: parse + crosswalk + finish, per format.

Generates N seed-like ORLIS records (default 20,000) as DSpace `dim` and as `oai_dc`, varied
(authors, subjects, dates, ISSN, ORLIS number, abstract length; a share without a language
field so that language detection runs for those), normalizes them in this process and prints
records/s per format. Results go to bench/results/normalize.txt.

    .venv/bin/python bench/bench_normalize.py [-n 20000] [--no-language-share 0.2]
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harvester.model import RawRecord
from harvester.normalize.normalizer import normalize

RESULTS = Path(__file__).parent / "results" / "normalize.txt"
NAMES = ["Kocks, Martina", "Güles, Orhan", "Weiß, Jürgen", "Straßburger, Anna", "Öztürk, Ayşe",
         "Müller, Hans", "Bunzel, Arno", "Deutsches Institut für Urbanistik"]  # fmt: skip
SUBJECTS = ["Stadtentwicklungsplanung", "Stadtforschung", "Stadtteil", "Stadtquartier",
            "Einkommensverteilung", "Regionale Disparität", "Segregation", "Ausländer",
            "Integration", "Partizipation", "Sozialpolitik", "Arbeitsförderung",
            "Förderungsprogramm", "Soziale Stadt", "Sozialraumanalyse", "Soziale Ungleichheit",
            "Wohnquartier", "Integriertes Handlungsprogramm", "Benachteiligung",
            "Lokale Ökonomie", "Modellvorhaben", "Bürgerengagement", "Quartiermanagement",
            "Europäischer Sozialfonds"]  # fmt: skip
TITLES = ["Städte in sozialer Verantwortung.", "Grün in der Stadt u.a.",
          "Mobilität und Verkehr in Groß- und Mittelstädten.", "Wohnen im Quartier."]  # fmt: skip
TYPES = ["Zeitschriftenaufsatz", "Monographie", "Aufsatz in Sammelwerk", "Graue Literatur"]
ABSTRACT = (
    "In den Städten zeichnet sich die gesellschaftliche Ungleichheit räumlich ab. Die "
    "Unterschiede zwischen bevorzugten und benachteiligten Quartieren vergrößern sich. "
    "Der Sozialraum wird zur ressortübergreifenden Handlungsebene. "
)
ISSNS = ["0303-2493", "0170-9364", "0303-2494"]


def _fields(rng: random.Random, n: int, with_language: bool) -> list[tuple[str, str, str]]:
    fields = [("contributor", "author", name) for name in rng.sample(NAMES, rng.randint(1, 3))]
    fields += [
        ("date", "accessioned", "2020-01-04T10:11:12Z"),
        ("date", "available", "2020-01-04T10:11:12Z"),
    ]
    fields += [
        (
            "date",
            "issued",
            rng.choice(
                [
                    f"{rng.randint(1950, 2024)}",
                    f"{rng.randint(1950, 2024)}-0{rng.randint(1, 9)}",
                    "[2009]",
                ]
            ),
        )
    ]
    fields += [
        ("identifier", "issn", rng.choice(ISSNS)),
        ("identifier", "uri", f"https://orlis.difu.de/handle/difu/{n}"),
    ]
    fields += [
        ("description", "abstract", ABSTRACT * rng.randint(1, 4)),
        ("description", "abstracttype", "Abs"),
    ]
    fields += [("title", "", f"{rng.choice(TITLES)[:-1]} {n}."), ("type", "", rng.choice(TYPES))]
    fields += [("identifier", "other", f"DM{n:08d}")]
    if with_language:
        fields += [("language", "iso", "ger")]
    fields += [("subject", "", s) for s in rng.sample(SUBJECTS, rng.randint(5, 24))]
    return fields  # fmt: skip


HEADER = (
    '<record xmlns="http://www.openarchives.org/OAI/2.0/"><header><identifier>'
    "oai:orlis.difu.de:difu/{n}</identifier><datestamp>2022-11-25T09:14:37Z</datestamp>"
    "<setSpec>com_difu_1</setSpec></header><metadata>"
)


def dim_xml(fields: list[tuple[str, str, str]], n: int) -> bytes:
    body = "".join(
        f'<dim:field mdschema="dc" element="{e}"' + (f' qualifier="{q}"' if q else "")
        + (' lang="de"' if q == "abstract" else "") + f">{escape(v)}</dim:field>"
        for e, q, v in fields
    )  # fmt: skip
    return (
        HEADER.format(n=n)
        + f'<dim:dim xmlns:dim="http://www.dspace.org/xmlns/dspace/dim">{body}</dim:dim>'
        + "</metadata></record>"
    ).encode()


DC_NAME = {"contributor": "creator"}


def oai_dc_xml(fields: list[tuple[str, str, str]], n: int) -> bytes:
    body = "".join(
        f"<dc:{DC_NAME.get(e, e)}>{escape(v)}</dc:{DC_NAME.get(e, e)}>" for e, _q, v in fields
    )
    return (
        HEADER.format(n=n)
        + '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        + f'xmlns:dc="http://purl.org/dc/elements/1.1/">{body}</oai_dc:dc></metadata></record>'
    ).encode()


def generate(n: int, no_language_share: float) -> dict[str, list[RawRecord]]:
    rng = random.Random(42)
    records: dict[str, list[RawRecord]] = {"dim": [], "oai_dc": []}
    for i in range(n):
        fields = _fields(rng, i, with_language=rng.random() >= no_language_share)
        for prefix, build in (("dim", dim_xml), ("oai_dc", oai_dc_xml)):
            identifier = f"oai:orlis.difu.de:difu/{i}"
            records[prefix].append(
                RawRecord(identifier, "2022-11-25", False, ["com_difu_1"], build(fields, i), prefix)
            )
    return records


def run(raws: list[RawRecord]) -> tuple[float, int]:
    """CPU seconds (process time, so that other load on the machine does not count) and how
    many records had their language detected."""
    start = time.process_time()
    detected = 0
    for raw in raws:
        detected += normalize(raw, source="orlis").language_detected
    return time.process_time() - start, detected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="records per format")
    parser.add_argument("--no-language-share", type=float, default=0.2)
    args = parser.parse_args()
    records = generate(args.n, args.no_language_share)
    normalize(records["dim"][0], source="warm-up")  # load the language model outside timing
    run(records["dim"][:500])
    lines = [
        f"normalize benchmark, {args.n} records per format, one core, "
        f"{args.no_language_share:.0%} without a language field (detected with py3langid); "
        "rates are per CPU second of this process",
        f"python {platform.python_version()} on {platform.machine()} {platform.system()}",
    ]
    for prefix, raws in records.items():
        seconds, detected = run(raws)
        size = sum(len(r.xml) for r in raws) / len(raws)
        lines.append(
            f"{prefix:>7}: {len(raws) / seconds:9,.0f} records/s  ({seconds:.2f} s, "
            f"avg {size:,.0f} bytes/record, language detected for {detected})"
        )
    for prefix, raws in records.items():
        with_language = [r for r in raws if b"ger<" in r.xml]
        seconds, _ = run(with_language)
        lines.append(
            f"{prefix:>7}: {len(with_language) / seconds:9,.0f} records/s  "
            f"(only records with a language field)"
        )
    report = "\n".join(lines)
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

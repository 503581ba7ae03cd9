"""A standard number typed in a query (`isbn:`, `issn:`, `doi:`) in the form the index stores.

The crosswalks store every ISBN as ISBN-13 digits (`9783170242807`), every ISSN hyphenated
(`0303-2493`) and every DOI bare and lowercase (`10.1000/xyz`), whatever spelling the
repository used (`harvester.normalize.crosswalks.common`). A librarian types the number as it
is printed: `isbn:978-3-17-024280-7`, the ISBN-10 `isbn:3-17-024280-6`, `issn:03032493`,
`doi:https://doi.org/10.1000/XYZ`. Both backends bring such a value into the stored form with
the crosswalks' own functions; a value that is no valid number is searched as typed.
"""

from __future__ import annotations

from harvester.normalize.crosswalks.common import DOI_RE, normalize_isbn, normalize_issn


def stored_form(field: str, value: str) -> str:
    """`value` of `field:value` as the index holds it (unchanged for other fields)."""
    if field == "isbn":
        return normalize_isbn(value) or value
    if field == "issn":
        return normalize_issn(value) or value
    if field == "doi":
        doi = DOI_RE.match(value.strip())
        return doi.group(1).lower() if doi else value
    return value

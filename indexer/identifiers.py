"""A standard number typed in a query (`isbn:`, `issn:`, `doi:`) in the form the index stores.

The crosswalks store every ISBN as ISBN-13 digits (`9783170242807`), every ISSN hyphenated
(`0303-2493`) and every DOI bare and lowercase (`10.1000/xyz`), whatever spelling the
repository used (`harvester.normalize.crosswalks.common`, which the indexer does not import;
tests/test_backend_contract.py checks that both give the same form). A librarian types the
number as it is printed: `isbn:978-3-17-024280-7`, the ISBN-10 `isbn:3-17-024280-6`,
`issn:03032493`, `doi:https://doi.org/10.1000/XYZ`. Both backends bring such a value into the
stored form; a value that is no valid number is searched as typed.
"""

from __future__ import annotations

import re

from stdnum import isbn, issn
from stdnum.exceptions import ValidationError

_DOI = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/|info:doi/)?(10\.\d{4,9}/\S+)$", re.I)


def stored_form(field: str, value: str) -> str:
    """`value` of `field:value` as the index holds it (unchanged for other fields)."""
    try:
        if field == "isbn" and len(re.sub(r"[\s-]", "", value)) in (10, 13):
            return str(isbn.to_isbn13(isbn.validate(value)))
        if field == "issn":
            return str(issn.format(issn.validate(value)))
    except ValidationError:
        return value
    if field == "doi" and (doi := _DOI.match(value.strip())):
        return doi.group(1).lower()
    return value

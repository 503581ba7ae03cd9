"""The crosswalk registry: one module per metadata format, one line per name here.

A crosswalk is a function that reads the parsed `<metadata>` payload root element of one
record and returns a `common.Draft` (raw field values); `harvester.normalize.normalizer` does the
format-independent finishing. To add a format: write `crosswalks/<format>.py` with a
`crosswalk(payload) -> Draft` function and register its name(s) below.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from harvester.normalize.crosswalks import datacite, dim, marcxml, mets, mods, oai_dc, oai_doaj
from harvester.normalize.crosswalks.common import Draft

Crosswalk = Callable[[etree._Element], Draft]

CROSSWALKS: dict[str, Crosswalk] = {
    "oai_dc": oai_dc.crosswalk,
    "dim": dim.crosswalk,
    "mods": mods.crosswalk,
    "marcxml": marcxml.crosswalk,
    "marc21": marcxml.crosswalk,
    "marc": marcxml.crosswalk,
    "mets": mets.crosswalk,
    "datacite": datacite.crosswalk,
    "oai_datacite": datacite.crosswalk,
    "oai_doaj": oai_doaj.crosswalk,
}

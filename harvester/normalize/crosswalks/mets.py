"""METS records (DSpace, Kitodo/Visual Library): the descriptive metadata is MODS inside a
`dmdSec/mdWrap[@MDTYPE="MODS"]/xmlData`, so this crosswalk finds that MODS and hands it to
the MODS crosswalk.

Which dmdSec: the one the logical structMap's top division points at (`DMDID`), else the
first MODS that has a title (Kitodo also writes physical-only dmdSecs without one). File
URLs (`fileSec` FLocat) are not links here: they point at page images, not the item.
"""

from __future__ import annotations

from lxml import etree

from harvester.normalize.crosswalks.common import Draft
from harvester.normalize.crosswalks.mods import crosswalk as mods_crosswalk
from harvester.oai.xmlsafe import local_name

_MODS = "{http://www.loc.gov/mods/v3}mods"


def crosswalk(payload: etree._Element) -> Draft:
    """Read a `<mets:mets>` payload into a Draft via its MODS."""
    sections = {
        dmd.get("ID"): dmd for dmd in payload.iter("{*}dmdSec") if dmd.get("ID") is not None
    }
    preferred: list[etree._Element] = []
    for struct_map in payload.iter("{*}structMap"):
        if (struct_map.get("TYPE") or "").upper() == "LOGICAL":
            for division in struct_map.iter("{*}div"):
                for dmd_id in (division.get("DMDID") or "").split():
                    if dmd_id in sections:
                        preferred.append(sections[dmd_id])
                if preferred:
                    break
    candidates = preferred + [s for s in sections.values() if s not in preferred]
    mods_elements = [m for section in candidates for m in section.iter(_MODS, "{*}mods")]
    if not mods_elements:
        mods_elements = [m for m in payload.iter("{*}mods") if local_name(m) == "mods"]
    for element in mods_elements:
        if any(True for _ in element.iter("{*}title")):
            return mods_crosswalk(element)
    return mods_crosswalk(mods_elements[0]) if mods_elements else Draft()

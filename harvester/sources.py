"""Sources: the repositories in `config/sources.yaml`, or a bare OAI-PMH URL from the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

from harvester.errors import ErnteError


class SourceError(ErnteError, ValueError):
    """A source name that is not configured, or a malformed sources file."""


@dataclass(slots=True, frozen=True)
class Source:
    """One repository to harvest."""

    key: str
    base_url: str
    metadata_prefix: str = "oai_dc"
    fallback_prefix: str | None = None
    sets: tuple[str, ...] = ()
    schedule: str | None = None
    crosswalk: str | None = None
    name: str = ""
    page_delay: float | None = None


def load_sources(path: Path) -> dict[str, Source]:
    """All sources of a sources file, by key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise SourceError(f"cannot read sources file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SourceError(f"cannot read sources file {path}: {_one_line(exc)}") from exc
    entries = data.get("sources") or {}
    if not isinstance(entries, dict):
        raise SourceError(f"{path}: 'sources' must be a mapping of name -> settings")
    sources: dict[str, Source] = {}
    for key, entry in entries.items():
        if not isinstance(entry, dict) or not entry.get("base_url"):
            raise SourceError(f"{path}: source {key!r} needs a base_url")
        sources[key] = Source(
            key=str(key),
            base_url=str(entry["base_url"]),
            metadata_prefix=str(entry.get("metadata_prefix") or "oai_dc"),
            fallback_prefix=entry.get("fallback_prefix"),
            sets=tuple(str(s) for s in entry.get("sets") or ()),
            schedule=entry.get("schedule"),
            crosswalk=entry.get("crosswalk"),
            name=str(entry.get("name") or key),
            page_delay=entry.get("page_delay"),
        )
    return sources


def adhoc_key(base_url: str) -> str:
    """The source key of a bare base URL: host, port and path, so that two endpoints on one
    host (`/oai/request`, `/oai/dd`) keep separate state, archives and locks; credentials in
    the URL are not part of it."""
    parts = urlparse(base_url)
    host = parts.netloc.rpartition("@")[2]  # never user:password, which would land in logs
    slug = f"{host}{parts.path}".replace(":", "_").replace("/", "_").strip("_")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in slug) or "adhoc"


def resolve_source(name_or_url: str, path: Path, prefix: str | None = None) -> Source:
    """A configured source by name, or an ad-hoc source for an OAI-PMH base URL."""
    if name_or_url.startswith(("http://", "https://")):
        parts = urlparse(name_or_url)
        if not parts.hostname or any(c.isspace() for c in name_or_url):
            raise SourceError(f"{name_or_url!r} is not an OAI-PMH base URL (no host, or a space)")
        key = adhoc_key(name_or_url)
        return Source(key=key, base_url=name_or_url, metadata_prefix=prefix or "oai_dc", name=key)
    sources = load_sources(path)
    if name_or_url not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise SourceError(f"unknown source {name_or_url!r} (configured: {known}); or give a URL")
    return sources[name_or_url]


def source_of_archive(sources: Mapping[str, Source], key: str, prefix: str) -> Source:
    """The source an archive belongs to: its configured entry, or, for the archive of a bare
    URL (whose base URL is not needed to read it), a stand-in with that key and prefix."""
    return sources.get(key) or Source(key=key, base_url="", metadata_prefix=prefix)


def _one_line(error: yaml.YAMLError) -> str:
    """A YAML error as one line, `line L, column C: problem` (PyYAML's own text spans several
    lines, with the offending line and a caret)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")

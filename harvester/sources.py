"""Sources: the repositories in `config/sources.yaml`, or a bare OAI-PMH URL from the CLI."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import yaml

from harvester.errors import ErnteError
from harvester.redact import MASK, redact

if TYPE_CHECKING:
    from celery.schedules import crontab


class SourceError(ErnteError, ValueError):
    """A source name that is not configured, or a malformed sources file."""


class EarlierHarvestsUnreadable(ErnteError):
    """The keys of earlier harvests of bare URLs could not be read (in cluster mode: Redis)."""


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


_PREFIX = re.compile(r"[A-Za-z0-9_.!~*'()-]+\Z")
"""The characters OAI-PMH allows in a metadataPrefix (no `/`: it names a file of the archive)."""

_KEY = re.compile(r"[A-Za-z0-9_.-]+\Z")
"""The characters of a configured source name (it names the archive's directory as it is)."""


def check_prefix(prefix: str) -> str:
    """`prefix`, or SourceError when it is no OAI-PMH metadataPrefix: `--prefix ../x` or
    `/tmp/x` would otherwise put an archive file outside the data directory."""
    if not _PREFIX.match(prefix) or prefix.strip(".") == "":
        raise SourceError(
            f"metadata prefix {prefix!r} is not an OAI-PMH metadataPrefix "
            "(letters, digits and - _ . ! ~ * ' ( ) only)"
        )
    return prefix


def check_base_url(url: str) -> str:
    """`url`, or SourceError when it is no http(s) URL with a host and a valid port."""
    try:
        parts = urlparse(url)
        port = parts.port
    except ValueError as exc:  # an unclosed IPv6 bracket, a port that is no number or too big
        raise SourceError(f"{redact(url)!r} is not an OAI-PMH base URL: {exc}") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in url)
        or port == 0
    ):
        raise SourceError(
            f"{redact(url)!r} is not an OAI-PMH base URL "
            "(http or https, a host, no space, a port from 1 to 65535)"
        )
    return url


def _check_values(entry: dict[str, object]) -> None:
    """SourceError for a value of the wrong kind: `sets: abc` was read letter by letter (sets
    a, b and c), and `page_delay: fast` failed only at the second page."""
    sets = entry.get("sets")
    if sets is not None and (
        not isinstance(sets, list) or not all(isinstance(s, str | int) for s in sets)
    ):
        raise SourceError(f"sets must be a list of set specs, e.g. [col_1, col_2], not {sets!r}")
    specs = [str(s) for s in sets or ()]
    if len(set(specs)) != len(specs):  # [1, "1"]: the same set twice, run as two harvests
        raise SourceError(f"sets lists a set spec twice: {sets!r}")
    delay = entry.get("page_delay")
    if delay is not None and (
        isinstance(delay, bool)
        or not isinstance(delay, int | float)
        or not math.isfinite(delay)
        or delay < 0
    ):
        raise SourceError(f"page_delay must be a number of seconds >= 0, not {delay!r}")
    crosswalk = entry.get("crosswalk")
    if crosswalk is not None and not isinstance(crosswalk, str):
        raise SourceError(f"crosswalk must be one crosswalk name, e.g. dim, not {crosswalk!r}")


def load_sources(path: Path) -> dict[str, Source]:
    """All sources of a sources file, by key."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read sources file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SourceError(f"cannot read sources file {path}: {_one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise SourceError(f"{path}: must be a mapping with a 'sources' entry")
    entries = data.get("sources") or {}
    if not isinstance(entries, dict):
        raise SourceError(f"{path}: 'sources' must be a mapping of name -> settings")
    sources: dict[str, Source] = {}
    for key, entry in entries.items():
        if not isinstance(key, str) or not _KEY.match(key) or key.strip(".") == "":
            raise SourceError(
                f"{path}: source name {key!r}: use letters, digits and - _ . only, not dots "
                "alone (it names the source's archive directory)"
            )
        if not isinstance(entry, dict) or not entry.get("base_url"):
            raise SourceError(f"{path}: source {key!r} needs a base_url")
        try:
            check_base_url(str(entry["base_url"]))
            for prefix in (entry.get("metadata_prefix"), entry.get("fallback_prefix")):
                if prefix is not None:
                    check_prefix(str(prefix))
            _check_values(entry)
        except SourceError as exc:
            raise SourceError(f"{path}: source {key!r}: {exc}") from None
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


def parse_cron(expression: str, nowfun: Callable[[], datetime] | None = None) -> crontab:
    """A five-field cron expression (minute hour day-of-month month day-of-week, UTC), as the
    Celery schedule beat runs it (celery is imported here only, when a schedule is checked)."""
    from celery.schedules import crontab

    parts = expression.split()
    if len(parts) != 5:
        raise SourceError(
            f"schedule {expression!r}: need five cron fields "
            "(minute hour day-of-month month day-of-week)"
        )
    minute, hour, day_of_month, month, day_of_week = parts
    try:
        return crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
            nowfun=nowfun,
        )
    except ValueError as exc:
        raise SourceError(f"schedule {expression!r}: {exc}") from exc


def scheduled_sources(path: Path) -> dict[str, Source]:
    """The sources of the sources file `path`, each schedule checked to be a cron expression;
    SourceError naming the file (and the source) otherwise."""
    sources = load_sources(path)
    for source in sources.values():
        if source.schedule:
            try:
                parse_cron(str(source.schedule))
            except SourceError as exc:
                raise SourceError(f"{path}: source {source.key!r}: {exc}") from None
    return sources


def adhoc_key(base_url: str) -> str:
    """The source key of a bare base URL: host, port and path, so that two endpoints on one
    host (`/oai/request`, `/oai/dd`) keep separate state, archives and locks; credentials in
    the URL are not part of it."""
    parts = urlparse(base_url)
    host = parts.netloc.rpartition("@")[2]  # never user:password, which would land in logs
    slug = f"{host}{parts.path}".replace(":", "_").replace("/", "_").strip("_")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in slug) or "adhoc"


def harvest_command(source: str, set_spec: str = "", prefix: str = "", *flags: str) -> str:
    """The `ernte harvest` command line that runs one harvest again, for the way out that
    messages print: the set and the metadata prefix are named, since without them the command
    harvests the source's default ones (a bare URL's key names it too, see `resolve_source`)."""
    words = ["ernte", "harvest", source]
    if set_spec:
        words += ["--set", set_spec]
    if prefix:
        words += ["--prefix", prefix]
    return shlex.join([*words, *flags])


def is_base_url(name_or_url: str) -> bool:
    """Whether a source is given as an OAI-PMH base URL rather than by a name."""
    return name_or_url.startswith(("http://", "https://"))


def source_key(name_or_url: str) -> str:
    """The key of a source given by name (configured, or a bare URL's key) or by base URL."""
    return adhoc_key(name_or_url) if is_base_url(name_or_url) else name_or_url


def resolve_source(
    name_or_url: str,
    path: Path,
    prefix: str | None = None,
    earlier_urls: Callable[[], Mapping[str, str]] | None = None,
) -> Source:
    """A configured source by name, or an ad-hoc source for an OAI-PMH base URL, also named by
    its key once harvested (`earlier_urls`: key -> base URL of earlier harvests of bare URLs,
    read only for a name that is not configured; a configured name comes first)."""
    if prefix is not None:
        check_prefix(prefix)
    if not is_base_url(name_or_url):
        sources = load_sources(path)
        if name_or_url in sources:
            return sources[name_or_url]
        known = ", ".join(sorted(sources)) or "none"
        unknown = f"unknown source {name_or_url!r} (configured: {known}); or give a URL"
        try:
            earlier = earlier_urls() if earlier_urls is not None else {}
        except EarlierHarvestsUnreadable as exc:
            raise SourceError(
                f"{unknown} (the keys of earlier harvests of base URLs could not be read: {exc})"
            ) from exc
        if name_or_url not in earlier:
            raise SourceError(unknown)
        name_or_url = earlier[name_or_url]
        if MASK in name_or_url:
            raise SourceError(
                f"source {adhoc_key(name_or_url)!r} was harvested from a base URL with a "
                f"password, which ernte does not keep: give the URL ({name_or_url}) with it"
            )
    check_base_url(name_or_url)
    key = source_key(name_or_url)
    return Source(key=key, base_url=name_or_url, metadata_prefix=prefix or "oai_dc", name=key)


def source_of_archive(sources: Mapping[str, Source], key: str, prefix: str) -> Source:
    """The source an archive belongs to: its configured entry, or, for the archive of a bare
    URL (whose base URL is not needed to read it), a stand-in with that key and prefix."""
    return sources.get(key) or Source(key=key, base_url="", metadata_prefix=prefix)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping: plain PyYAML keeps the
    last, so a second `orlis:` entry pasted below the first silently replaced it (and a
    repeated `schedule:` silently changed when a harvest runs). Keys merged in with `<<` may
    still be overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                line = first_line.setdefault(key, key_node.start_mark.line)
            except TypeError:  # an unhashable key: PyYAML's own error follows
                continue
            if line != key_node.start_mark.line:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first given on line {line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep)


def _one_line(error: yaml.YAMLError) -> str:
    """A YAML error as one line, `line L, column C: problem` (PyYAML's own text spans several
    lines, with the offending line and a caret)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")

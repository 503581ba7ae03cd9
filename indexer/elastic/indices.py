"""The index lifecycle on Elasticsearch: template, versioned indices `<alias>-<n>`, alias switch.

Shared by `ElasticBackend.create` (a fresh or recreated index) and the zero-downtime rebuild
(`indexer.elastic.rebuild`): both install the template, create the next versioned index and move
the alias in one atomic request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from elasticsearch import Elasticsearch

from indexer.elastic.mapping import AUTO_EXPAND_REPLICAS, REFRESH_INTERVAL, template_body

log = logging.getLogger(__name__)

BULK_LOAD_SETTINGS: dict[str, Any] = {
    "index": {"number_of_replicas": 0, "auto_expand_replicas": False, "refresh_interval": "-1"}
}
"""Overrides of the template while loading: no replica copies, no periodic refresh."""

SERVING_SETTINGS: dict[str, Any] = {
    "index": {"auto_expand_replicas": AUTO_EXPAND_REPLICAS, "refresh_interval": REFRESH_INTERVAL}
}
"""The template's values, restored once loading is done."""


class RebuildError(RuntimeError):
    """A rebuild that was stopped before the alias switch (the live index is untouched)."""


def put_template(client: Elasticsearch, alias: str, *, with_decompounder: bool = False) -> None:
    """Install (or update) the composable template `alias` for the indices `alias-*`."""
    body = template_body(alias, with_decompounder=with_decompounder)
    client.indices.put_index_template(name=alias, **body)


def versioned_indices(client: Elasticsearch, alias: str) -> list[str]:
    """Existing `alias-<n>` indices, oldest first."""
    found = client.indices.get(index=f"{alias}-*", allow_no_indices=True, ignore_unavailable=True)
    return sorted(
        (name for name in found.body if _version_number(alias, name) is not None),
        key=lambda name: _version_number(alias, name) or 0,
    )


def next_index_name(alias: str, existing: Iterable[str]) -> str:
    """`alias-<n+1>` after the highest existing version (`alias-1` when there is none)."""
    numbers = [n for n in (_version_number(alias, name) for name in existing) if n is not None]
    return f"{alias}-{max(numbers, default=0) + 1}"


def indices_behind_alias(client: Elasticsearch, alias: str) -> list[str]:
    """The concrete indices the alias points at now ([] when the alias does not exist)."""
    if client.indices.exists(index=alias) and not client.indices.exists_alias(name=alias):
        raise RebuildError(
            f"'{alias}' is a concrete index, not an alias; ernte keeps its data in "
            f"'{alias}-<n>' indices behind the alias '{alias}'. Reindex or delete '{alias}' "
            "first, or set ES_INDEX_ALIAS to another name"
        )
    if not client.indices.exists_alias(name=alias):
        return []
    return sorted(client.indices.get_alias(name=alias).body)


def create_versioned_index(client: Elasticsearch, alias: str, *, bulk_load: bool = False) -> str:
    """Create the next `alias-<n>` from the template; `bulk_load` relaxes refresh/replicas."""
    name = next_index_name(alias, versioned_indices(client, alias))
    if bulk_load:
        client.indices.create(index=name, settings=BULK_LOAD_SETTINGS)
    else:
        client.indices.create(index=name)
    log.info("created index", extra={"index": name, "alias": alias, "bulk_load": bulk_load})
    return name


def alias_switch_actions(
    alias: str, new_index: str, old_indices: Sequence[str]
) -> list[dict[str, Any]]:
    """The `_aliases` actions that move `alias` to `new_index` in one atomic request."""
    actions: list[dict[str, Any]] = [
        {"remove": {"index": old, "alias": alias}} for old in old_indices if old != new_index
    ]
    actions.append({"add": {"index": new_index, "alias": alias}})
    return actions


def switch_alias(
    client: Elasticsearch, alias: str, new_index: str, old_indices: Sequence[str]
) -> None:
    client.indices.update_aliases(actions=alias_switch_actions(alias, new_index, old_indices))
    log.info(
        "alias switched",
        extra={"alias": alias, "index": new_index, "previous": list(old_indices)},
    )


def delete_indices(client: Elasticsearch, names: Iterable[str]) -> None:
    """Delete concrete indices by exact name (never a wildcard, never an alias)."""
    for name in names:
        if "*" in name or "," in name:
            raise ValueError(f"refusing to delete {name!r}: only exact index names")
        client.indices.delete(index=name)
        log.info("deleted index", extra={"index": name})


def _version_number(alias: str, name: str) -> int | None:
    match = re.fullmatch(re.escape(alias) + r"-(\d+)", name)
    return int(match.group(1)) if match else None

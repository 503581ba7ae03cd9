"""Which configuration file ernte reads: the config directory over the packaged default, file by
file; grown data under the data directory; nothing written into the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harvester.config_files import (
    COMPOUND_PARTS,
    INDEX_TEMPLATE,
    SHIPPED,
    SOURCES,
    STOPWORDS,
    config_file,
    packaged_file,
    part_list_file,
)
from harvester.settings import Settings
from tests.conftest import ERNTE, CLIResult

ROOT = Path(__file__).resolve().parent.parent
HARVESTER_DEFAULTS = ROOT / "harvester" / "defaults"
INDEXER_RESOURCES = ROOT / "indexer" / "resources"


def test_every_shipped_file_is_package_data() -> None:
    """The sources ship with the harvester; what the indexer reads ships with the indexer."""
    for name in SHIPPED:
        path = packaged_file(name)
        package = HARVESTER_DEFAULTS if name == SOURCES else INDEXER_RESOURCES
        assert path.is_file() and path.is_relative_to(package), path


def test_the_configured_word_lists_reach_the_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's stop list in the config directory is what the indexer analyzes with once
    the harvester has chosen it (the indexer never reads settings itself)."""
    from harvester.run.services import use_configured_word_lists
    from indexer import word_lists
    from indexer.analysis import analyze, analyze_positions, german_stopwords

    monkeypatch.setattr(word_lists, "_chosen", {})
    assert "und" in german_stopwords() and "stadt" not in german_stopwords()  # packaged
    assert analyze("Die Stadt und das Land") == ["stadt", "land"]  # the chain is made here
    assert prepared_subject_terms("Stadt und Land") == ["stadt", "land"]  # and memoized
    (tmp_path / "german").mkdir()
    (tmp_path / "german" / "stopwords_de.txt").write_text("# own\nstadt\n", encoding="utf-8")
    use_configured_word_lists(Settings(config_dir=tmp_path, data_dir=tmp_path / "data"))
    assert german_stopwords() == frozenset({"stadt"})
    # The analysis itself, not only the list: the chain made before follows the new list.
    assert analyze("Die Stadt und das Land") == ["die", "und", "das", "land"]
    assert analyze_positions("Stadt und Land") == [(1, "und"), (2, "land")]
    # ... and what the index stores: a subject heading analyzed (and memoized) before the
    # list changed is analyzed with the new one.
    assert prepared_subject_terms("Stadt und Land") == ["und", "land"]


def prepared_subject_terms(heading: str) -> list[str]:
    """The terms the embedded index stores in `subject` for a record with this heading."""
    from harvester.run.document import build_document
    from indexer.embedded.documents import prepare_document
    from indexer.embedded.schema import TEXT_FIELDS
    from tests.test_backend_contract import make_record

    fields = prepare_document(build_document(make_record(1, "Titel", [heading])), TEXT_FIELDS)
    return str(fields["subject"]).split()  # pre-analyzed: the terms, space-separated


def test_packaged_default_when_the_config_directory_lacks_the_file(tmp_path: Path) -> None:
    assert config_file(STOPWORDS, tmp_path / "nothing-here") == packaged_file(STOPWORDS)


def test_a_file_in_the_config_directory_wins_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "german").mkdir()
    own = tmp_path / "german" / "stopwords_de.txt"
    own.write_text("und\n", encoding="utf-8")
    assert config_file(STOPWORDS, tmp_path) == own
    assert config_file(SOURCES, tmp_path) == packaged_file(SOURCES)  # the others stay packaged


def test_config_directory_is_ERNTE_CONFIG_DIR_else_config_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ERNTE_SOURCES_FILE", raising=False)
    monkeypatch.delenv("ERNTE_CONFIG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings().sources_file == packaged_file(SOURCES)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "sources.yaml").write_text("sources: {}\n", encoding="utf-8")
    assert Settings().sources_file.resolve() == (tmp_path / "config" / "sources.yaml")
    elsewhere = tmp_path / "ops"
    elsewhere.mkdir()
    (elsewhere / "sources.yaml").write_text("sources: {}\n", encoding="utf-8")
    monkeypatch.setenv("ERNTE_CONFIG_DIR", str(elsewhere))
    assert Settings().sources_file == elsewhere / "sources.yaml"
    monkeypatch.setenv("ERNTE_SOURCES_FILE", str(tmp_path / "named.yaml"))
    assert Settings().sources_file == tmp_path / "named.yaml"  # named directly: wins


def test_grown_part_list_under_the_data_directory_wins(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert part_list_file(data_dir, tmp_path) == packaged_file(COMPOUND_PARTS)
    grown = data_dir / "german" / "compound_parts_de.txt"
    grown.parent.mkdir(parents=True)
    grown.write_text("stadt\n", encoding="utf-8")
    assert part_list_file(data_dir, tmp_path) == grown


@pytest.mark.usefixtures("data_dir")
def test_ernte_config_lists_each_file_with_its_origin(
    ernte: Callable[..., CLIResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cfg" / "german").mkdir(parents=True)
    (tmp_path / "cfg" / "german" / "stopwords_de.txt").write_text("und\n", encoding="utf-8")
    template = tmp_path / "cfg" / INDEX_TEMPLATE
    template.parent.mkdir(parents=True)
    template.write_text("{}", encoding="utf-8")
    monkeypatch.setenv("ERNTE_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("ERNTE_SOURCES_FILE", raising=False)
    listed = json.loads(ernte("config", "--json").output)["files"]
    assert listed[STOPWORDS]["origin"] == "override"
    # the template copy is never installed: ernte installs the one it builds
    assert listed[INDEX_TEMPLATE]["origin"].startswith("copy, not installed")
    assert listed[SOURCES] == {"path": str(packaged_file(SOURCES)), "origin": "package"}
    shown = ernte("config", "show", "sources.yaml")
    assert shown.exit_code == 0 and "orlis" in shown.output
    unknown = ernte("config", "show", "nope.txt")
    assert unknown.exit_code == 1 and "unknown configuration file" in unknown.stderr


def test_demo_without_the_demo_extra_says_how_to_install_it(
    ernte: Callable[..., CLIResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pyoai (as after `pip install ernte`), `ernte demo` names the extra to install."""
    monkeypatch.setitem(sys.modules, "oaipmh", None)  # what Python does for a missing package
    for module in ("harvester.demo.provider", "harvester.cli.demo"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    result = ernte("demo")
    assert result.exit_code == 1
    assert "pip install 'ernte[demo]'" in result.stderr


def test_every_host_path_docker_compose_mounts_exists() -> None:
    """The compose file mounts checkout folders by relative path (the German word lists into
    Elasticsearch, config/compose into the set-up): each must name a folder that exists."""
    from tests.shipped import PROJECT_ROOT, compose

    mounted = [
        volume.split(":")[0]
        for service in compose()["services"].values()
        for volume in service.get("volumes", [])
        if isinstance(volume, str) and volume.startswith("./")
    ]
    assert "./indexer/resources/german" in mounted
    for host in mounted:
        assert (PROJECT_ROOT / host).exists(), host


NOT_ERNTE_SETTINGS = {
    "ES_JAVA_OPTS": "the Elasticsearch container's JVM options (.env.example, compose)",
    "ES_PORT": "the host port compose publishes Elasticsearch on",
    "ES_VERSION": "the Elasticsearch and Kibana image version compose runs",
    "ES_PATH_CONF": "Elasticsearch's own configuration directory",
}


def environment_names_read() -> set[str]:
    """Every environment variable name `Settings` reads."""
    from pydantic import AliasChoices

    names: set[str] = set()
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(f"ERNTE_{field.upper()}")
    return names


def test_every_environment_name_the_docs_and_messages_give_is_read() -> None:
    """A variable named in the documentation, .env.example or an error message is one that
    ernte reads (`ES_INDEX_ALIAS` was documented and named in an error, but only
    `ERNTE_ES_INDEX_ALIAS` was read)."""
    import re

    pattern = re.compile(r"\b(?:ERNTE_[A-Z0-9_]+|ES_[A-Z0-9_]+|REDIS_URL|KIBANA_URL)\b")
    places = [ROOT / "README.md", ROOT / ".env.example", *ROOT.glob("*/README.md")]
    places += [*ROOT.glob("indexer/resources/*/README.md"), *ROOT.glob("harvester/**/*.py")]
    places += [*ROOT.glob("indexer/**/*.py")]
    read = environment_names_read()
    unknown = {
        f"{name} ({place.relative_to(ROOT)})"
        for place in places
        for name in pattern.findall(place.read_text(encoding="utf-8"))
        if name not in read and name not in NOT_ERNTE_SETTINGS
    }
    assert not unknown, sorted(unknown)
    assert "ES_INDEX_ALIAS" in read


def test_es_index_alias_is_read_with_or_without_the_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ES_INDEX_ALIAS", "ERNTE_ES_INDEX_ALIAS"):
        monkeypatch.delenv("ES_INDEX_ALIAS", raising=False)
        monkeypatch.delenv("ERNTE_ES_INDEX_ALIAS", raising=False)
        monkeypatch.setenv(name, "ernte-test-records")
        assert Settings().es_index_alias == "ernte-test-records"


def test_a_word_list_rewritten_in_place_is_read_again_when_chosen_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ernte compounds build` rewrites the grown part list in place, an operator edits a stop
    list in place: a long-running process (a server reopening its index after the rebuild, a
    Celery worker starting a task) chooses its lists again and must then read them again,
    though their paths did not change."""
    from harvester.run.services import use_configured_word_lists
    from indexer import word_lists
    from indexer.analysis import analyze
    from indexer.compounds import reload_part_lists
    from indexer.query_parts import compound_parts

    monkeypatch.setattr(word_lists, "_chosen", {})
    monkeypatch.setattr(word_lists, "_read_as", {})
    settings = Settings(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    grown = tmp_path / "data" / "german" / "compound_parts_de.txt"
    grown.parent.mkdir(parents=True)
    packaged_parts = packaged_file(COMPOUND_PARTS).read_text(encoding="utf-8")
    grown.write_text(packaged_parts, encoding="utf-8")
    stop_list = tmp_path / "config" / "german" / "stopwords_de.txt"
    stop_list.parent.mkdir(parents=True)
    stop_list.write_text("und\n", encoding="utf-8")
    try:
        use_configured_word_lists(settings)
        assert compound_parts("Quaxelbrunkplanung") == ()
        assert analyze("Stadt und Land") == ["stadt", "land"]
        grown.write_text(packaged_parts + "quaxelbrunk\n", encoding="utf-8")
        stop_list.write_text("und\nland\n", encoding="utf-8")
        use_configured_word_lists(settings)  # as after a rebuild swap or at a task's start
        assert compound_parts("Quaxelbrunkplanung") == ("quaxelbrunk", "planung")
        assert analyze("Stadt und Land") == ["stadt"]
    finally:
        reload_part_lists()


def test_the_documented_copy_of_the_sources_file_holds_the_packaged_sources(
    tmp_path: Path,
) -> None:
    """`ernte config show sources.yaml > config/sources.yaml`, as README showed it, wrote an
    empty file: the shell creates it before ernte runs, and it is then the file in use (found
    in review). README now shows `--default`; the old spelling says what happened."""
    (tmp_path / "config").mkdir()
    env = {
        k: v for k, v in os.environ.items() if k not in ("ERNTE_CONFIG_DIR", "ERNTE_SOURCES_FILE")
    }
    env["ERNTE_DATA_DIR"] = str(tmp_path / "data")

    def shell(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command.replace("ernte ", f"{ERNTE} ", 1)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    copied = shell("ernte config show --default sources.yaml > config/sources.yaml")
    assert copied.returncode == 0, copied.stderr
    copy = tmp_path / "config" / "sources.yaml"
    assert copy.read_bytes() == packaged_file(SOURCES).read_bytes()
    listed = json.loads(shell("ernte config --json").stdout)["files"][SOURCES]
    assert listed == {"path": "config/sources.yaml", "origin": "override"}

    copy.unlink()
    emptied = shell("ernte config show sources.yaml > config/sources.yaml")
    assert emptied.returncode == 1
    assert emptied.stderr.strip() == (
        "error: the output is config/sources.yaml itself, which the shell emptied before ernte"
        " read it; remove it and run"
        " `ernte config show --default sources.yaml > config/sources.yaml`"
    )
    restored = shell("ernte config show --default sources.yaml > config/sources.yaml")
    assert restored.returncode == 0, restored.stderr
    appended = shell("ernte config show sources.yaml >> config/sources.yaml")
    assert appended.returncode == 1  # not "emptied": the user's file is whole, keep it
    assert appended.stderr.strip() == (
        "error: the output is config/sources.yaml itself, so its text would be appended to"
        " itself; nothing was written"
    )
    assert copy.read_bytes() == packaged_file(SOURCES).read_bytes()

    # The way out runs as printed where the path has a space (it split into two words).
    spaced = tmp_path / "my config"
    spaced.mkdir()
    env["ERNTE_CONFIG_DIR"] = str(spaced)
    emptied = shell(f"ernte config show sources.yaml > '{spaced}/sources.yaml'")
    assert emptied.returncode == 1
    way_out = emptied.stderr.split("run `", 1)[1].rstrip().rstrip("`")
    (spaced / SOURCES).unlink()
    assert shell(way_out).returncode == 0, way_out
    assert (spaced / SOURCES).read_bytes() == packaged_file(SOURCES).read_bytes()

"""whitelist.yaml: every mistake is a one-line ConfigError naming file, key path, value and fix."""

from __future__ import annotations

import os
import stat

import pytest

from notebookjobs import client, config
from notebookjobs.errors import ConfigError
from notebookjobs.model.records import RetryPolicy
from notebookjobs.targets.discovery import discover
from notebookjobs.targets.registry import resolve


def load(project, text):
    project.write_whitelist(text, raw=True)
    return config.load_settings()


def test_both_forms_and_overrides(project):
    settings = load(project, """
retry_attempts: 4
retry_delay: 2
retry_backoff: 3
timeout: 60
worker: {concurrency: 3, autostart: false, grace_period: 5}
allowed_jobs:
  jobs.sample.SampleJobClass: [process, handle]
  jobs.sample:
    flaky: {retry_attempts: 0, timeout: 600}
    slow:
""")
    assert settings.policy == RetryPolicy(
        retry_attempts=4, retry_delay=2, retry_backoff=3, timeout=60
    )
    assert settings.policy_for("jobs.sample.SampleJobClass.process") == settings.policy
    assert settings.policy_for("jobs.sample.flaky") == RetryPolicy(
        retry_attempts=0, retry_delay=2, retry_backoff=3, timeout=600)
    assert settings.policy_for("jobs.sample.slow").max_attempts == 5
    assert (
        settings.worker.concurrency,
        settings.worker.autostart,
        settings.worker.grace_period,
    ) == (3, False, 5)
    assert settings.targets() == [
        "jobs.sample.SampleJobClass.handle",
        "jobs.sample.SampleJobClass.process",
        "jobs.sample.flaky",
        "jobs.sample.slow",
    ]


def test_defaults_when_keys_are_absent(project):
    settings = load(project, "allowed_jobs: {}\n")
    assert settings.policy == RetryPolicy(
        retry_attempts=3, retry_delay=5, retry_backoff=1, timeout=None
    )
    assert settings.worker.concurrency == 2 and settings.worker.autostart is True


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("retry_attempts: [1\n", ["not valid YAML", "line 2"]),
        ("retries: 3\n", ["retries", "one of the keys", "retry_attempts"]),
        ("retry_attempts: -1\n", ["retry_attempts", "-1", "whole number >= 0"]),
        ("retry_attempts: two\n", ["retry_attempts", "'two'", "whole number"]),
        ("retry_attempts: true\n", ["retry_attempts", "True", "whole number"]),
        ("retry_delay: -5\n", ["retry_delay", "-5", ">= 0"]),
        ("retry_backoff: 0\n", ["retry_backoff", "> 0"]),
        ("timeout: -1\n", ["timeout", "-1", "null or seconds, or a duration like"]),
        ("worker: {concurrency: 0}\n", ["worker > concurrency", "0", ">= 1"]),
        ("worker: {autostart: maybe}\n", ["worker > autostart", "'maybe'", "true or false"]),
        ("worker: {threads: 2}\n", ["worker > threads", "one of the keys"]),
        ("worker: 3\n", ["worker", "3", "a mapping"]),
        ("allowed_jobs: [jobs.sample]\n", ["allowed_jobs", "a mapping of owners"]),
        (
            "allowed_jobs: {jobs.sample: process}\n",
            ["allowed_jobs > jobs.sample", "'process'", "a list of member names"],
        ),
        (
            "allowed_jobs: {jobs.sample: [ok, {f: {timeout: 1}}]}\n",
            ["allowed_jobs > jobs.sample", "{'f': {'timeout': 1}}", "write them all as a mapping"],
        ),
        (
            "allowed_jobs: {jobs._private: [x]}\n",
            ["allowed_jobs > jobs._private", "does not start with _"],
        ),
        (
            "allowed_jobs: {jobs.sample: [_helper]}\n",
            ["allowed_jobs > jobs.sample > _helper", "names that start with _ are never allowed"],
        ),
        (
            "allowed_jobs: {jobs.sample: {flaky: {retries: 1}}}\n",
            ["allowed_jobs > jobs.sample > flaky > retries", "one of the keys"],
        ),
        (
            "allowed_jobs: {jobs.sample: {flaky: {timeout: 0}}}\n",
            ["allowed_jobs > jobs.sample > flaky > timeout", "> 0"],
        ),
        (
            "allowed_jobs: {jobs.sample: {flaky: 5}}\n",
            ["allowed_jobs > jobs.sample > flaky", "a mapping of overrides"],
        ),
        ("- just\n- a list\n", ["top level", "a mapping with keys"]),
    ],
)
def test_each_mistake_names_file_key_value_and_fix(project, text, fragments):
    with pytest.raises(ConfigError) as info:
        load(project, text)
    message = str(info.value)
    assert "\n" not in message
    assert str(project.root / "whitelist.yaml") in message
    for fragment in fragments:
        assert fragment in message


def test_owner_that_does_not_import(project):
    settings = load(project, "allowed_jobs: {jobs.missing: [run]}\n")
    with pytest.raises(
        ConfigError, match=r"allowed_jobs > jobs.missing: cannot import 'jobs.missing'"
    ):
        resolve("jobs.missing.run", settings)


def test_member_that_does_not_exist_or_is_not_callable(project):
    (project.root / "jobs" / "consts.py").write_text("LIMIT = 3\n\ndef go():\n    pass\n")
    settings = load(project, "allowed_jobs: {jobs.consts: [LIMIT, nope, go]}\n")
    with pytest.raises(
        ConfigError,
        match=r"jobs.consts > nope: jobs.consts has no member 'nope'; its public callables are: go",
    ):
        resolve("jobs.consts.nope", settings)
    with pytest.raises(
        ConfigError, match=r"jobs.consts > LIMIT: jobs.consts.LIMIT is not callable"
    ):
        resolve("jobs.consts.LIMIT", settings)
    # Discovery lists both broken targets with their ConfigError, and the good one as it is
    rows = {row.target: row for row in discover(settings)}
    problems = [row.doc for row in rows.values() if row.kind == "error" and row.allowed]
    assert len(problems) == 2 and all(str(project.root / "whitelist.yaml") in p for p in problems)
    assert rows["jobs.consts.go"].kind == "function"


def test_owner_that_raises_on_import_is_a_config_error(project):
    (project.root / "jobs" / "broken.py").write_text("raise RuntimeError('no database here')\n")
    settings = load(project, "allowed_jobs: {jobs.broken: [run]}\n")
    with pytest.raises(
        ConfigError, match=r"cannot import 'jobs.broken' \(RuntimeError: no database here\)"
    ):
        resolve("jobs.broken.run", settings)


def test_edits_apply_without_restart(project):
    assert config.load_settings().split_target("jobs.testing.ok")
    project.write_whitelist("allowed_jobs: {jobs.testing: [fail]}\n")
    assert config.load_settings().split_target("jobs.testing.ok") is None


def test_root_search_and_env(project, monkeypatch, tmp_path):
    monkeypatch.delenv("NOTEBOOKJOBS_ROOT")
    nested = project.root / "notebooks" / "deep"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert config.find_root() == project.root
    assert config.load_settings().db_path == project.root / ".notebookjobs" / "queue.duckdb"
    monkeypatch.setenv("NOTEBOOKJOBS_DB", str(tmp_path / "other.duckdb"))
    assert config.load_settings().db_path == tmp_path / "other.duckdb"
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(ConfigError, match=r"no whitelist.yaml in .* or any folder above it"):
        config.find_root()
    monkeypatch.setenv("NOTEBOOKJOBS_ROOT", str(empty))
    with pytest.raises(ConfigError, match=r"NOTEBOOKJOBS_ROOT=.* has no whitelist.yaml"):
        config.find_root()


def test_a_root_named_by_the_environment_follows_its_value_and_its_whitelist(
        project, monkeypatch, tmp_path):
    """$NOTEBOOKJOBS_ROOT is resolved once per value (kept while its whitelist is there): a
    relative value means the working directory's folder, and a whitelist removed is noticed."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "whitelist.yaml").write_text((project.root / "whitelist.yaml").read_text())
    monkeypatch.setenv("NOTEBOOKJOBS_ROOT", str(project.root))
    assert config.find_root() == project.root
    assert config.find_root() == project.root  # kept
    monkeypatch.setenv("NOTEBOOKJOBS_ROOT", str(other))
    assert config.find_root() == other
    monkeypatch.setenv("NOTEBOOKJOBS_ROOT", "other")
    monkeypatch.chdir(tmp_path)
    assert config.find_root() == other
    monkeypatch.chdir(project.root)
    with pytest.raises(ConfigError, match=r"NOTEBOOKJOBS_ROOT=other has no whitelist.yaml"):
        config.find_root()  # "other" of this working directory
    monkeypatch.chdir(tmp_path)
    (other / "whitelist.yaml").unlink()
    with pytest.raises(ConfigError, match=r"NOTEBOOKJOBS_ROOT=other has no whitelist.yaml"):
        config.find_root()


def test_logs_dir_is_created_on_demand_and_private(project):
    settings = config.load_settings()
    assert settings.logs_dir == project.root / "logs"
    assert not settings.logs_dir.exists()  # reading the settings creates nothing
    old_umask = os.umask(0)
    try:
        client.run_now("jobs.testing.ok", [], {}, echo=False)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(settings.logs_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((settings.logs_dir / "background_jobs.log").stat().st_mode) == 0o600

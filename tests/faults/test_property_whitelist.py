"""Property (SPEC §4, §14): whatever whitelist.yaml holds, ``parse_whitelist`` returns Settings
the queue can store and run, or raises ``ConfigError``; nothing else escapes."""

from __future__ import annotations

import math

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from notebookjobs.config import whitelist
from notebookjobs.errors import ConfigError

from .poison import INT32, WHITELIST_DATA, YAML_TEXT, examples


def parse(project, text: str):
    """Settings, or None for a ConfigError with a message; any other exception fails."""
    try:
        return whitelist.parse_whitelist(project.root / "whitelist.yaml", text, root=project.root,
                                         db_path=project.db, lock_timeout=60.0)
    except ConfigError as exc:
        assert str(exc).strip()
        return None


def external_packages(text: str) -> set[str]:
    try:
        data = yaml.safe_load(text)
    except Exception:  # the whitelist was accepted; what YAML says is the parser's business
        return set()
    named = data.get("external_packages") if isinstance(data, dict) else None
    return {str(p) for p in named} if isinstance(named, list) else set()


def check_settings(project, settings, text: str) -> None:
    """What accepted settings must be: storable numbers, owners from the project or named."""
    policies = [
        settings.policy,
        *(p for members in settings.allowed.values() for p in members.values()),
    ]
    for policy in policies:
        assert type(policy.retry_attempts) is int and policy.retry_attempts >= 0, policy
        # max_attempts is an INTEGER column: beyond it, every dispatch would wedge the commits
        assert policy.max_attempts <= INT32[1], f"retry_attempts={policy.retry_attempts} accepted"
        for name in ("retry_delay", "retry_backoff"):
            value = getattr(policy, name)
            assert isinstance(value, float) and math.isfinite(value) and value >= 0, (name, value)
        assert policy.timeout is None or (math.isfinite(policy.timeout) and policy.timeout > 0)
    worker = settings.worker
    assert type(worker.concurrency) is int and worker.concurrency >= 1
    assert math.isfinite(worker.grace_period) and worker.grace_period >= 0
    externals = external_packages(text)
    for owner in settings.allowed:
        top = owner.split(".")[0]
        in_project = (project.root / top).is_dir() or (project.root / f"{top}.py").is_file()
        assert in_project or top in externals, \
            f"owner {owner!r} is neither in the project nor named in external_packages (SPEC §4)"


def test_whitelist_structures_give_settings_or_config_error(project):
    @examples(100)
    @given(data=WHITELIST_DATA)
    @example(data={"retry_attempts": 99999999999, "allowed_jobs": {"jobs.testing": ["ok"]}})
    @example(data={"allowed_jobs": {"os": ["system"]}})
    @example(data={"allowed_jobs": {"builtins": {"eval": None}}})
    @example(data={"allowed_jobs": {"jobs.testing": ["ok", {"fail": {"timeout": 1}}]}})
    def one(data):
        text = yaml.safe_dump(data)
        settings = parse(project, text)
        if settings is not None:
            check_settings(project, settings, text)

    one()


def test_whitelist_text_gives_settings_or_config_error(project):
    @examples(100)
    @given(text=YAML_TEXT)
    @example(text="[" * 1500 + "]" * 1500)
    @example(text="a: " + "[" * 1500)
    @example(text="retry_delay: .nan\n")
    @example(text="allowed_jobs:\n  subprocess: [run]\n")
    def one(text):
        settings = parse(project, text)
        if settings is not None:
            check_settings(project, settings, text)

    one()


TOP_LINES = ["retry_attempts: 1\n", "retry_delay: 0\n", "retry_backoff: 1.0\n", "timeout: null\n",
             "worker: {autostart: false}\n"]


def test_a_key_given_twice_is_a_config_error(project):
    @examples(40)
    @given(lines=st.lists(st.sampled_from(TOP_LINES), min_size=1, max_size=4, unique=True),
           twice=st.integers(0, 3), where=st.sampled_from(["top", "owner", "member"]))
    def one(lines, twice, where):
        allowed = "allowed_jobs:\n  jobs.testing:\n    ok: {}\n    fail: {}\n"
        if where == "top":
            text = "".join(lines) + lines[twice % len(lines)] + allowed
        elif where == "owner":
            text = "".join(lines) + allowed + "  jobs.testing: [echo]\n"
        else:
            text = "".join(lines) + allowed + "    ok: {retry_attempts: 0}\n"
        assert parse(project, text) is None, f"a key given twice was accepted:\n{text}"

    one()

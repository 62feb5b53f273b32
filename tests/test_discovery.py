"""Discovery of jobs/: classes, methods, functions, signatures; a broken module hides nothing."""

from __future__ import annotations

import notebookjobs as nj


def rows_by_target(frame):
    return {row["target"]: row for row in frame.to_dict("records")}


def test_classes_methods_and_functions_with_parameters(project):
    rows = rows_by_target(nj.available_jobs())
    process = rows["jobs.sample.SampleJobClass.process"]
    assert process["owner"] == "jobs.sample.SampleJobClass"
    assert process["member"] == "process" and process["kind"] == "method" and process["allowed"]
    assert [(p["name"], p["annotation"], p["required"]) for p in process["parameters"]] == [
        ("param1", "str", True), ("param2", "str", True)]
    assert process["doc"].startswith("Combine two parameters")
    slow = rows["jobs.sample.slow"]
    assert slow["kind"] == "function"
    assert [(p["name"], p["default"]) for p in slow["parameters"]] == [
        ("seconds", 5.0),
        ("steps", 10),
    ]
    assert rows["jobs.testing.Greeter.shout"]["kind"] == "staticmethod"
    assert rows["jobs.testing.Greeter.kind"]["kind"] == "classmethod"
    assert rows["jobs.testing.Greeter.kind"]["parameters"] == []
    assert "jobs.testing.Greeter._secret" not in rows
    assert "jobs.testing._effect" not in rows
    echo = rows["jobs.testing.echo"]
    assert [p["kind"] for p in echo["parameters"]] == ["var_positional", "var_keyword"]


def test_allowed_flag_follows_the_whitelist(project):
    project.write_whitelist("allowed_jobs: {jobs.testing: [ok]}\n")
    rows = rows_by_target(nj.available_jobs())
    assert rows["jobs.testing.ok"]["allowed"]
    assert not rows["jobs.testing.fail"]["allowed"]
    assert not rows["jobs.sample.SampleJobClass.process"]["allowed"]


def test_subpackages_are_scanned_and_a_broken_module_is_reported(project):
    sub = project.root / "jobs" / "reports"
    sub.mkdir()
    (sub / "__init__.py").write_text("")
    (sub / "monthly.py").write_text(
        'def build_report(month: int = 1) -> str:\n    """Build it."""\n    return "ok"\n'
    )
    (project.root / "jobs" / "broken.py").write_text("import not_a_module_anywhere\n")
    rows = rows_by_target(nj.available_jobs())
    assert rows["jobs.reports.monthly.build_report"]["doc"] == "Build it."
    broken = rows["jobs.broken"]
    assert broken["kind"] == "error" and not broken["allowed"]
    assert "cannot import: ModuleNotFoundError" in broken["doc"]
    assert "jobs.testing.ok" in rows and "jobs.sample.slow" in rows


def test_allowed_target_outside_jobs_is_listed(project):
    (project.root / "tools.py").write_text(
        'def tidy(days: int = 7) -> int:\n    """Tidy up."""\n    return days\n'
    )
    project.write_whitelist("allowed_jobs: {tools: [tidy], jobs.gone: [run]}\n")
    rows = rows_by_target(nj.available_jobs())
    assert rows["tools.tidy"]["allowed"] and rows["tools.tidy"]["doc"] == "Tidy up."
    assert (
        rows["jobs.gone.run"]["kind"] == "error" and "cannot import" in rows["jobs.gone.run"]["doc"]
    )


def test_cli_jobs_lists_the_same(project):
    out = project.cli("jobs")
    assert out.returncode == 0, out.stderr
    assert "jobs.sample.SampleJobClass.process" in out.stdout and "param1: str" in out.stdout

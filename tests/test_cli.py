"""The CLI as a user runs it: `python -m notebookjobs ...` in a real project, exit codes and
output."""

from __future__ import annotations

import re

import notebookjobs as nj


def test_run_success_exit_0_logged_and_recorded(project):
    out = project.cli("run", "jobs.sample.SampleJobClass", "process", "param1,param2")
    assert out.returncode == 0, out.stderr
    assert "processing param1 and param2" in out.stdout
    found = re.search(r"job (\d+) completed after 1 attempt", out.stdout)
    assert found, out.stdout
    job_id = int(found.group(1))
    info = nj.status(job_id)
    assert info["status"] == "completed" and info["attempts"] == 1
    assert info["result"] == {"param1": "param1", "param2": "param2", "combined": "param1-param2"}
    assert "processing param1 and param2" in info["output"]
    assert info["started_at"] <= info["finished_at"]
    log = (project.root / "logs" / "background_jobs.log").read_text()
    assert re.search(rf"COMPLETED job={job_id} target=jobs.sample.SampleJobClass.process "
                     r"attempts=1/3 duration=\d+\.\d{3}s", log)


def test_run_accepts_the_seeds_backslashes_and_no_params(project):
    out = project.cli("run", "jobs\\sample\\SampleJobClass", "handle")
    assert out.returncode == 0, out.stderr
    assert 'completed after 1 attempt: "handled"' in out.stdout


def test_run_retries_then_succeeds(project):
    out = project.cli("run", "jobs.testing", "fail_times", "flaky,2")
    assert out.returncode == 0, out.stderr
    assert "completed after 3 attempts: 3" in out.stdout
    assert project.effect_lines("flaky") == ["1", "2", "3"]
    errors = (project.root / "logs" / "background_jobs_errors.log").read_text()
    assert len(re.findall(r"RETRYING job=\d+ target=jobs.testing.fail_times attempt=\d/3 "
                          r"error=RuntimeError: flaky: run \d fails", errors)) == 2
    assert "Traceback (most recent call last)" in errors


def test_run_fails_after_the_retries_exit_1(project):
    out = project.cli("run", "jobs.testing", "fail", "kaput")
    assert out.returncode == 1
    assert "failed after 3 attempts: ValueError: kaput" in out.stderr
    assert project.effect_lines("fail") == ["kaput"] * 3
    found = re.search(r"job (\d+) failed", out.stderr)
    assert found, out.stderr
    job_id = int(found.group(1))
    info = nj.status(job_id)
    assert (
        info["status"] == "failed"
        and info["attempts"] == 3
        and "ValueError: kaput" in info["error"]
    )
    errors = (project.root / "logs" / "background_jobs_errors.log").read_text()
    assert (
        errors.count(f"RETRYING job={job_id} ") == 2 and errors.count(f"FAILED job={job_id} ") == 1
    )
    assert f"    job={job_id} | ValueError: kaput" in errors
    assert not (project.root / "logs" / "background_jobs.log").exists()


def test_run_uses_the_retry_delay_and_backoff(project):
    project.write_whitelist("retry_attempts: 2\nretry_delay: 0.2\nretry_backoff: 2\n"
                            "allowed_jobs: {jobs.testing: [fail]}\n")
    out = project.cli("run", "jobs.testing", "fail")
    assert out.returncode == 1
    info = nj.jobs(status="failed").iloc[0]
    # three attempts separated by 0.2 s and 0.4 s: started_at is the last attempt's start
    assert (info["started_at"] - info["created_at"]).total_seconds() >= 0.6


def test_run_timeout_in_the_foreground(project):
    project.write_whitelist(
        "retry_attempts: 0\nallowed_jobs: {jobs.testing: {sleep: {timeout: 0.3}}}\n"
    )
    out = project.cli("run", "jobs.testing", "sleep", "30")
    assert out.returncode == 1
    assert "timed out after 0.3 s" in out.stderr
    assert project.effect_lines("sleep") == ["start"]


def test_run_refuses_input_exit_2_one_line(project):
    for args, fragment in [
        (("run", "os", "system", "ls"), "'os' is not under allowed_jobs"),
        (
            ("run", "jobs.sample.SampleJobClass", "process", "onlyone"),
            "missing a required argument",
        ),
        (
            ("run", "jobs.testing", "typed", "x,1,true,s,[],{}"),
            "n: 'x' is not accepted; expected int",
        ),
    ]:
        out = project.cli(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert fragment in out.stderr
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert nj.counts()["pending"] == 0 and sum(nj.counts().values()) == 0


def test_config_error_exit_2_one_line(project):
    project.write_whitelist("retry_attempts: -3\n")
    for args in (("dispatch", "jobs.testing.ok"), ("run", "jobs.testing", "ok")):
        out = project.cli(*args)
        assert out.returncode == 2
        assert "retry_attempts: -3 is not allowed" in out.stderr
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    # Reads work while the file is broken (SPEC §12): the user can still see the queue.
    out = project.cli("list")
    assert out.returncode == 0 and "page 1 of 1" in out.stdout, out.stderr


def test_dispatch_status_list_cancel_retry(project):
    out = project.cli("dispatch", "jobs.testing.typed", "3", "x=2.5", "flag=yes", "name=n",
                      "items=[1]", "options={}", "--priority", "7", "--delay", "60")
    assert out.returncode == 0, out.stderr
    job_id = int(out.stdout)
    info = nj.status(job_id)
    assert info["args"] == [3] and info["kwargs"] == {
        "x": 2.5,
        "flag": True,
        "name": "n",
        "items": [1],
        "options": {},
    }
    assert info["priority"] == 7

    status = project.cli("status", str(job_id))
    assert (
        status.returncode == 0
        and "status: pending" in status.stdout
        and "priority: 7" in status.stdout
    )

    listing = project.cli("list")
    assert listing.returncode == 0 and "page 1 of 1 (1 job)" in listing.stdout
    assert re.search(rf"^\s*{job_id}\s+jobs.testing.typed\s+pending\s+7\s+0", listing.stdout, re.M)

    assert project.cli("cancel", str(job_id)).stdout.strip() == f"job {job_id} cancelled"
    again = project.cli("cancel", str(job_id))
    assert again.returncode == 2 and "is cancelled: nothing to cancel" in again.stderr
    retried = project.cli("retry", str(job_id))
    assert retried.returncode == 0 and nj.status(int(retried.stdout))["status"] == "pending"

    assert "(1 job, cancelled)" in project.cli("list", "--status", "cancelled").stdout


def test_unknown_job_and_bad_usage_exit_2(project):
    out = project.cli("status", "999")
    assert out.returncode == 2 and "no job has id 999" in out.stderr
    out = project.cli("status", "abc")
    assert out.returncode == 2 and "invalid int value" in out.stderr
    out = project.cli("list", "--status", "done")
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_name_value_with_an_unknown_name_is_refused_with_did_you_mean(project):
    # Given a target whose parameters are param1 and param2
    target = "jobs.sample.SampleJobClass.process"
    # When a word names no parameter (a typo), it is refused, never stored as a positional string
    out = project.cli("dispatch", target, "a", "parm2=c")
    assert out.returncode == 2
    assert "has no parameter 'parm2' (its parameters: param1, param2)" in out.stderr
    assert "did you mean param2=c?" in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    # ... and so is a name nothing resembles, in `run` too (its P1,P2 words)
    out = project.cli("run", "jobs.testing", "typed", "1,nosuch=1")
    assert out.returncode == 2 and "has no parameter 'nosuch'" in out.stderr
    assert "did you mean" not in out.stderr and "expected int" not in out.stderr
    assert sum(nj.counts().values()) == 0
    # Then a value that contains '=' goes in by naming its parameter
    out = project.cli("dispatch", target, "param1=a=b", "param2=c")
    assert out.returncode == 0, out.stderr
    info = nj.status(int(out.stdout))
    assert info["args"] == [] and info["kwargs"] == {"param1": "a=b", "param2": "c"}
    # ... and a target taking **kwargs takes any name
    out = project.cli("dispatch", "jobs.testing.echo", "x", "anything=1")
    assert out.returncode == 0, out.stderr
    assert nj.status(int(out.stdout))["kwargs"] == {"anything": "1"}


def test_history_csv(project, tmp_path):
    nj.dispatch("jobs.testing.ok", 1)
    out = project.cli("history", "--csv", str(tmp_path / "h.csv"))
    assert out.returncode == 0, out.stderr
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0].startswith("id,target,args,kwargs,status") and len(lines) == 2
    assert lines[1].split(",")[1] == "jobs.testing.ok"


def test_history_to_a_missing_folder_is_one_line(project, tmp_path):
    for option in ("--csv", "--parquet"):
        out = project.cli("history", option, str(tmp_path / "no" / "such" / "h.out"))
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith("notebookjobs: cannot write ")
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr

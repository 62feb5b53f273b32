"""A job's output is all of it (SPEC §7, round 3): what it prints, what it writes to
``sys.stdout.buffer`` and to the file descriptors, what its subprocesses and C code print;
bounded as before, its last line shown while it runs, and none of it in the worker's log.
Real workers, real children, real subprocesses."""

from __future__ import annotations

import notebookjobs as nj
from notebookjobs.attempt.capture import OUTPUT_LIMIT_CHARS
from support import wait_until

#: the lines jobs.testing.all_outputs writes, in the order it writes them (printf's line is
#: in the C library's buffer until the attempt ends, so it comes where it comes)
IN_ORDER = ["print x", "fd1 x", "fd2 x", "sh x", "sh-err x", "buffer x", "last x"]


def assert_all_outputs(output: str) -> None:
    lines = output.splitlines()
    assert [line for line in lines if line in IN_ORDER] == IN_ORDER, output
    assert "printf x" in lines, output


def test_everything_a_job_writes_is_its_output_and_none_reaches_the_worker_log(
        project, start_worker):
    # Given a worker whose own output goes to its log (a detached one's is logs/worker.log)
    worker = start_worker()
    # When a job writes each way a program writes: print, the fds, a subprocess, .buffer, C
    info = nj.wait(nj.dispatch("jobs.testing.all_outputs"), timeout=60)
    # Then it succeeds, and every line is in its output, in the order written
    assert info["status"] == "completed", info["error"]
    assert info["result"] == "written"
    assert_all_outputs(info["output"])
    # And none of it is in the worker's log
    log = worker.output()
    assert not [line for line in (*IN_ORDER, "printf x") if line in log], log


def test_a_job_that_closes_its_output_does_not_take_the_next_ones(project, start_worker):
    # Given one child, and a job that closes fds 1 and 2 and replaces sys.stdout
    start_worker("--concurrency", "1")
    assert nj.wait(nj.dispatch("jobs.testing.close_output"), timeout=60)["result"] == "closed"
    # Then the next job in that child still has all its output
    info = nj.wait(nj.dispatch("jobs.testing.all_outputs"), timeout=60)
    assert info["status"] == "completed", info["error"]
    assert_all_outputs(info["output"])


def test_output_written_to_the_fd_is_bounded_and_never_blocks_the_job(project, start_worker):
    # Given a job that writes four times the bound to fd 1 in one call (more than a pipe
    # holds: the child reads while it writes), then a last line
    start_worker()
    size = 4 * OUTPUT_LIMIT_CHARS
    info = nj.wait(nj.dispatch("jobs.testing.flood", size), timeout=60)
    assert info["status"] == "completed", info["error"]
    # Then the output keeps the end, and says how much was dropped before it
    output = info["output"]
    assert output.startswith("[... ") and "characters dropped ...]" in output.splitlines()[0]
    assert output.endswith("\nthe end\n")
    assert len(output) < OUTPUT_LIMIT_CHARS + 100


def test_the_last_line_written_to_the_fd_shows_while_the_job_runs(project, start_worker):
    # Given a running job that wrote a line to fd 1 (not through print) and waits
    start_worker()
    gate = project.root / "gate"
    job = nj.dispatch("jobs.testing.say_and_wait", "loading part 7 of 9", str(gate))
    # Then that line is its progress message while it runs
    info = wait_until(lambda: (s := nj.status(job))["progress_message"] and s,
                      what="the job's last line")
    assert (info["status"], info["progress"], info["progress_message"]) == (
        "running", None, "loading part 7 of 9")
    gate.touch()
    assert nj.wait(job, timeout=30)["output"] == "loading part 7 of 9\n"


def test_a_foreground_run_shows_and_keeps_all_of_it(project):
    # When `notebookjobs run` runs the job in the foreground
    out = project.cli("run", "jobs.testing", "all_outputs")
    # Then the terminal saw every line, and so does the job's record
    assert out.returncode == 0, out.stderr
    assert_all_outputs(out.stdout)
    job = max(nj.history()["id"])
    assert nj.status(int(job))["status"] == "completed"
    assert_all_outputs(nj.status(int(job))["output"])

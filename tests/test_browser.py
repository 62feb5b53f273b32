"""The dashboard in a real browser (SPEC §9): JupyterLab on 127.0.0.1 runs
notebooks/dashboard.ipynb in a project of its own, and headless Chromium (Debian's, driven by
Playwright) dispatches through the form, watches the job go pending then completed, cancels a
slow job, pages forward, and saves a screenshot to build/dashboard.png (or ``$NJ_SCREENSHOT``;
the README's docs/dashboard.png comes from ``NJ_SCREENSHOT=docs/dashboard.png``;
``$NJ_FULL_SCREENSHOT`` also saves the whole JupyterLab page).

Needs /usr/bin/chromium: without it the test is skipped, except in CI (``$CI`` set), where it
fails. See tests/browser_lab.py for how Lab and the browser are run.
"""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest
from browser_lab import (
    STDERR_OUTPUT,
    chromium_page,
    clear_outputs,
    jupyter_lab,
    lab_env,
    require_browser,
    run_all,
    wait_all_run,
    wait_kernel_ready,
)
from dashboard_page import (
    assert_every_column_reachable,
    assert_first_row_in_first_viewport,
    assert_headings_whole,
    assert_in_viewport_with_focus,
    assert_right_below,
)

from support import REPO

PROCESS = "jobs.sample.SampleJobClass.process"
NOTEBOOK = REPO / "notebooks" / "dashboard.ipynb"
# The README shows docs/dashboard.png; refresh it with NJ_SCREENSHOT=docs/dashboard.png.
# (a relative path is the repo's: the tests run in a project folder of their own)
SCREENSHOT = REPO / os.environ.get("NJ_SCREENSHOT", "build/dashboard.png")
JOBS_IN_NOTEBOOK = 12  # what notebooks/dashboard.ipynb dispatches
VIEWPORT = (1280, 800)  # a laptop, with Lab's file browser open (issue 23)
DELAY_S = 5  # the job dispatched through the form runs this long after: time to see it pending


@pytest.fixture
def lab_project(project):
    """The test project with the repo's whitelist (only jobs.sample and notebooks/report.ipynb:
    the screenshot shows what a user of this repo sees) and notebooks/dashboard.ipynb; no worker
    until the notebook starts one."""
    (project.root / "jobs" / "testing.py").unlink()
    whitelist = (REPO / "whitelist.yaml").read_text()
    assert "autostart: true" in whitelist
    project.write_whitelist(whitelist.replace("autostart: true", "autostart: false"))
    (project.root / "notebooks").mkdir()
    shutil.copy(NOTEBOOK, project.root / "notebooks" / "dashboard.ipynb")
    # The notebook the repo's whitelist allows as a job (and schedules), listed in the Jobs
    shutil.copy(REPO / "notebooks" / "report.ipynb", project.root / "notebooks" / "report.ipynb")
    return project


@pytest.fixture
def stop_worker_after(lab_project):
    """Whatever happens, the worker the notebook starts is stopped at the end (gracefully: its
    jobs are cancelled first, so no grace period is waited for)."""
    yield
    from notebookjobs import client

    for status in ("pending", "running"):
        for job_id in client.jobs(per_page=1000, status=status)["id"]:
            client.cancel(int(job_id))
    client.stop_worker()


def test_dashboard_in_jupyterlab(lab_project, stop_worker_after, tmp_path):
    require_browser()
    from playwright.sync_api import expect

    from notebookjobs import client

    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 1)

    env = lab_env(lab_project.env(), tmp_path / "jupyter")
    assert env["NOTEBOOKJOBS_ROOT"] == str(lab_project.root) and "NOTEBOOKJOBS_DB" not in env
    with jupyter_lab(lab_project.root, env, tmp_path / "lab.log") as lab, \
            chromium_page(*VIEWPORT) as (page, page_errors):
        lap("lab and chromium up")
        page.goto(lab.url("notebooks/dashboard.ipynb"))
        wait_kernel_ready(page)
        lap("kernel ready")
        # The notebook is stored with its outputs (for nbval): clear them so that nothing seen
        # below can come from the stored run, then run every cell.
        clear_outputs(page)
        run_all(page)
        wait_all_run(page)
        lap("notebook run")

        # With the file browser open at 1280x800, the dashboard scrolled to the top of the
        # notebook's view: the queue's first row is in that first viewport, and every column
        # of the table is visible (or reachable by a visible scroll).
        expect(page.locator(".jp-FileBrowser")).to_be_visible()
        page.locator(".nj-dashboard").evaluate("d => d.scrollIntoView({block: 'start'})")
        expect(page.locator(".nj-queue-table tr.nj-row").first).to_be_visible()
        assert_first_row_in_first_viewport(page, VIEWPORT[1])
        assert_every_column_reachable(page)

        # The kernel (started by Lab, with Lab's environment) used this project's queue.
        assert client.worker_status()["running"]
        assert int(client.jobs()["id"].max()) == JOBS_IN_NOTEBOOK

        dash = page.locator(".nj-dashboard")
        expect(dash).to_be_visible()
        expect(page.locator(".nj-worker-state")).to_contain_text("worker: running")
        page_label = page.locator(".nj-page-label")
        expect(page_label).to_have_text(f"page 1 of 3 ({JOBS_IN_NOTEBOOK} jobs)")

        # Dispatch SampleJobClass.process through its form, with a priority and a delay.
        page.locator("button.nj-new-job").click()
        page.locator(f"button.nj-dispatch-{PROCESS.replace('.', '-')}").click()
        form = page.locator(f".nj-form-{PROCESS.replace('.', '-')}")
        expect(form).to_be_visible()
        form.locator(".nj-input-param1 input").fill("from")
        form.locator(".nj-input-param2 input").fill("the browser")
        # Number inputs send their value on change (blur), so leave each field with Tab.
        form.locator(".nj-form-priority input").fill("7")
        form.locator(".nj-form-priority input").press("Tab")
        form.locator(".nj-form-delay input").fill(str(DELAY_S))
        form.locator(".nj-form-delay input").press("Tab")
        form.locator("button.nj-form-submit").click()
        message = form.locator(".nj-form-message")
        expect(message).to_have_text(re.compile(r"^dispatched job \d+$"))
        job_id = int(message.inner_text().split()[-1])
        assert job_id == JOBS_IN_NOTEBOOK + 1
        info = client.status(job_id)
        assert (info["target"], info["args"], info["kwargs"], info["priority"]) == (
            PROCESS, [], {"param1": "from", "param2": "the browser"}, 7)
        delay = (info["run_at"] - info["created_at"]).total_seconds()
        assert delay == pytest.approx(DELAY_S, abs=0.5)

        # Newest first: its row is at the top of page 1, pending, then completed by the live
        # refresh (no cell is run again).
        status = page.locator(f".nj-status-{job_id}")
        expect(status).to_have_text("pending", timeout=(DELAY_S - 1) * 1000)
        lap("dispatched: pending")
        expect(page_label).to_have_text(f"page 1 of 3 ({JOBS_IN_NOTEBOOK + 1} jobs)")
        first = page.locator(".nj-queue-table tr.nj-row").first
        expect(first.locator(".nj-col-id")).to_have_text(str(job_id))
        expect(first.locator(".nj-col-arguments")).to_have_text(
            'param1="from", param2="the browser"')
        expect(first.locator(".nj-col-priority")).to_have_text("7")
        expect(status).to_have_text("completed", timeout=30_000)
        lap("completed")
        # ... by the dashboard's own refresh: each code cell ran once, none again.
        code_cells = page.locator(".jp-CodeCell").count()
        expect(page.locator(".jp-CodeCell .jp-InputPrompt").last).to_have_text(f"[{code_cells}]:")
        expect(page.locator(".nj-counts .nj-count-completed")).to_be_visible()

        # The five-minute slow job runs: the picture for the README shows all of this.
        queue = client.jobs(per_page=100)
        slow = queue[queue["kwargs"].map(lambda kw: kw.get("seconds") == 300)]
        assert list(slow["target"]) == ["jobs.sample.slow"], queue
        slow_id = int(slow["id"].iloc[0])
        expect(page.locator(f".nj-status-{slow_id}")).to_have_text("running", timeout=30_000)
        # Beside the file browser, with a running job's progress bar, every heading (and every
        # value but a target's or arguments') reads whole in Lab's font.
        expect(page.locator(".jp-FileBrowser")).to_be_visible()
        expect(page.locator(f".nj-row-{slow_id} .nj-bar")).to_be_visible(timeout=15_000)
        assert_headings_whole(page)
        page.locator("button.nj-new-job").click()  # folded again, for the picture
        page.locator(".nj-dashboard").evaluate("d => d.scrollIntoView({block: 'start'})")
        page.locator(".jp-NotebookPanel-toolbar").hover()  # no tooltip of a button in the picture
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        hidden = page.add_style_tag(content=".Toastify { display: none !important; }")
        page.screenshot(path=str(SCREENSHOT))  # without the toasts of the notebook's jobs
        hidden.evaluate("tag => tag.remove()")
        if os.environ.get("NJ_FULL_SCREENSHOT"):
            page.screenshot(path=os.environ["NJ_FULL_SCREENSHOT"])
        lap("screenshot")

        # Cancel it from its row: a running job asks once more ("Stop?").
        expect(page.locator(f"button.nj-retry-{slow_id}")).to_have_count(0)
        cancel = page.locator(f"button.nj-cancel-{slow_id}")
        cancel.click()
        expect(cancel).to_have_text("Stop?")
        assert client.status(slow_id)["status"] == "running"
        cancel.click()
        expect(page.locator(f".nj-status-{slow_id}")).to_have_text("cancelled", timeout=15_000)
        expect(page.locator(f".nj-row-{slow_id} .nj-outcome")).to_have_text("cancelled")
        expect(page.locator(f"button.nj-retry-{slow_id}")).to_be_visible()
        assert client.status(slow_id)["status"] == "cancelled"
        lap("cancelled")

        # Its Details open right below its row; Edit & re-run opens its form filled in.
        page.locator(f"button.nj-details-{slow_id}").click()
        detail = page.locator(".nj-detail")
        expect(detail).to_be_visible()
        expect(page.locator(".nj-detail-body")).to_contain_text(f"job {slow_id}")
        assert_right_below(page, f".nj-row-{slow_id}", ".nj-detail")
        page.locator("button.nj-detail-rerun").click()
        # The form opens there, in the viewport, with the focus.
        assert_in_viewport_with_focus(page, ".nj-form-jobs-sample-slow", VIEWPORT[1])
        slow_form = page.locator(".nj-form-jobs-sample-slow")
        expect(slow_form.locator(".nj-input-seconds input")).to_have_value("300")
        expect(slow_form.locator(".nj-input-steps input")).to_have_value("300")
        expect(slow_form.locator(".nj-form-priority input")).to_have_value("")
        # A number typed wrong is refused under its field with the API's words, not replaced.
        slow_form.locator(".nj-input-steps input").fill("abc")
        slow_form.locator(".nj-input-steps input").press("Tab")
        slow_form.locator("button.nj-form-submit").click()
        expect(slow_form.locator(".nj-note-steps")).to_have_text(
            "'abc' is not accepted; expected int")
        slow_form.locator("button.nj-form-close").click()
        page.locator("button.nj-detail-close").click()
        expect(detail).to_be_hidden()
        lap("edit and re-run")

        # Page forward: the label moves on and the rows are the next five jobs.
        page.locator("button.nj-next-page").click()
        expect(page_label).to_have_text(f"page 2 of 3 ({JOBS_IN_NOTEBOOK + 1} jobs)")
        expect(page.locator(f".nj-status-{job_id}")).to_have_count(0)
        expect(page.locator(f".nj-status-{job_id - 5}")).to_have_text("completed")
        lap("paged")

        # Nothing went wrong on the way: no stderr output, no refresh error, no JS error.
        expect(page.locator(STDERR_OUTPUT)).to_have_count(0)
        expect(page.locator(".nj-error")).to_have_text("")
        assert not page_errors, f"uncaught JS errors in the page: {page_errors}"
    lap("lab and chromium stopped")
    print("timings (s since start):", timings)


LIVE_CELLS = [
    "import notebookjobs as nj",
    # pending for a few seconds (its delay), then running with its progress, then completed
    "job = nj.dispatch('jobs.sample.slow', seconds=2, steps=4, delay=4)\njob",
    # five quick jobs due together, well after the first: they end within a moment, one batch
    "batch = [nj.dispatch('jobs.sample.SampleJobClass.process', 'a', str(n),\n"
    "                     delay=BATCH_DELAY_S) for n in range(4)]\n"
    "batch.append(nj.dispatch('jobs.sample.always_fails', 'boom', delay=BATCH_DELAY_S))",
]
BATCH_DELAY_S = 14  # the batch is due this long after the cell: past the first job's toast


def test_a_job_line_lives_until_the_job_ends_and_a_toast_says_so(lab_project, stop_worker_after,
                                                                 tmp_path):
    """SPEC §15 in JupyterLab: a Job as a cell's value updates from pending to completed
    without the cell running again, and a notification says that the job ended; jobs that
    end together make one notification, which names the failed one (issue 23)."""
    require_browser()
    import nbformat
    from playwright.sync_api import expect

    from notebookjobs import client

    # Given a notebook that dispatches a job and shows its handle, and a worker
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source.replace("BATCH_DELAY_S", str(BATCH_DELAY_S)))
                for source in LIVE_CELLS]
    nbformat.write(nb, lab_project.root / "notebooks" / "live.ipynb")
    # (no retries: the failed job ends with the others, not seconds later)
    whitelist = (lab_project.root / "whitelist.yaml").read_text()
    lab_project.write_whitelist(whitelist.replace("always_fails: {retry_attempts: 2}",
                                                  "always_fails: {retry_attempts: 0}"))
    client.start_worker()
    env = lab_env(lab_project.env(), tmp_path / "jupyter")
    with jupyter_lab(lab_project.root, env, tmp_path / "lab.log") as lab, \
            chromium_page(*VIEWPORT) as (page, page_errors):
        page.goto(lab.url("notebooks/live.ipynb"))
        wait_kernel_ready(page)
        # When its cells run once
        run_all(page)
        wait_all_run(page)
        job_id, *batch = sorted(int(i) for i in client.jobs(per_page=10)["id"])
        status = page.locator(f".nj-job-line-{job_id} .nj-job-status")
        # Then the line shows the job pending, then running, then completed, on its own
        expect(status).to_have_text("● pending", timeout=10_000)
        expect(page.locator(f".nj-job-line-{job_id}")).to_contain_text("starts in")
        expect(status).to_have_text("● running", timeout=15_000)
        expect(status).to_have_text("● completed", timeout=30_000)
        expect(page.locator(f".nj-job-line-{job_id}")).to_contain_text("1 attempt")
        expect(page.locator(".jp-CodeCell .jp-InputPrompt").last).to_have_text("[3]:")
        assert client.status(job_id)["status"] == "completed"
        # And a JupyterLab notification says which job ended, and how
        toast = page.locator(".Toastify__toast", has_text=f"Job {job_id} jobs.sample.slow "
                                                          "completed")
        expect(toast).to_be_visible(timeout=15_000)
        # And the five jobs of the batch make one notification, the failure named in it
        together = page.locator(".Toastify__toast", has_text=(
            f"5 jobs ended: 4 completed, 1 failed (job {batch[-1]}: ValueError: boom)"))
        expect(together).to_be_visible(timeout=(BATCH_DELAY_S + 30) * 1000)
        assert [client.status(i)["status"] for i in batch] == ["completed"] * 4 + ["failed"]
        alone = [page.locator(".Toastify__toast", has_text=re.compile(rf"Job {i} jobs\.")).count()
                 for i in batch]  # (a job's own toast: "Job 6 jobs.sample.always_fails ...")
        assert alone == [0] * 5, (alone, page.locator(".Toastify__toast").all_text_contents())
        expect(page.locator(STDERR_OUTPUT)).to_have_count(0)
        assert not page_errors, f"uncaught JS errors in the page: {page_errors}"

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
from pathlib import Path

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

from support import REPO

PROCESS = "jobs.sample.SampleJobClass.process"
NOTEBOOK = REPO / "notebooks" / "dashboard.ipynb"
# The README shows docs/dashboard.png; refresh it with NJ_SCREENSHOT=docs/dashboard.png.
SCREENSHOT = Path(os.environ.get("NJ_SCREENSHOT") or REPO / "build" / "dashboard.png")
JOBS_IN_NOTEBOOK = 12  # what notebooks/dashboard.ipynb dispatches
VIEWPORT = (1600, 1400)  # with the file browser folded, the whole dashboard fits
DELAY_S = 5  # the job dispatched through the form runs this long after: time to see it pending


def assert_rows_line_up(page, count: int) -> None:
    """The status/buttons column beside the table: its header and each job's row are level
    with the table's header and rows (within a pixel), as one table."""
    boxes = page.evaluate("""() => {
        const box = e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom]; };
        const table = [...document.querySelectorAll('.nj-queue-table tr')];
        const side = [...document.querySelector('.nj-queue-actions').children];
        return {table: table.map(box), side: side.map(box)};
    }""")
    assert len(boxes["table"]) == len(boxes["side"]) == count + 1, boxes
    for (top, bottom), (side_top, side_bottom) in zip(boxes["table"], boxes["side"], strict=True):
        assert abs(top - side_top) <= 1 and abs(bottom - side_bottom) <= 1, boxes


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
        # Fold the file browser away: the notebook gets the width (and the picture the table).
        page.locator('.jp-SideBar.jp-mod-left li[data-id="filebrowser"]').click()
        expect(page.locator(".jp-FileBrowser")).to_be_hidden()
        # The notebook is stored with its outputs (for nbval): clear them so that nothing seen
        # below can come from the stored run, then run every cell.
        clear_outputs(page)
        run_all(page)
        wait_all_run(page)
        lap("notebook run")

        # The kernel (started by Lab, with Lab's environment) used this project's queue.
        assert client.worker_status()["running"]
        assert int(client.jobs()["id"].max()) == JOBS_IN_NOTEBOOK

        dash = page.locator(".nj-dashboard")
        expect(dash).to_be_visible()
        expect(page.locator(".nj-worker-state")).to_contain_text("worker: running")
        page_label = page.locator(".nj-page-label")
        expect(page_label).to_have_text(f"page 1 of 3 ({JOBS_IN_NOTEBOOK} jobs)")

        # Dispatch SampleJobClass.process through its form, with a priority and a delay.
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
        cells = page.locator(".nj-queue-table tbody tr").first.locator("td")
        expect(cells.nth(0)).to_have_text(str(job_id))
        expect(cells.nth(2)).to_have_text('param1="from", param2="the browser"')
        expect(cells.nth(3)).to_have_text("7")
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
        assert_rows_line_up(page, 5)
        page.locator(".jp-NotebookPanel").hover()  # no tooltip of a button in the picture
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        dash.screenshot(path=str(SCREENSHOT))
        if os.environ.get("NJ_FULL_SCREENSHOT"):
            page.screenshot(path=os.environ["NJ_FULL_SCREENSHOT"])
        lap("screenshot")

        # Cancel it from its row.
        expect(page.locator(f"button.nj-retry-{slow_id}")).to_have_count(0)
        page.locator(f"button.nj-cancel-{slow_id}").click()
        expect(page.locator(f".nj-status-{slow_id}")).to_have_text("cancelled", timeout=15_000)
        expect(page.locator(".nj-queue-message")).to_have_text(f"job {slow_id} cancelled")
        expect(page.locator(f"button.nj-retry-{slow_id}")).to_be_visible()
        assert client.status(slow_id)["status"] == "cancelled"
        lap("cancelled")

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

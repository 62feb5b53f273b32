"""The README's pip path, end to end in a real browser (SPEC §19): ``notebookjobs init`` in an
empty folder, ``notebookjobs dashboard`` started from a subfolder of it (Voila on 127.0.0.1 with
a token), then headless Chromium opens the page, dispatches a job through its form and sees it
complete; the worker was started by that dispatch (autostart, as init writes it). Saves a
screenshot to build/dashboard-page.png (or ``$NJ_PAGE_SCREENSHOT``).

When the test ends, the command is stopped with SIGTERM (as a service manager would) and nothing
of it may be left: no Voila, no kernel. Needs Chromium and Voila (``make test`` installs both);
skipped without them except in CI (``$CI`` set), where it fails.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

from browser_lab import (
    chromium_page,
    free_port,
    lab_env,
    leftovers,
    require_browser,
    require_voila,
    running,
)

from support import REPO, wait_until

SCREENSHOT = REPO / os.environ.get("NJ_PAGE_SCREENSHOT", "build/dashboard-page.png")
BUILD = "jobs.example.Report.build"


def user_env() -> dict[str, str]:
    """A user's shell: none of the test project's variables."""
    return {k: v for k, v in os.environ.items()
            if k not in ("NOTEBOOKJOBS_ROOT", "NOTEBOOKJOBS_DB")}


def test_init_then_the_dashboard_page_dispatches_a_job_that_completes(tmp_path, monkeypatch):
    require_browser()
    require_voila()
    from playwright.sync_api import expect

    from notebookjobs import client

    # Given a project made by `notebookjobs init`
    root = tmp_path / "myproject"
    made = subprocess.run([sys.executable, "-m", "notebookjobs", "init", str(root)],
                          env=user_env(), capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    monkeypatch.setenv("NOTEBOOKJOBS_ROOT", str(root))  # for this process's checks below
    # When `notebookjobs dashboard` runs in one of its subfolders
    port, token = free_port(), secrets.token_hex(16)
    out = tmp_path / "dashboard.out"
    env = {**lab_env(user_env(), tmp_path / "jupyter"), "NOTEBOOKJOBS_DASHBOARD_TOKEN": token}
    command = [sys.executable, "-m", "notebookjobs", "dashboard", "--port", str(port)]
    try:
        # (stopped at the end by SIGTERM to it alone, as a service manager would)
        with running(command, cwd=root / "notebooks", env=env, log=out) as proc:
            wait_until(lambda: proc.poll() is not None or "token=" in out.read_text(),
                       timeout=120, what="notebookjobs dashboard to print its address")
            assert proc.poll() is None, out.read_text()
            url = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", out.read_text())
            address = f"http://127.0.0.1:{port}/?token={token}"
            assert url and url.group(0) == address, out.read_text()
            with chromium_page(1400, 1100) as (page, page_errors):
                # Then the page shows the dashboard (the token is needed: without it, no page)
                page.goto(f"http://127.0.0.1:{port}/")
                expect(page.locator(".nj-dashboard")).to_have_count(0)
                page.goto(url.group(0))
                expect(page.locator(".nj-dashboard")).to_be_visible(timeout=120_000)
                expect(page.locator(".nj-worker-state")).to_have_text("worker: not running")
                publish = page.locator("button.nj-dispatch-jobs-example-Report-publish")
                expect(publish).to_be_disabled()  # listed, not allowed
                # ... and its form dispatches a job, which the worker it started completes
                page.locator(f"button.nj-dispatch-{BUILD.replace('.', '-')}").click()
                form = page.locator(f".nj-form-{BUILD.replace('.', '-')}")
                form.locator(".nj-input-title input").fill("from the page")
                form.locator("button.nj-form-submit").click()
                expect(form.locator(".nj-form-message")).to_have_text("dispatched job 1",
                                                                      timeout=60_000)
                expect(page.locator(".nj-status-1")).to_have_text("completed", timeout=60_000)
                expect(page.locator(".nj-worker-state")).to_contain_text("worker: running")
                expect(page.locator(".nj-error")).to_have_text("")
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
                assert not page_errors, f"uncaught JS errors in the page: {page_errors}"
            info = client.status(1)
            assert (info["target"], info["kwargs"], info["status"]) == (
                BUILD, {"title": "from the page"}, "completed")
            assert info["result"] == {"title": "from the page",
                                      "lines": ["line 1", "line 2", "line 3"]}
    finally:
        client.stop_worker()
    # Then SIGTERM stopped it cleanly, and Voila with its kernel
    assert proc.returncode == 0, out.read_text()
    wait_until(lambda: not leftovers(root), timeout=30, what="Voila and its kernel to exit")

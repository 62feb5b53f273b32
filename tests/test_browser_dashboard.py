"""The dashboard page (``notebookjobs dashboard``: Voila) in headless Chromium at a laptop's
1280x800 and a phone's 390x844, on a queue with completed, failed and running jobs and a real
worker (SPEC §9, issue 23). One Voila and one worker serve the whole module.

What a user needs, each asserted: the queue's first row is in the first viewport; every column
is visible or reachable by a visible scroll (cards on the phone); a form opened from a row is in
the viewport with the focus; a form with four bad fields shows four messages; search finds a
job by an argument value; *Retry failed* retries exactly the failed jobs of the filter; the
page link ``?job=ID`` opens that job's details; no request leaves 127.0.0.1; and closing the
page ends its kernel within the configured cull time.

Screenshots go to build/ (or ``$NJ_SHOT_DIR``; the README's come from ``NJ_SHOT_DIR=docs``).
Needs Chromium and Voila: skipped without them except in CI, where it fails.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
from typing import Any

import pytest
from browser_lab import (
    chromium_page,
    free_port,
    lab_env,
    leftovers,
    require_browser,
    require_voila,
    running,
    wait_http,
)
from dashboard_page import (
    assert_every_column_reachable,
    assert_first_row_in_first_viewport,
    assert_headings_whole,
    assert_in_viewport_with_focus,
    box_of,
    open_page,
    outside,
)

from support import REPO, TEST_WHITELIST, new_project, wait_until, worker_starter

SHOTS = REPO / os.environ.get("NJ_SHOT_DIR", "build")  # (relative: to the repo)
CULL_AFTER_S = 3  #: the page's kernel is ended this long after its page closed (+ the check)
CULL_EVERY_S = 1
NEEDLE = "unicorn-42"
FRAME_ROWS = 50  #: a frame result longer than the details show (their first 10 rows)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A project with a worker and a mixed queue, and Voila serving its dashboard page."""
    require_browser()
    require_voila()
    from notebookjobs import client
    from notebookjobs.cli import webapp

    tmp = tmp_path_factory.mktemp("page")
    project = new_project(tmp / "project", TEST_WHITELIST)
    mp = pytest.MonkeyPatch()
    mp.setenv("NOTEBOOKJOBS_ROOT", str(project.root))
    mp.setenv("NJ_TEST_EFFECTS", str(project.effects))
    mp.delenv("NOTEBOOKJOBS_DB", raising=False)
    with worker_starter(project) as start:
        start()
        ids: dict[str, Any] = {
            "failed": [client.dispatch("jobs.testing.fail", f"boom-{k}") for k in "aab"],
            "ok": [client.dispatch("jobs.testing.ok", n) for n in range(6)],
            "needle": client.dispatch("jobs.testing.echo", key=NEEDLE),
            "frame": client.dispatch("jobs.testing.frame", FRAME_ROWS)}
        wait_until(lambda: client.counts()["failed"] == 3 and client.counts()["completed"] == 8,
                   timeout=60, what="the jobs to end")
        ids["running"] = client.dispatch("jobs.testing.sleep", 300, key="long")
        wait_until(lambda: client.status(ids["running"])["status"] == "running", timeout=30,
                   what="the long job to run")
        port, token = free_port(), secrets.token_hex(16)
        # the token as `notebookjobs dashboard` gives it: in a 0600 file, never on the command
        # line
        secret = webapp.token_file(token)
        env = {**webapp.voila_env(lab_env(project.env(), tmp / "jupyter")),
               "JUPYTER_TOKEN_FILE": str(secret)}
        log = tmp / "voila.log"
        command = webapp.command(port, cull_after=CULL_AFTER_S, cull_every=CULL_EVERY_S)
        try:
            with running(command, cwd=project.root, env=env, log=log, group=True) as proc:
                # (a GET of the page would start a kernel: the favicon does not)
                wait_http(f"http://127.0.0.1:{port}/voila/static/favicon.ico?token={token}",
                          proc, log)
                yield {"url": f"http://127.0.0.1:{port}/?token={token}", "ids": ids,
                       "project": project, "log": log}
        finally:
            shutil.rmtree(secret.parent, ignore_errors=True)
            for status in ("pending", "running"):
                for job_id in client.jobs(per_page=1000, status=status)["id"]:
                    client.cancel(int(job_id))
    mp.undo()


def test_page_at_1280x800(served):
    from playwright.sync_api import expect

    from notebookjobs import client

    width, height = 1280, 800
    requests: list[str] = []
    with chromium_page(width, height) as (page, page_errors):
        console: list[str] = []
        page.on("console", lambda msg: console.append(msg.text))
        open_page(page, served["url"], requests)
        # The queue leads: its first row is in the first viewport; every column shows, and
        # every heading reads whole.
        assert_first_row_in_first_viewport(page, height)
        seen = assert_every_column_reachable(page)
        assert not seen["scrolls"], seen  # at 1280 px nothing needs a scroll
        running = served["ids"]["running"]
        expect(page.locator(f".nj-status-{running}")).to_have_text("running")
        assert_headings_whole(page)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "dashboard-page.png"))

        # Search finds a job by an argument value (server-side).
        search = page.locator(".nj-search input")
        search.fill(NEEDLE)
        search.press("Enter")
        rows = page.locator(".nj-queue-table tr.nj-row")
        expect(rows).to_have_count(1)
        expect(rows.first.locator(".nj-col-id")).to_have_text(str(served["ids"]["needle"]))

        # Retry failed retries exactly the failed jobs of the filter: two of the three.
        search.fill("boom-a")
        search.press("Enter")
        expect(rows).to_have_count(2)
        before = int(client.jobs().attrs["total"])
        page.locator("button.nj-retry-failed").click()
        expect(page.locator(".nj-queue-message")).to_contain_text("dispatched again 2 jobs")
        new = client.jobs(per_page=10).iloc[: int(client.jobs().attrs["total"]) - before]
        assert sorted(new["args"].map(tuple)) == [("boom-a",), ("boom-a",)], new
        assert len(new) == 2
        search.fill("")
        search.press("Enter")

        # A form opened from a row is in the viewport with the focus: Details, then Edit &
        # re-run of a failed job, opened below its row.
        failed = served["ids"]["failed"][2]
        page.locator(".nj-status-filter select").select_option("failed")
        page.locator(f"button.nj-details-{failed}").click()
        expect(page.locator(".nj-detail-body")).to_contain_text(f"job {failed}")
        expect(page.locator(".nj-detail-body pre.nj-detail-error").first).to_have_css(
            "font-family", re.compile("mono", re.I))
        page.locator("button.nj-detail-rerun").click()
        assert_in_viewport_with_focus(page, ".nj-form-jobs-testing-fail", height)
        page.locator(".nj-form-close").click()

        # A form with four bad fields shows four messages, each under its field.
        page.locator("button.nj-new-job").click()
        page.locator("button.nj-dispatch-jobs-testing-typed").click()
        assert_in_viewport_with_focus(page, ".nj-form-jobs-testing-typed", height)
        form = page.locator(".nj-form-jobs-testing-typed")
        for css, value in (("n", "abc"), ("x", "zz"), ("name", "a"), ("items", "[1,"),
                           ("options", "{}")):
            form.locator(f".nj-input-{css} input").fill(value)
        form.locator(".nj-form-priority input").fill("high")
        form.locator(".nj-form-priority input").press("Tab")
        form.locator("button.nj-form-submit").click()
        errors = form.locator(".nj-field-error")
        expect(errors).to_have_count(4)
        expect(form.locator(".nj-note-n")).to_have_text("'abc' is not accepted; expected int")
        expect(form).not_to_contain_text("InvalidArgumentsError")
        page.screenshot(path=str(SHOTS / "dashboard-form.png"))

        assert not page_errors, page_errors
        # No Lab plugin (ipylab) is asked for outside Lab: not at the start, nor when the page
        # dispatched jobs (Retry failed above), whose endings Lab would announce
        assert not [m for m in console if "ipylab" in m or "failed to activate" in m], console
    assert not outside(requests), outside(requests)


def test_page_at_390x844_and_the_page_link(served):
    from playwright.sync_api import expect

    width, height = 390, 844
    requests: list[str] = []
    job = served["ids"]["frame"]
    with chromium_page(width, height) as (page, page_errors):
        open_page(page, served["url"], requests)
        assert_first_row_in_first_viewport(page, height)
        # Cards: every field of a job shows inside the phone's width, nothing off the edge.
        for column in ("id", "status", "target", "arguments", "attempts", "created", "actions"):
            box = box_of(page, f".nj-queue-table tr.nj-row .nj-col-{column}")
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (column, box)
        overflow = page.evaluate("document.scrollingElement.scrollWidth")
        assert overflow <= width + 1, overflow
        page.screenshot(path=str(SHOTS / "dashboard-phone.png"))

        # The page link opens that job's details: a frame's first 10 rows, each of them in
        # sight (Voila's table style once hid the 10th below the box's edge)
        page.goto(served["url"] + f"&job={job}")
        detail = page.locator(".nj-detail-body")
        expect(detail).to_contain_text(f"job {job}", timeout=90_000)
        result = page.locator(".nj-detail-result")
        expect(result).to_contain_text(f"DataFrame, {FRAME_ROWS} rows; the first 10")
        rows = result.locator("table.nj-detail-frame tbody tr")
        expect(rows).to_have_count(10)
        hidden = result.evaluate("""r => [...r.querySelectorAll('tbody tr')].filter(tr => {
            const b = tr.getBoundingClientRect();
            for (let e = tr.parentElement; e !== r; e = e.parentElement) {
                const box = e.getBoundingClientRect();
                if (b.top < box.top - 0.5 || b.bottom > box.bottom + 0.5) return true;
            }
            return false;
        }).map(tr => tr.textContent)""")
        assert not hidden, hidden
        assert not page_errors, page_errors
    assert not outside(requests), outside(requests)


def test_closing_the_page_ends_its_kernel_within_the_cull_time(served):
    from playwright.sync_api import expect

    root = served["project"].root
    # Given no page open: the kernels of the pages above are culled already, or soon
    wait_until(lambda: not [p for p in leftovers(root) if "ipykernel" in p],
               timeout=CULL_AFTER_S + CULL_EVERY_S + 30, what="earlier kernels to be culled")
    with chromium_page(1280, 800) as (page, _errors):
        open_page(page, served["url"], [])
        expect(page.locator(".nj-worker-state")).to_contain_text("worker: running")
        kernels = [p for p in leftovers(root) if "ipykernel" in p]
        assert len(kernels) == 1, kernels
    # When the page is closed (the browser with it), then its kernel ends within the cull
    # time (plus the culler's period and Voila's shutdown)
    wait_until(lambda: not [p for p in leftovers(root) if "ipykernel" in p],
               timeout=CULL_AFTER_S + CULL_EVERY_S + 15, what="the page's kernel to be culled")
    assert sys.executable  # (the worker and Voila still run: only the kernel went)

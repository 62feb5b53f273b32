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
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from browser_lab import chromium_page, free_port, lab_env, require_browser
from test_browser_page import leftovers, require_voila

from support import REPO, TEST_WHITELIST, new_project, wait_until, worker_starter

SHOTS = Path(os.environ.get("NJ_SHOT_DIR") or REPO / "build")
CULL_AFTER_S = 3  #: the page's kernel is ended this long after its page closed (+ the check)
CULL_EVERY_S = 1
NEEDLE = "unicorn-42"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A project with a worker and a mixed queue, and Voila serving its dashboard page."""
    require_browser()
    require_voila()
    from notebookjobs import client, webapp

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
            "needle": client.dispatch("jobs.testing.echo", key=NEEDLE)}
        wait_until(lambda: client.counts()["failed"] == 3 and client.counts()["completed"] == 7,
                   timeout=60, what="the jobs to end")
        ids["running"] = client.dispatch("jobs.testing.sleep", 300, key="long")
        wait_until(lambda: client.status(ids["running"])["status"] == "running", timeout=30,
                   what="the long job to run")
        port, token = free_port(), secrets.token_hex(16)
        env = webapp.voila_env(lab_env(project.env(), tmp / "jupyter"))
        log = tmp / "voila.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                webapp.command(port, token, cull_after=CULL_AFTER_S, cull_every=CULL_EVERY_S),
                cwd=project.root, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            import urllib.request

            def ready() -> bool:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/"
                                                f"favicon.ico?token={token}", timeout=2) as r:
                        return r.status == 200
                except OSError:
                    return proc.poll() is not None
            wait_until(ready, timeout=90, what="Voila to answer")
            assert proc.poll() is None, log.read_text()
            yield {"url": f"http://127.0.0.1:{port}/?token={token}", "ids": ids,
                   "project": project, "log": log}
        finally:
            for status in ("pending", "running"):
                for job_id in client.jobs(per_page=1000, status=status)["id"]:
                    client.cancel(int(job_id))
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    mp.undo()


def open_page(page, url: str, requests: list[str]):
    from playwright.sync_api import expect

    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    dash = page.locator(".nj-dashboard")
    expect(dash).to_be_visible(timeout=90_000)
    expect(page.locator(".nj-queue-table tr.nj-row").first).to_be_visible(timeout=30_000)
    return dash


def assert_first_row_in_first_viewport(page, height: int) -> None:
    box = page.locator(".nj-queue-table tr.nj-row").first.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, box


def assert_every_column_reachable(page) -> dict:
    """Each heading of the table is inside the table's box, or the table scrolls sideways
    with a scrollbar that shows (the scroller is wider inside than out, and taller than its
    content: the bar takes room)."""
    seen = page.locator(".nj-queue-table .nj-grid-scroll").evaluate("""s => {
        const box = s.getBoundingClientRect();
        const heads = [...s.querySelectorAll('th')].map(th => {
            const r = th.getBoundingClientRect(); return [th.textContent, r.left, r.right]; });
        return {left: box.left, right: box.right, heads, scrolls: s.scrollWidth > s.clientWidth,
                bar: s.offsetHeight - s.clientHeight};
    }""")
    cut = [h for h in seen["heads"] if h[1] < seen["left"] - 1 or h[2] > seen["right"] + 1]
    assert not cut or (seen["scrolls"] and seen["bar"] > 0), seen
    return seen


def assert_in_viewport_with_focus(page, form_selector: str, height: int) -> None:
    from playwright.sync_api import expect

    form = page.locator(form_selector)
    expect(form).to_be_visible()
    page.wait_for_function("sel => { const f = document.querySelector(sel);"
                           " return f && f.contains(document.activeElement); }",
                           arg=form_selector, timeout=10_000)
    box = form.bounding_box()
    assert box is not None and box["y"] >= -1 and box["y"] < height - 40, box


def test_page_at_1280x800(served):
    from playwright.sync_api import expect

    from notebookjobs import client

    width, height = 1280, 800
    requests: list[str] = []
    with chromium_page(width, height) as (page, page_errors):
        console: list[str] = []
        page.on("console", lambda msg: console.append(msg.text))
        open_page(page, served["url"], requests)
        # The queue leads: its first row is in the first viewport; every column shows.
        assert_first_row_in_first_viewport(page, height)
        seen = assert_every_column_reachable(page)
        assert not seen["scrolls"], seen  # at 1280 px nothing needs a scroll
        running = served["ids"]["running"]
        expect(page.locator(f".nj-status-{running}")).to_have_text("running")
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
            "font-family", __import__("re").compile("mono", __import__("re").I))
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
        assert not [m for m in console if "failed to activate" in m], console
    outside = [u for u in requests if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1",
                                                        "data:", "blob:"))]
    assert not outside, outside


def test_page_at_390x844_and_the_page_link(served):
    from playwright.sync_api import expect

    width, height = 390, 844
    requests: list[str] = []
    job = served["ids"]["needle"]
    with chromium_page(width, height) as (page, page_errors):
        open_page(page, served["url"], requests)
        assert_first_row_in_first_viewport(page, height)
        # Cards: every field of a job shows inside the phone's width, nothing off the edge.
        card = page.locator(".nj-queue-table tr.nj-row").first
        for column in ("id", "status", "target", "arguments", "attempts", "created", "actions"):
            cell = card.locator(f".nj-col-{column}")
            box = cell.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (column, box)
        overflow = page.evaluate("document.scrollingElement.scrollWidth")
        assert overflow <= width + 1, overflow
        page.screenshot(path=str(SHOTS / "dashboard-phone.png"))

        # The page link opens that job's details.
        page.goto(served["url"] + f"&job={job}")
        detail = page.locator(".nj-detail-body")
        expect(detail).to_contain_text(f"job {job}", timeout=90_000)
        expect(detail).to_contain_text(NEEDLE)
        assert not page_errors, page_errors
    outside = [u for u in requests if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1",
                                                        "data:", "blob:"))]
    assert not outside, outside


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

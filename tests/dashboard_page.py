"""What a user needs of the dashboard in a browser, asserted the same way in JupyterLab
(tests/test_browser.py) and on the Voila page (tests/test_browser_dashboard.py): the queue in the
first viewport, every column reachable, every heading whole, a form where the click was, and no
request leaving 127.0.0.1."""

from __future__ import annotations

#: where a page may send requests: this machine's servers, and what the page makes itself
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")


def open_page(page, url: str, requests: list[str]):
    """Open the dashboard page at ``url``, logging every request into ``requests``; the
    dashboard, once its queue shows a row."""
    from playwright.sync_api import expect

    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    dash = page.locator(".nj-dashboard")
    expect(dash).to_be_visible(timeout=90_000)
    expect(page.locator(".nj-queue-table tr.nj-row").first).to_be_visible(timeout=30_000)
    return dash


def outside(requests: list[str]) -> list[str]:
    """The requests that went elsewhere than 127.0.0.1."""
    return [url for url in requests if not url.startswith(LOCAL)]


def box_of(page, selector: str) -> dict:
    """The box of the first element matching ``selector``, once it is laid out.

    Read in one script call that waits: the grid redraws its rows when the worker pushes a
    change, and a locator's ``bounding_box()`` of a row caught in between is None.
    """
    handle = page.wait_for_function(
        """sel => {
             const e = document.querySelector(sel);
             if (!e || !e.isConnected) return null;
             const r = e.getBoundingClientRect();
             return r.height > 0 ? {x: r.x, y: r.y, width: r.width, height: r.height} : null;
           }""", arg=selector, timeout=10_000)
    return dict(handle.json_value())


def assert_first_row_in_first_viewport(page, height: int) -> None:
    box = box_of(page, ".nj-queue-table tr.nj-row")
    assert box["y"] >= 0 and box["y"] + box["height"] <= height, box


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


def assert_headings_whole(page) -> None:
    """No heading of the table is cut ("attem…"), and no value but a target's or arguments'
    (those are cut with an ellipsis on purpose, the whole text on hover)."""
    cut = page.locator(".nj-queue-table table").evaluate("""t => [...t.querySelectorAll('th, td')]
        .filter(c => !['target', 'arguments'].includes(c.dataset.col)
                     && c.scrollWidth > c.clientWidth)
        .map(c => [c.dataset.col, c.textContent, c.scrollWidth, c.clientWidth])""")
    assert not cut, cut


def assert_in_viewport_with_focus(page, form_selector: str, height: int) -> None:
    from playwright.sync_api import expect

    form = page.locator(form_selector)
    expect(form).to_be_visible()
    page.wait_for_function("sel => { const f = document.querySelector(sel);"
                           " return f && f.contains(document.activeElement); }",
                           arg=form_selector, timeout=10_000)
    box = box_of(page, form_selector)
    assert box["y"] >= -1 and box["y"] < height - 40, box


def gap_below(page, upper: str, lower: str) -> float:
    """Pixels between the bottom of `upper` and the top of `lower`, once both are laid out.

    Read in one script call rather than two `bounding_box()` calls: the grid redraws its rows
    when the worker pushes a change, and a row caught between two reads has no box.
    """
    handle = page.wait_for_function(
        """([upper, lower]) => {
             const u = document.querySelector(upper), l = document.querySelector(lower);
             if (!u || !l || !u.isConnected || !l.isConnected) return null;
             const ub = u.getBoundingClientRect(), lb = l.getBoundingClientRect();
             if (ub.height === 0 || lb.height === 0) return null;
             return {gap: lb.top - ub.bottom};
           }""", arg=[upper, lower], timeout=10_000)
    return float(handle.json_value()["gap"])

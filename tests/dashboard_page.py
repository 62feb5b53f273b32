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


#: the box of the first element matching a selector, or null while there is none laid out
#: (absent, detached by a redraw, or of no height)
_BOX = """sel => {
    const e = document.querySelector(sel);
    if (!e || !e.isConnected) return null;
    const r = e.getBoundingClientRect();
    return r.height > 0 ? {x: r.x, y: r.y, width: r.width, height: r.height} : null;
}"""


def box_of(page, selector: str) -> dict:
    """The box of the first element matching ``selector``, once it is laid out.

    Read in one script call that waits: the grid redraws its rows when the worker pushes a
    change, and a locator's ``bounding_box()`` of a row caught in between is None.
    """
    handle = page.wait_for_function(_BOX, arg=selector, timeout=10_000)
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


def assert_right_below(page, upper: str, lower: str, most: float = 12) -> None:
    """``lower`` comes to sit right below ``upper`` (0 to ``most`` pixels between them).

    Waited for, read in one script call each time: the dashboard places the details first and
    moves them below their row with the refresh that follows, and the grid redraws its rows
    when the worker pushes a change (a row caught in between has no box).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    measure = (f"([upper, lower]) => {{ const box = {_BOX}; const u = box(upper), l = box(lower);"
               " return u && l ? l.y - (u.y + u.height) : null; }")
    try:
        page.wait_for_function(f"args => {{ const g = ({measure})(args);"
                               f" return g !== null && g >= 0 && g <= {most}; }}",
                               arg=[upper, lower], timeout=10_000)
    except PlaywrightTimeout:
        gap = page.evaluate(measure, [upper, lower])
        raise AssertionError(f"{lower} is {gap} px below {upper}, not 0 to {most}") from None

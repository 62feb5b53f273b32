"""The notebookjobs dashboard: an ipywidgets widget over the client API (SPEC §9).

``nj.dashboard()`` returns a ``Dashboard`` (a VBox): display it or leave it as a cell's last
expression. While shown it is updated when the worker says the queue changed (``app``), and it
stops when ``close()`` is called.
Every widget is reachable through ``children``, and ``button.click()`` does what a click in the
page does (a disabled button ignores it).

Modules: ``app`` (the Dashboard, the push), ``catalog`` (New job: functions, methods and
notebooks), ``forms`` (Dispatch form), ``schedules_tab`` (Schedules section), ``chart`` (the last
hour), ``queue_tab`` + ``grid`` + ``table`` + ``detail`` (Queue section), ``worker_panel`` (the
worker line). The whitelist.yaml line that would allow a target comes
with ``nj.available_jobs()`` (``allow_hint``).

This ``__init__`` imports nothing heavy: ``import notebookjobs`` binds ``nj.dashboard`` to the
function below at once (importing this package later would otherwise bind the *package* over
the function), and ipywidgets and pandas load only when a dashboard is made.

CSS classes (``add_class``), for browser tests and styling: ``nj-dashboard``, ``nj-error``,
``nj-worker`` (``nj-worker-state``, ``nj-worker-start``, ``nj-worker-stop``,
``nj-worker-message``, ``nj-worker-cluster``, ``nj-counts`` with ``span.nj-count-<status>``),
the queue ``nj-queue`` (``nj-search``, ``nj-status-filter``, ``nj-sort``, ``nj-page-size``,
``nj-first-page`` / ``nj-prev-page`` / ``nj-next-page`` / ``nj-last-page``, ``nj-page-label``,
``nj-retry-failed``, ``nj-cancel-selected``, ``nj-queue-message``), its table ``nj-queue-table``
and, below an open Details, ``nj-queue-table-rest`` (``grid.QueueGrid``: in the page each job is
``tr.nj-row.nj-row-<id>.nj-row-status-<status>`` with ``td.nj-col-<column>``,
``.nj-status-<id>``, ``button.nj-cancel-<id>`` / ``nj-retry-<id>`` / ``nj-details-<id>``,
``input.nj-select``, ``.nj-outcome``), the details ``nj-detail`` (``nj-detail-body`` with
``pre.nj-detail-error``, ``pre.nj-detail-output``, ``.nj-detail-result``; ``nj-detail-rerun``,
``nj-detail-close``, ``nj-detail-form-area``, ``nj-detail-message``), *New job* (``nj-new-job``,
``nj-jobs-filter``, ``nj-reload-jobs``, ``nj-jobs`` with ``nj-target-<target>``,
``nj-not-allowed``, ``pre.nj-allow-hint``, ``nj-dispatch-<target>``), the form (``nj-form``,
``nj-form-<target>``, ``nj-input-<param>``, ``nj-form-priority``, ``nj-form-delay``,
``nj-note-<field>`` holding the hint or ``.nj-field-error``, ``nj-form-submit``,
``nj-form-close``, ``nj-form-message``), ``nj-schedules`` (``nj-schedules-table``) and
``nj-chart``. ``<target>`` is the dotted target with every character other than letters,
digits, ``_`` and ``-`` turned into ``-``; ``<id>`` a job id; ``<param>`` a parameter name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Dashboard

__all__ = ["Dashboard", "dashboard"]


def dashboard(job: Any = None, *, refresh_interval: float = 0.1,
              autorefresh: bool = True) -> Dashboard:
    """The notebookjobs dashboard widget (SPEC §9): ``nj.dashboard()`` in a notebook cell;
    ``job``: a job whose details open at once (``nj.dashboard(job=12)``). While shown it is
    updated when the queue changes (pushed by the worker, ``autorefresh``), at most once per
    ``refresh_interval`` seconds."""
    from .app import Dashboard

    return Dashboard(refresh_interval=refresh_interval, autorefresh=autorefresh, job=job)


def __getattr__(name: str) -> Any:
    if name == "Dashboard":
        from .app import Dashboard

        return Dashboard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

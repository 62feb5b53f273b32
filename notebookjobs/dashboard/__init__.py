"""The notebookjobs dashboard: an ipywidgets widget over the client API (SPEC §9).

``nj.dashboard()`` returns a ``Dashboard`` (a VBox): display it or leave it as a cell's last
expression. It refreshes itself every second while shown and stops when ``close()`` is called.
Every widget is reachable through ``children``, and ``button.click()`` does what a click in the
page does (a disabled button ignores it).

Modules: ``app`` (the Dashboard, live refresh), ``catalog`` (Jobs section: functions, methods
and notebooks), ``forms`` (Dispatch form), ``schedules`` (Schedules section), ``queue`` + ``table``
+ ``rows`` + ``detail`` (Queue section), ``worker_panel`` (Worker section), ``common`` (shared
helpers). The whitelist.yaml line that would allow a target comes
with ``nj.available_jobs()`` (``allow_hint``).

This ``__init__`` imports nothing heavy: ``import notebookjobs`` binds ``nj.dashboard`` to the
function below at once (importing this package later would otherwise bind the *package* over
the function), and ipywidgets and pandas load only when a dashboard is made.

CSS classes (``add_class``), for browser tests and styling. ``<target>`` is the dotted target
with every character other than letters, digits, ``_`` and ``-`` turned into ``-``
(``jobs.sample.SampleJobClass.process`` -> ``jobs-sample-SampleJobClass-process``); ``<id>`` is a
job id; ``<param>`` a parameter name.

=================================  ============================================================
class                              widget
=================================  ============================================================
``nj-dashboard``                   the whole dashboard (VBox)
``nj-error``                       HTML: the last refresh error, empty when the last one worked
``nj-worker``                      the Worker section (VBox)
``nj-worker-state``                Label: "worker: running · pid ... · concurrency ..." or
                                   "worker: not running"
``nj-worker-cluster``              HTML: the Dask cluster the worker sends attempts to (its
                                   scheduler, workers, a link to Dask's dashboard); empty
                                   when it runs them itself
``nj-worker-start``                Button: start the worker (disabled while it runs)
``nj-worker-stop``                 Button: stop the worker (disabled while none runs)
``nj-worker-message``              HTML: outcome of Start/Stop, or a WorkerError
``nj-counts``                      HTML: jobs per status; each count in ``span.nj-count-<status>``
``nj-reload-jobs``                 Button: read jobs/ and whitelist.yaml again
``nj-jobs``                        the Jobs section (VBox)
``nj-target-<target>``             HBox: one discovered target (button and description)
``nj-not-allowed``                 also on that HBox when the whitelist does not allow it; its
                                   HTML holds ``pre.nj-allow-hint`` with the line to add
``nj-dispatch-<target>``           Button "Dispatch" of a target (disabled when not allowed)
``nj-form-area``                   VBox holding the open Dispatch form
``nj-form``, ``nj-form-<target>``  the Dispatch form (VBox)
``nj-input-<param>``               the form's input for a parameter (Checkbox for a bool, else
                                   Text; ``description`` is the parameter name)
``nj-form-priority``               Text: priority (a whole number)
``nj-form-delay``                  Text: delay (seconds, or '90s', '5m', ...)
``nj-form-submit``                 Button: dispatch
``nj-form-close``                  Button: close the form
``nj-form-message``                HTML: "dispatched job N" or the error
``nj-schedules``                   the Schedules section (VBox; ``display: none`` without any)
``nj-schedules-table``             HTML: one row per schedule: name, target, when, next run,
                                   last job and its status, problem (``table.nj-schedules-table``)
``nj-queue``                       the Queue section (VBox)
``nj-status-filter``               Dropdown: all, pending, running, completed, failed, cancelled
``nj-page-size``                   Dropdown: 5, 10, 20, 50
``nj-sort``                        Dropdown: newest first, running first, oldest first, priority
``nj-first-page``                  Button (also ``nj-prev-page``, ``nj-next-page``,
                                   ``nj-last-page``); disabled where there is no such page
``nj-page-label``                  Label: "page X of Y (N jobs)"
``nj-queue-body``                  VBox that scrolls sideways: the table, Details, the rest
``nj-queue-table``                 HTML: the page (down to an open Details' job) as a Styler
                                   table (``table.nj-table``)
``nj-queue-actions``               VBox beside the table: a header, then one row per job
``nj-queue-table-rest``            HTML, ``nj-queue-actions-rest`` VBox: the rows below an
                                   open Details
``nj-row-<id>``                    HBox: the job's status and buttons, level with its table row;
                                   also ``nj-row-status-<status>``, its tint
``nj-status-<id>``                 Label: the job's status text (pending, running, ...)
``nj-cancel-<id>``                 Button: cancel (in the row while pending or running)
``nj-retry-<id>``                  Button: retry (in the row while failed or cancelled)
``nj-details-<id>``                Button: open the detail view
``nj-queue-message``               HTML: outcome of Cancel/Retry, or the error
``nj-detail``                      VBox: the detail view (``display: none`` until opened)
``nj-detail-body``                 HTML: fields, ``div.nj-detail-errors`` (every attempt),
                                   ``pre.nj-detail-error``, ``pre.nj-detail-output``,
                                   ``.nj-detail-result`` (``table.nj-detail-frame``)
``nj-detail-rerun``                Button: Edit & re-run (a finished job's form, filled in)
``nj-detail-close``                Button: close the detail view
=================================  ============================================================
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

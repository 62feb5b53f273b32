"""One job's widgets beside the queue table: its status, Cancel or Retry, and Details.

A row keeps its widgets for as long as the job is on the page; a refresh only changes the status
text and, when the status moves between "can be cancelled", "can be retried" and "final", which
button is shown. So nothing is redrawn while a job's state stays the same.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from .common import ROW_HEIGHT_PX, STATUS_COLOURS, on_click

CANCELLABLE = ("pending", "running")
RETRYABLE = ("failed", "cancelled")
_BUTTON_LAYOUT = {"width": "72px", "height": f"{ROW_HEIGHT_PX - 6}px", "margin": "0 2px"}


class JobRow(widgets.HBox):
    """The status Label and action buttons of one job; ``on_action(action, job_id)`` on clicks.

    ``action`` is "cancel", "retry" or "details".
    """

    def __init__(self, job_id: int, status: str,
                 on_action: Callable[[str, int], None]) -> None:
        self.job_id = job_id
        self.status = widgets.Label(layout={"width": "80px", "margin": "0 2px"},
                                    style={"font_weight": "bold"})
        self.status.add_class(f"nj-status-{job_id}")
        self.cancel_button = widgets.Button(description="Cancel", button_style="warning",
                                            tooltip=f"cancel job {job_id}",
                                            layout=dict(_BUTTON_LAYOUT))
        self.cancel_button.add_class(f"nj-cancel-{job_id}")
        self.retry_button = widgets.Button(description="Retry", button_style="info",
                                           tooltip=f"dispatch job {job_id} again",
                                           layout=dict(_BUTTON_LAYOUT))
        self.retry_button.add_class(f"nj-retry-{job_id}")
        self.details_button = widgets.Button(description="Details", tooltip=f"show job {job_id}",
                                             layout=dict(_BUTTON_LAYOUT))
        self.details_button.add_class(f"nj-details-{job_id}")
        # Keeps Details in its column when a completed job has no Cancel or Retry.
        self._spacer = widgets.Box(layout=dict(_BUTTON_LAYOUT))
        self._action: widgets.Widget | None = None  # the button shown between status and Details
        on_click(self.cancel_button, lambda: on_action("cancel", job_id))
        on_click(self.retry_button, lambda: on_action("retry", job_id))
        on_click(self.details_button, lambda: on_action("details", job_id))
        super().__init__(layout={"height": f"{ROW_HEIGHT_PX}px", "align_items": "center",
                                 "margin": "0", "overflow": "hidden"})
        self.add_class(f"nj-row-{job_id}")
        self.show(status)

    def show(self, status: str) -> None:
        """Put the row in ``status``; widgets change only when something is different."""
        if self.status.value != status:
            if self.status.value:
                self.remove_class(f"nj-row-status-{self.status.value}")
            self.add_class(f"nj-row-status-{status}")  # tinted like its table row (STYLE)
            self.status.value = status
            self.status.style.text_color = STATUS_COLOURS.get(status, "")
        if status in CANCELLABLE:
            action: widgets.Widget = self.cancel_button
        elif status in RETRYABLE:
            action = self.retry_button
        else:
            action = self._spacer
        if action is not self._action:
            self._action = action
            self.children = (self.status, action, self.details_button)

    def close(self) -> None:
        """Close the row and all its widgets (shown or not)."""
        for widget in (self.status, self.cancel_button, self.retry_button, self.details_button,
                       self._spacer):
            widget.close()
        super().close()

"""The Jobs section: discovered targets grouped by owner, with a Dispatch button for each.

Targets the whitelist does not allow are shown greyed out, their button disabled, with the
line to add to whitelist.yaml. The section is rebuilt only when discovery returns something
different, so a periodic refresh does not redraw it. A target's Dispatch form opens right
below its row (``show_form``); ``filter`` shows the targets whose name contains a text.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..notebook.display import close_tree, css_name, on_click

_CLASS_KINDS = {"method", "classmethod", "staticmethod"}


def signature_text(parameters: list[dict[str, Any]]) -> str:
    """``(param1: str, n: int = 3, *args)`` for people, escaped for HTML."""
    parts = []
    for p in parameters:
        prefix = {"var_positional": "*", "var_keyword": "**"}.get(p["kind"], "")
        text = prefix + p["name"] + (f": {p['annotation']}" if p["annotation"] else "")
        if not p["required"] and not prefix:
            text += f" = {p['default']!r}"
        parts.append(text)
    return html.escape("(" + ", ".join(parts) + ")")


def _fingerprint(frame: pd.DataFrame) -> str:
    # repr of the rows is enough to notice any change that would alter what is shown.
    return repr(frame[["target", "kind", "parameters", "doc", "allowed"]].values.tolist())


class JobsSection(widgets.VBox):
    """Discovered targets; ``on_dispatch(row)`` is called with the target's row when clicked."""

    def __init__(self, on_dispatch: Callable[[dict[str, Any]], object]) -> None:
        super().__init__()
        self.add_class("nj-jobs")
        self._on_dispatch = on_dispatch
        self._fingerprint: str | None = None
        #: target -> its Dispatch button (disabled for targets that are not allowed)
        self.buttons: dict[str, widgets.Button] = {}
        #: target -> the row showing it
        self.rows: dict[str, widgets.HBox] = {}
        #: target -> its row of ``client.available_jobs()`` (what its Dispatch form needs)
        self.records: dict[str, dict[str, Any]] = {}
        self._shown: list[widgets.Widget] = []  # the children now on show, closed on rebuild
        self._form: tuple[str, widgets.Widget] | None = None  # (target, its open form)
        self._filter = ""

    def update(self, frame: pd.DataFrame, whitelist_name: str) -> bool:
        """Show the targets of ``client.available_jobs()``; False when nothing had changed."""
        fingerprint = _fingerprint(frame) + whitelist_name
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        old, self._shown = self._shown, []
        self.buttons, self.rows = {}, {}
        self.records = {str(r["target"]): {str(k): v for k, v in r.items()}
                        for r in frame.to_dict("records")}
        children: list[widgets.Widget] = []
        if frame.empty:
            children.append(widgets.HTML("<i>no jobs found under jobs/ and none allowed in "
                                         f"{html.escape(whitelist_name)}</i>"))
        for owner, group in frame.groupby("owner", sort=True):
            kinds = set(group["kind"])
            kind = ("class" if kinds & _CLASS_KINDS else "notebook folder" if kinds == {"notebook"}
                    else "module")
            children.append(widgets.HTML(f"<b>{html.escape(str(owner))}</b> "
                                         f"<small>({kind})</small>"))
            for record in group.to_dict("records"):
                children.append(self._row(record))
        self._shown = children
        self._form = None if self._form is None or self._form[0] not in self.rows else self._form
        self._layout()
        self.filter(self._filter)
        for widget in old:
            close_tree(widget)  # or their models stay registered in the kernel for good
        return True

    def _layout(self) -> None:
        children = list(self._shown)
        if self._form is not None:
            target, form = self._form
            children.insert(children.index(self.rows[target]) + 1, form)
        self.children = children

    def show_form(self, target: str, form: widgets.Widget | None) -> None:
        """Show ``form`` right below the row of ``target`` (None: take the open form away)."""
        self._form = None if form is None or target not in self.rows else (target, form)
        self._layout()

    def filter(self, text: str) -> int:
        """Show only the targets whose name contains ``text`` (any case); how many show."""
        self._filter = text.strip().lower()
        shown = 0
        for target, row in self.rows.items():
            visible = self._filter in target.lower()
            shown += visible
            display = None if visible else "none"
            if row.layout.display != display:
                row.layout.display = display
        return shown

    def _row(self, record: dict[Any, Any]) -> widgets.HBox:
        target = record["target"]
        name = css_name(target)
        if record["kind"] == "error":
            text = (f"<span style='color:#cf222e'><b>{html.escape(target)}</b>: "
                    f"{html.escape(record['doc'])}</span>")
            row = widgets.HBox([widgets.HTML(text)])
            row.add_class(f"nj-target-{name}")
            self.rows[target] = row
            return row
        allowed = bool(record["allowed"])
        button = widgets.Button(description="Dispatch", disabled=not allowed, icon="play",
                                tooltip=target if allowed else f"{target} is not allowed",
                                layout={"width": "100px"})
        button.add_class(f"nj-dispatch-{name}")
        on_click(button, lambda r=record: self._on_dispatch(r))
        doc = (f" <span style='color:#57606a'>— {html.escape(record['doc'])}</span>"
               if record["doc"] else "")
        text = f"<b>{html.escape(record['member'])}</b>{signature_text(record['parameters'])}{doc}"
        if not allowed:
            hint = html.escape(record["allow_hint"])
            text = (f"<span style='opacity:0.55'>{text} <i>(not allowed)</i></span>"
                    f"<pre class='nj-allow-hint' style='margin:2px 0;font-size:11px'>{hint}</pre>")
        row = widgets.HBox([button, widgets.HTML(text, layout={"min_width": "0"})],
                           layout={"align_items": "flex-start", "max_width": "100%"})
        row.add_class(f"nj-target-{name}")
        if not allowed:
            row.add_class("nj-not-allowed")
        self.buttons[target] = button
        self.rows[target] = row
        return row

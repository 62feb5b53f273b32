"""The Dispatch form: one input per parameter of a target, priority, delay, submit.

Inputs follow the parameter's annotation (bool -> Checkbox, anything else -> Text, with a
hint of the type: list and dict are typed as JSON). Numbers are Text too, not IntText: a
number input in the page silently turns "abc" into its last valid value, and the form would
dispatch that. Text values go to ``client.dispatch`` as strings, which the client coerces by
annotation exactly as it does for the CLI and the magic, with the same errors, shown in the
form; priority and delay are read as dispatch reads them.

Every field is checked at once before anything is sent (``check``), each with the API's own
check and words (``arguments.coerce_one``, ``validate``), and each message shows under its
field without the exception's class name; an empty optional field shows its hint. The form
takes the focus when it opens (``_Focus``), so the page scrolls to it.

*Edit & re-run* opens a form with a finished job's arguments (``values``), priority and
delay: a value left as it was shown goes back as the job had it (a number stays a number, a
frame argument stays its file), a value edited is coerced like any typed one.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

import anywidget
import ipywidgets as widgets

from .. import client
from ..errors import InvalidArgumentsError, NotebookJobsError
from ..model import validate
from ..notebook import handle
from ..notebook.display import css_name, message_html, on_click
from ..targets.arguments import coerce_one, from_string

#: Keywords of ``client.dispatch`` itself: a job parameter with one of these names cannot be
#: passed by keyword through it.
DISPATCH_KEYWORDS = ("target", "priority", "delay", "at", "after", "unique")
_DESCRIPTION_STYLE = {"description_width": "110px"}
_INPUT_LAYOUT = {"width": "100%", "max_width": "480px"}
_HINT = "<div style='margin:-2px 0 4px 114px;font-size:11px;color:#57606a'>{}</div>"
_FIELD_ERROR = ("<div class='nj-field-error' style='margin:-2px 0 4px 114px;font-size:11px;"
                "color:#cf222e'>{}</div>")


class _Focus(anywidget.AnyWidget):
    """Puts the focus in its form as the form appears, which scrolls the page to it: a form
    opens where the user clicked and is where the eyes go (a widget's own ``focus()`` is lost
    when sent before its view exists; this runs when the view is made)."""

    _esm = """
export default { render({ el }) {
  el.style.display = "none";
  requestAnimationFrame(() => {
    const form = el.closest(".nj-form");
    if (!form) return;
    const input = form.querySelector("input:not([disabled]):not([type=checkbox]), textarea");
    if (input) input.focus({ preventScroll: true });
    form.scrollIntoView({ block: form.offsetHeight < window.innerHeight ? "nearest" : "start" });
  });
} };
"""


def field_message(name: str, exc: BaseException) -> str:
    """The API's message for one field, without the class name nor the field's own name
    (it shows beside the field)."""
    message = " ".join(str(exc).split())
    for prefix in (f"{name}: ", f"{name}="):
        if message.startswith(prefix):
            return message[len(prefix):] if prefix.endswith(" ") else message
    return message


def annotation_base(annotation: str) -> str:
    """'int' for 'int', 'int | None' or 'Optional[int]'; 'list' for 'list[int]'; '' for unions."""
    text = annotation.replace(" ", "")
    match = re.fullmatch(r"Optional\[(.*)\]", text)
    if match:
        text = match.group(1)
    parts = [p for p in text.split("|") if p and p != "None"]
    base = parts[0] if len(parts) == 1 else ""
    return base.split("[", 1)[0].lower()


def _default_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (list, dict, bool, int, float)) else str(value)


def input_for(param: dict[str, Any]) -> widgets.ValueWidget:
    """The input widget for one parameter (a dict of ``available_jobs().parameters``)."""
    name, default, required = param["name"], param["default"], param["required"]
    common = {"description": name, "style": _DESCRIPTION_STYLE, "layout": dict(_INPUT_LAYOUT)}
    if param["kind"] == "var_positional":
        return widgets.Text(placeholder='more positional values as a JSON list, e.g. [1, "a"]',
                            **common)
    if param["kind"] == "var_keyword":
        return widgets.Text(placeholder='more keywords as a JSON object, e.g. {"key": 1}', **common)
    base = annotation_base(param["annotation"])
    # A checkbox always holds a value, so use one only when the default is a bool (or there is
    # none); ``flag: bool | None = None`` gets a Text whose empty value means "the default".
    if base == "bool" and (required or isinstance(default, bool)):
        return widgets.Checkbox(value=bool(default), indent=True, **common)
    placeholder = {"list": "JSON list, e.g. [1, 2]", "dict": 'JSON object, e.g. {"key": 1}',
                   "int": "a whole number", "float": "a number"}.get(
        base, "required" if required else "empty: the default")
    return widgets.Text(value=_default_text(default), placeholder=placeholder, **common)


def _hint(param: dict[str, Any]) -> str:
    """'int, required' or "str = 'world'", and the parameter's help where it has some (a
    notebook parameter's comment): shown beside the input, escaped."""
    annotation = param["annotation"] or "any"
    if param["kind"] in ("var_positional", "var_keyword"):
        text = annotation
    elif param["required"]:
        text = f"{annotation}, required"
    else:
        text = f"{annotation} = {param['default']!r}"
    if param.get("help"):  # .get: rows made before parameters had help
        text += f" \N{EM DASH} {param['help']}"
    return html.escape(text)


def _parse_json(name: str, text: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, kind):
        example = '[1, "a"]' if kind is list else '{"key": 1}'
        raise InvalidArgumentsError(f"{name}: {text!r} is not a JSON {kind.__name__}; "
                                    f"write it like {example}")
    return value


class DispatchForm(widgets.VBox):
    """A form that dispatches one target; shows "dispatched job N" or the error, in place."""

    def __init__(self, target: str, parameters: list[dict[str, Any]], doc: str = "",
                 on_dispatched: Callable[[int], None] | None = None,
                 on_close: Callable[[], None] | None = None,
                 values: dict[str, Any] | None = None, priority: int = 0,
                 delay: float = 0.0) -> None:
        self._errors: dict[str, str] = {}  #: field -> the error shown under it now
        self.target = target
        self.parameters = list(parameters)
        self.last_job_id: int | None = None
        self._on_dispatched = on_dispatched
        self._on_close = on_close
        self.inputs: dict[str, widgets.ValueWidget] = {}
        self._initial: dict[str, Any] = {}  # what each input showed when the form opened
        #: Edit & re-run: parameter -> (what its input showed, the job's own value)
        self._prefilled: dict[str, tuple[Any, Any]] = {}
        #: field name (a parameter, "priority" or "delay") -> the HTML under it: its hint, or
        #: its error after a submit
        self.notes: dict[str, widgets.HTML] = {}
        self._hints: dict[str, str] = {}
        rows: list[widgets.Widget] = []
        for param in self.parameters:
            field = input_for(param)
            field.add_class(f"nj-input-{css_name(param['name'])}")
            if values is not None and param["name"] in values:
                self._prefill(field, values[param["name"]])
            self.inputs[param["name"]] = field
            self._initial[param["name"]] = field.value
            rows += [field, self._note(param["name"], _hint(param))]
        self.priority = widgets.Text(value=str(priority) if priority else "",
                                     description="priority", placeholder="0: higher runs first",
                                     style=_DESCRIPTION_STYLE, layout=dict(_INPUT_LAYOUT))
        self.delay = widgets.Text(value=f"{delay:g}" if delay else "", description="delay",
                                  placeholder="none; seconds, or 90s, 5m, 1h30m",
                                  style=_DESCRIPTION_STYLE, layout=dict(_INPUT_LAYOUT))
        self.submit = widgets.Button(description="Dispatch", button_style="primary", icon="play")
        self.close_button = widgets.Button(description="Close")
        self.message = widgets.HTML()
        for widget, name in ((self.priority, "nj-form-priority"), (self.delay, "nj-form-delay"),
                             (self.submit, "nj-form-submit"), (self.close_button, "nj-form-close"),
                             (self.message, "nj-form-message")):
            widget.add_class(name)
        on_click(self.submit, self.submit_form)
        on_click(self.close_button, lambda: self._on_close and self._on_close())
        title = widgets.HTML(f"<b>Dispatch {html.escape(target)}</b>"
                             + (f" — {html.escape(doc)}" if doc else ""))
        super().__init__([title, *rows, self.priority, self._note("priority", ""), self.delay,
                          self._note("delay", ""),
                          widgets.HBox([self.submit, self.close_button, self.message],
                                       layout={"flex_flow": "row wrap",
                                               "align_items": "center"}),
                          _Focus()],
                         layout={"border": "1px solid #d0d7de", "padding": "6px",
                                 "margin": "4px 0", "max_width": "100%"})
        self.add_class("nj-form")
        self.add_class(f"nj-form-{css_name(target)}")

    def _note(self, name: str, hint: str) -> widgets.HTML:
        self._hints[name] = _HINT.format(hint) if hint else ""
        note = self.notes[name] = widgets.HTML(self._hints[name])
        note.add_class(f"nj-note-{css_name(name)}")
        return note

    @property
    def errors(self) -> dict[str, str]:
        """Field -> the error shown under it now (empty when the last submit had none)."""
        return dict(self._errors)

    def _show_errors(self, errors: dict[str, str]) -> None:
        self._errors = errors
        for name, note in self.notes.items():
            value = (_FIELD_ERROR.format(html.escape(errors[name])) if name in errors
                     else self._hints[name])
            if note.value != value:
                note.value = value

    def check(self) -> dict[str, str]:
        """Every field's problem at once (field -> the API's words); empty when all is well.
        Each value is checked as dispatch would check it."""
        errors: dict[str, str] = {}
        signature = client.signature(self.target)
        for param in self.parameters:
            name, kind = param["name"], param["kind"]
            value, kept = self._value(name)
            if kept or not isinstance(value, str):
                continue
            if not value.strip():
                if param["required"]:
                    errors[name] = "required; enter a value"
                continue
            try:
                if kind == "var_positional":
                    _parse_json(name, value, list)
                elif kind == "var_keyword":
                    _parse_json(name, value, dict)
                elif signature is not None and name in signature.parameters:
                    coerce_one(name, value, signature.parameters[name].annotation)
            except InvalidArgumentsError as exc:
                errors[name] = field_message(name, exc)
        try:
            validate.priority(from_string("priority", self.priority.value or "0", int))
        except InvalidArgumentsError as exc:
            errors["priority"] = field_message("priority", exc)
        try:
            validate.seconds("delay", self.delay.value.strip() or 0)
        except InvalidArgumentsError as exc:
            errors["delay"] = field_message("delay", exc)
        return errors

    def _prefill(self, field: widgets.ValueWidget, value: Any) -> None:
        """Show a job's value in its input (Edit & re-run)."""
        if isinstance(field, widgets.Checkbox):
            field.value = bool(value)
        elif validate.is_reference(value):  # a frame or array: kept as it is, not editable
            field.value = f"{value.get(validate.TAG)} from the job (kept)"
            field.disabled = True
        else:
            field.value = _default_text(value)
        self._prefilled[field.description] = (field.value, value)

    def _value(self, name: str) -> tuple[Any, bool]:
        """The input's value, and whether it is the job's own (prefilled and left as shown)."""
        value = self.inputs[name].value
        shown = self._prefilled.get(name)
        if shown is not None and value == shown[0]:
            return shown[1], True
        return value, False

    def arguments(self) -> tuple[list[Any], dict[str, Any]]:
        """(args, kwargs) from the inputs.

        An optional parameter whose input is empty or still shows its default is left out, so
        the function's own default applies (a prefilled ``n=5`` of an unannotated parameter is
        not sent back as the string "5"). Raises InvalidArgumentsError for an empty required
        input, bad JSON in a ``*args`` or ``**kwargs`` input, or a parameter named like one of
        dispatch's own keywords.
        """
        slots: list[tuple[dict[str, Any], bool, Any]] = []  # parameters that can be positional
        extra: list[Any] = []  # the *args values
        kwargs: dict[str, Any] = {}
        for param in self.parameters:
            name, kind = param["name"], param["kind"]
            value, kept = self._value(name)
            empty = isinstance(value, str) and not value.strip() and not kept
            if empty and param["required"]:
                raise InvalidArgumentsError(f"{name} is required; enter a value")
            given = kept or (not empty and (param["required"] or value != self._initial[name]))
            if kind in ("positional_only", "positional_or_keyword"):
                slots.append((param, given, value))
            elif not given:
                continue
            elif kind == "var_positional":
                extra = value if kept else _parse_json(name, value, list)
            elif kind == "var_keyword":
                kwargs.update(value if kept else _parse_json(name, value, dict))
            else:
                kwargs[name] = value
        if extra:
            # *args come after every positional parameter, so those go by position too.
            args = [value if given else param["default"] for param, given, value in slots]
            return args + extra, self._checked(kwargs)
        # Positional-only values up to the last one given; defaults fill the gaps before it.
        only = [(given, value if given else param["default"])
                for param, given, value in slots if param["kind"] == "positional_only"]
        while only and not only[-1][0]:
            only.pop()
        for param, given, value in slots:
            if given and param["kind"] == "positional_or_keyword":
                kwargs[param["name"]] = value
        return [value for _, value in only], self._checked(kwargs)

    def _checked(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs``, unless one would collide with dispatch's own keyword arguments."""
        clash = sorted(set(kwargs) & set(DISPATCH_KEYWORDS))
        if clash:
            raise InvalidArgumentsError(
                f"parameter {clash[0]!r} has the name of a dispatch option, so the form cannot "
                f"pass it; rename it in {self.target}")
        return kwargs

    def submit_form(self) -> int | None:
        """Dispatch with the form's values; the new job id, or None when it was refused (each
        field's problem under it, anything else beside the button)."""
        errors = self.check()
        self._show_errors(errors)
        if errors:
            count = len(errors)
            self.message.value = message_html(
                f"{count} field{'s' if count != 1 else ''} to correct", "error")
            return None
        try:
            args, kwargs = self.arguments()
            priority = from_string("priority", self.priority.value or "0", int)
            job_id = handle.dispatch(self.target, *args, priority=priority,
                                     delay=self.delay.value.strip() or 0, **kwargs)
        except NotebookJobsError as exc:
            message = " ".join(str(exc).split())
            field = next((n for n in self.notes if message.startswith((f"{n}:", f"{n}="))), None)
            if field is not None:
                self._show_errors({field: field_message(field, exc)})
                message = "1 field to correct"
            self.message.value = message_html(message, "error")
            return None
        self.last_job_id = job_id
        self.message.value = message_html(f"dispatched job {job_id}", "ok")
        if self._on_dispatched is not None:
            self._on_dispatched(job_id)
        return job_id

"""Arguments of a dispatch: bound to the target's signature, strings coerced, JSON only.

Binding uses ``inspect.Signature.bind`` so missing or extra arguments are refused when the job is
dispatched, not when it runs. Strings (from forms, the CLI and the magic) are coerced by the
parameter's annotation.
"""

from __future__ import annotations

import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidArgumentsError
from ..model import validate
from .registry import Target

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def bind(target: Target, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any]
         ) -> tuple[list[Any], dict[str, Any]]:
    """Coerced, JSON-checked ``(args, kwargs)`` that fit the target's signature."""
    return binder(target).bind(args, kwargs)


def binder(target: Target) -> Binder:
    """The target's ``Binder``, kept while the registry hands out this same Target."""
    found = _BINDERS.get(id(target))
    if found is None or found.target is not target:  # (an id may be reused)
        if len(_BINDERS) >= 256:
            _BINDERS.clear()
        found = _BINDERS[id(target)] = Binder(target)
    return found


#: id(target) -> its Binder: the registry hands out the same Target while the whitelist and
#: the code are unchanged, so repeated dispatches of it bind their shape once (by identity: a
#: Target whose defaults are lists cannot be hashed)
_BINDERS: dict[int, Binder] = {}

#: what a value is coerced to: the annotation's type (its origin for ``list[int]`` and the
#: like) and whether None is allowed (``X | None``)
_Kind = tuple[Any, bool]
#: a call shape's plan: each positional value's (name, kind), then each keyword's kind
_Plan = tuple[list[tuple[str, _Kind]], dict[str, _Kind]]


class Binder:
    """``bind`` for many calls of one target (``dispatch_many``): whether a call fits the
    signature depends only on its shape (how many positional values, which names), so the
    signature is checked, and each value's parameter found, once per shape; each value is
    still coerced and checked on its own. A batch is usually one shape: 100,000 calls of one
    shape cost one ``Signature.bind`` instead of 100,000 (a third of the batch's time)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._plans: dict[tuple[int, tuple[str, ...]], _Plan] = {}

    def bind(self, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any]
             ) -> tuple[list[Any], dict[str, Any]]:
        """Coerced, JSON-checked ``(args, kwargs)`` that fit the target's signature; the
        caller's positional/keyword form is kept."""
        shape = (len(args), tuple(kwargs))
        plan = self._plans.get(shape)
        if plan is None:
            if len(self._plans) >= 256:  # a target with **kwargs has no end of shapes
                self._plans.clear()
            plan = self._plans[shape] = self._plan(*shape)
        positional, keywords = plan
        return ([to_json_value(name, _coerce(name, validate.plain_number(value), *kind))
                 for (name, kind), value in zip(positional, args, strict=True)],
                {name: to_json_value(name, _coerce(name, validate.plain_number(value),
                                                   *keywords[name]))
                 for name, value in kwargs.items()})

    def _plan(self, count: int, names: tuple[str, ...]) -> _Plan:
        """The parameter of each value of a call of this shape; ``InvalidArgumentsError``
        when such a call does not fit the signature (missing or extra arguments)."""
        sig = self.target.signature
        try:  # binding checks the shape alone: placeholders stand for the values
            sig.bind(*([None] * count), **dict.fromkeys(names))
        except TypeError as exc:
            raise InvalidArgumentsError(
                f"{self.target.name}{_plain_signature(sig)}: {_misfit(exc, sig, names)}; "
                "pass the arguments it takes") from exc
        params = list(sig.parameters.values())
        named = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                 inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        var_positional = next((p for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL),
                              None)
        var_keyword = next((p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None)
        positional = []
        for i in range(count):
            # the check above guarantees a parameter for each value: a named one, or *args
            if i < len(named):
                positional.append((named[i].name, _kind(named[i].annotation)))
            else:
                assert var_positional is not None
                positional.append((f"argument {i + 1}", _kind(var_positional.annotation)))
        keywords = {}
        for name in names:
            param = sig.parameters.get(name)
            if param is None or param.kind is inspect.Parameter.VAR_POSITIONAL:
                param = var_keyword  # the check above guarantees a **kwargs for it
            assert param is not None
            keywords[name] = _kind(param.annotation)
        return positional, keywords


#: hex digits of the hash in a ``unique=True`` key
UNIQUE_DIGEST_CHARS = 32
#: what stands for a default that is not JSON in a call's key (the key ``$nj`` is reserved in
#: arguments, so no value passed can look like it)
_NOT_JSON_DEFAULT = {validate.TAG: "default"}


def unique_key(target: Target, args: list[Any], kwargs: dict[str, Any], unique: Any,
               data: Callable[[], Mapping[str, str]] = dict) -> str | None:
    """The key of ``dispatch(unique=...)`` (SPEC §16): None for False/None; a string is the key
    itself; for True, the target and a hash of the call, bound by name with defaults applied,
    so every spelling of one call has one key: ``f(steps=5, pause=0.3)``, ``f(5, 0.3)`` and
    ``f(steps=5)`` where ``pause`` defaults to 0.3. A ``float`` parameter's 1 and 1.0 are one
    value; a default that is not JSON counts as "the default".

    ``args``/``kwargs``: as ``bind`` returned them. ``data()``: file name -> a hash of the
    content of each frame or array this dispatch stores (``argfiles.Stash.digests``), so that
    equal data is one key (a frame already in the queue, passed again by ``nj.retry``, is
    keyed by its file).
    """
    if unique is None or unique is False:
        return None
    if unique is not True:
        return validate.unique_key("unique", unique)
    import hashlib  # here: only unique=True pays for it (OpenSSL's libcrypto)
    import json

    text = json.dumps(_call_by_name(target.signature, args, kwargs), sort_keys=True,
                      separators=(",", ":"))
    for name, digest in data().items():  # names are 32 random hex digits: no false match
        text = text.replace(name, digest)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{target.name}:{digest[:UNIQUE_DIGEST_CHARS]}"


def _call_by_name(sig: inspect.Signature, args: list[Any], kwargs: dict[str, Any]
                  ) -> dict[str, Any]:
    """parameter -> value of a call that fits ``sig`` (``bind`` checked it), every parameter
    named, the defaults of those not given applied."""
    bound = sig.bind(*args, **kwargs)
    given = set(bound.arguments)
    bound.apply_defaults()
    call = {}
    for name, value in bound.arguments.items():
        if name not in given:
            try:
                value = validate.json_value(name, value)
            except InvalidArgumentsError:
                value = _NOT_JSON_DEFAULT
        param = sig.parameters[name]
        if (_kind(param.annotation)[0] is float and isinstance(value, int)
                and not isinstance(value, bool)):
            value = float(value)
        call[name] = value
    return call


def keyword_names(sig: inspect.Signature) -> list[str]:
    """The names a call may pass by keyword (``**kwargs`` aside)."""
    return [p.name for p in sig.parameters.values() if p.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def _misfit(exc: TypeError, sig: inspect.Signature, names: tuple[str, ...]) -> str:
    """Why a call does not fit ``sig``: a keyword it does not take first, with the name it
    resembles (``Signature.bind`` would say only that a required one is missing), else
    ``bind``'s own words."""
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return str(exc)
    known = keyword_names(sig)
    for name in names:
        if name not in sig.parameters:  # (a positional-only one named: bind's words say so)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return (f"unexpected keyword argument {name!r}{hint}; the names it takes: "
                    f"{', '.join(known) or 'none'}")
    return str(exc)


def _plain_signature(sig: inspect.Signature) -> str:
    return (
        "("
        + ", ".join(
            p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
            for p in sig.parameters.values()
        )
        + ")"
    )


def to_json_value(name: str, value: Any) -> Any:
    """The value as it will come back from the queue (tuples become lists); refuses non-JSON."""
    return validate.json_value(name, value)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """(inner type, whether None is allowed) for ``X | None`` / ``Optional[X]``, also as text
    (an annotation that could not be evaluated: ``"np.ndarray | None"``)."""
    if isinstance(annotation, str):
        parts = [part.strip() for part in annotation.split("|")]
        if len(parts) == 2 and "None" in parts:
            parts.remove("None")
            return parts[0], True
        return annotation, False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0], len(members) < len(typing.get_args(annotation))
    return annotation, False


class _Data(str):
    """A parameter annotated as a frame or an array: ``_kind``'s base for it, the kind of data
    it takes (DataFrame, Series, ndarray), which only such data (``DataRef``) can fill."""


#: the last part of an annotation's name -> the data it means, and how a message names it
_DATA = {"DataFrame": ("DataFrame", "pandas DataFrame"), "Series": ("Series", "pandas Series"),
         "ndarray": ("ndarray", "numpy array"), "NDArray": ("ndarray", "numpy array")}
_DATA_MODULES = ("pandas", "numpy")
#: how code names those modules in an annotation left as text
_DATA_ALIASES = ("", "pd", "pandas", "np", "numpy", "npt", "numpy.typing")
#: a data kind -> how a message names it
DATA_NAMES = {kind: shown for kind, shown in _DATA.values()}


def _data_kind(base: Any) -> _Data | None:
    """The data a base type means: pandas' DataFrame or Series, numpy's ndarray (also
    ``npt.NDArray[...]``, and such an annotation left as text where it could not be
    evaluated: ``"pd.DataFrame"``); None for anything else."""
    if isinstance(base, str):
        module, _, name = base.split("[")[0].rpartition(".")
        if module not in _DATA_ALIASES:
            return None
    else:
        name, module = getattr(base, "__name__", ""), getattr(base, "__module__", "") or ""
        if module.split(".")[0] not in _DATA_MODULES:
            return None
    found = _DATA.get(name)
    return None if found is None else _Data(found[0])


def _kind(annotation: Any) -> _Kind:
    """What ``_coerce`` turns a value for a parameter so annotated into."""
    kind, optional = _unwrap_optional(annotation)
    base = typing.get_origin(kind) or kind
    return _data_kind(base) or base, optional


def _coerce(name: str, value: Any, base: Any, optional: bool) -> Any:
    """Turn a string into ``base`` (a ``_kind``); check plain values against simple types."""
    if value is None:
        return None
    if isinstance(value, str) and optional and value.strip().lower() in ("null", "none"):
        return None
    if type(base) is _Data:
        if not isinstance(value, validate.DataRef) or value.kind != base:
            # refused here: the job would fail on every attempt with it
            shown = DATA_NAMES[base]
            raise InvalidArgumentsError(
                f"{name}: {validate.short_repr(value)} is not accepted; expected a {shown}: "
                f"pass the {shown} itself, from Python (the CLI, %jobs and the form give text)")
        return value
    if base in (int, float, bool, list, dict) and isinstance(value, str):
        return from_string(name, value, base)
    if base is bool and not isinstance(value, bool):
        raise _mismatch(name, value, "bool")
    if base is int and (isinstance(value, bool) or not isinstance(value, int)):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _mismatch(name, value, "int")
    if base is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise _mismatch(name, value, "float")
    if base is float and isinstance(value, float) and not math.isfinite(value):
        raise _mismatch(name, value, "a finite float")
    if base is list and not isinstance(value, (list, tuple)):
        raise _mismatch(name, value, "list")
    if base is dict and not isinstance(value, dict):
        raise _mismatch(name, value, "dict")
    if base is str and not isinstance(value, str):
        raise _mismatch(name, value, "str")
    return value


def from_string(name: str, text: str, base: type) -> Any:
    """``text`` as a ``base`` (int, float, bool, list or dict), as a dispatch coerces a string
    for a parameter so annotated; ``InvalidArgumentsError`` naming ``name`` otherwise."""
    raw = text.strip()
    if base is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise _mismatch(name, text, "bool (true/false, yes/no, 1/0)")
    if base is int:
        try:
            return int(raw)
        except ValueError:
            raise _mismatch(name, text, "int") from None
    if base is float:
        try:
            value = float(raw)
        except ValueError:
            raise _mismatch(name, text, "float") from None
        if not math.isfinite(value):
            raise _mismatch(name, text, "a finite float")
        return value
    try:
        value = validate.strict_loads(raw)
    except RecursionError:
        raise _mismatch(name, f"{raw[:40]}...", f"{base.__name__} nested at most "
                        f"{validate.MAX_JSON_DEPTH} levels deep") from None
    except ValueError:
        raise _mismatch(name, text, f"{base.__name__} written as JSON, e.g. "
                        + ("[1, 2]" if base is list else '{"key": 1}')) from None
    if not isinstance(value, base):
        raise _mismatch(name, text, f"{base.__name__} written as JSON")
    return value


def _mismatch(name: str, value: Any, expected: str) -> InvalidArgumentsError:
    return InvalidArgumentsError(f"{name}: {validate.short_repr(value)} is not accepted; "
                                 f"expected {expected}")


def coerce_one(name: str, value: Any, annotation: Any) -> Any:
    """One value as ``bind`` coerces it for a parameter so annotated (a form checks each
    field on its own with it, so that every bad field is named at once, not the first)."""
    return to_json_value(name, _coerce(name, validate.plain_number(value), *_kind(annotation)))

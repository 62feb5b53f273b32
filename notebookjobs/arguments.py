"""Arguments of a dispatch: bound to the target's signature, strings coerced, JSON only.

Binding uses ``inspect.Signature.bind`` so missing or extra arguments are refused when the job is
dispatched, not when it runs. Strings (from forms, the CLI and the magic) are coerced by the
parameter's annotation.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from typing import Any

from . import validate
from .errors import InvalidArgumentsError
from .registry import Target

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def bind(target: Target, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any]
         ) -> tuple[list[Any], dict[str, Any]]:
    """Coerced, JSON-checked ``(args, kwargs)`` that fit the target's signature."""
    sig = target.signature
    args = [validate.plain_number(a) for a in args]
    kwargs = {k: validate.plain_number(v) for k, v in kwargs.items()}
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidArgumentsError(
            f"{target.name}{_plain_signature(sig)}: {exc}; pass the arguments it takes"
        ) from exc
    # Coerce each value by the parameter it binds to, keeping the caller's positional/keyword form.
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                  inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    var_positional = next((p for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
    var_keyword = next((p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None)
    out_args = []
    for i, value in enumerate(args):
        # sig.bind above guarantees a parameter for each value: a named one, or *args / **kwargs
        param = positional[i] if i < len(positional) else var_positional
        assert param is not None
        name = param.name if i < len(positional) else f"argument {i + 1}"
        out_args.append(to_json_value(name, _coerce(name, value, param.annotation)))
    out_kwargs = {}
    for name, value in kwargs.items():
        found = sig.parameters.get(name)
        named = found is not None and found.kind is not inspect.Parameter.VAR_POSITIONAL
        param = found if named else var_keyword
        assert param is not None
        out_kwargs[name] = to_json_value(name, _coerce(name, value, param.annotation))
    return out_args, out_kwargs


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
    """(inner type, whether None is allowed) for ``X | None`` / ``Optional[X]``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0], len(members) < len(typing.get_args(annotation))
    return annotation, False


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Turn a string into the annotated type; check plain values against simple annotations."""
    kind, optional = _unwrap_optional(annotation)
    base = typing.get_origin(kind) or kind
    if value is None:
        return None
    if isinstance(value, str) and optional and value.strip().lower() in ("null", "none"):
        return None
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

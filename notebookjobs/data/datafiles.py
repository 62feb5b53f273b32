"""Frames, arrays and bytes in files of the queue's folder (SPEC §15), never through pickle.

A DataFrame or Series is Parquet (pyarrow: index, dtypes and ``attrs`` kept as far as Parquet
keeps them), a numpy array ``.npy`` written and read with ``allow_pickle=False``, bytes are
bytes. The files live in ``<queue>.data/`` beside the queue file: ``results/<id>.<suffix>``
(``results``) and ``arguments/<32 hex>.<suffix>`` (``arguments``), 0600 in 0700 folders
(SPEC §14), each written under a temporary name and renamed, so a reader never sees half a file.

pandas, numpy and pyarrow are imported only when a value of theirs is written or read: the
pool's children load this module, and most jobs return JSON.
"""

from __future__ import annotations

import functools
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..system import files

#: the key of the Parquet schema metadata where a Series keeps its name
SERIES_META = b"notebookjobs"
#: the column a Series is stored as
SERIES_COLUMN = "__series__"


class TooLarge(Exception):
    """A value is larger than the limit it is written under."""


@functools.lru_cache(maxsize=64)  # every dispatch asks; pathlib is slow
def data_dir(db_path: Path) -> Path:
    """``<queue file>.data``: the folder of result and argument files of the queue."""
    return db_path.with_name(db_path.name + ".data")


@functools.lru_cache(maxsize=64)  # each attempt asks; pathlib is slow
def results_dir(data: Path) -> Path:
    """The folder of result files, in the data folder ``data``."""
    return data / "results"


@functools.lru_cache(maxsize=64)  # every dispatch asks; pathlib is slow
def arguments_dir(data: Path) -> Path:
    """The folder of argument files, in the data folder ``data``."""
    return data / "arguments"


def kind_of(value: Any) -> str | None:
    """DataFrame, Series, ndarray or bytes for a value kept in a file; None for others.

    By the modules already loaded: a value cannot be a DataFrame unless pandas is imported.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    pandas, numpy = sys.modules.get("pandas"), sys.modules.get("numpy")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return "DataFrame"
    if pandas is not None and isinstance(value, pandas.Series):
        return "Series"
    if numpy is not None and isinstance(value, numpy.ndarray):
        return "ndarray"
    return None


def summary(value: Any, kind: str) -> dict[str, Any]:
    """What the queue keeps of a value stored in a file (``status()["result"]``)."""
    if kind == "DataFrame":
        return {"type": kind, "rows": len(value),
                "columns": [str(c) for c in value.columns][:1000]}
    if kind == "Series":
        return {"type": kind, "rows": len(value), "name": _json_name(value.name),
                "dtype": str(value.dtype)}
    if kind == "ndarray":
        return {"type": kind, "shape": [int(n) for n in value.shape], "dtype": str(value.dtype)}
    return {"type": kind, "size": len(memoryview(value).cast("B"))}


def describe(value: Any, kind: str) -> str:
    """'DataFrame 100 x 3', 'ndarray (10, 2) float64': a value in one short phrase."""
    if kind == "DataFrame":
        return f"DataFrame {len(value)} x {len(value.columns)}"
    if kind == "Series":
        return f"Series of {len(value)} {value.dtype}"
    if kind == "ndarray":
        return f"ndarray {tuple(value.shape)} {value.dtype}"
    return f"{len(value)} bytes"


def digest(value: Any, kind: str) -> str:
    """A hash of a frame's, Series' or array's content: its values and dtypes, a frame's
    columns and index, a Series' name, an array's shape; equal data, equal hash, however it was
    built. "" for data pandas cannot hash (cells that are lists): such data has no key of its
    own, and two dispatches of it are never taken for one."""
    import hashlib

    h = hashlib.sha256(kind.encode())
    try:
        if kind == "ndarray":
            import numpy

            h.update(f"{value.dtype.str}{value.shape}".encode())
            h.update(numpy.ascontiguousarray(value).tobytes() if value.dtype != object
                     else repr(value.tolist()).encode())
        else:
            import pandas

            shape = ([str(c) for c in value.columns], [str(t) for t in value.dtypes]) \
                if kind == "DataFrame" else (str(value.name), str(value.dtype))
            h.update(repr(shape).encode())
            h.update(pandas.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    except (TypeError, ValueError):
        return ""
    return h.hexdigest()


def _json_name(name: Any) -> Any:
    """A Series name as JSON (a tuple becomes a list; anything else its str)."""
    try:
        return json.loads(json.dumps(name, allow_nan=False))
    except (TypeError, ValueError):
        return str(name)


class _Limited(io.RawIOBase):
    """A file that raises TooLarge once more than ``limit`` bytes are written to it: a result
    over the limit is refused as soon as it shows, not after it filled the disk."""

    def __init__(self, fd: int, limit: int) -> None:
        self._file = os.fdopen(fd, "wb")
        self._limit = limit
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(memoryview(data).cast("B"))
        self.size += size
        if self.size > self._limit:
            raise TooLarge(f"more than {self._limit:,} bytes")
        return self._file.write(data)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        super().close()


def write(value: Any, kind: str, path: Path, limit: int) -> None:
    """Store ``value`` (of ``kind``) at ``path`` (in a folder of the data folder), 0600, at
    most ``limit`` bytes (``TooLarge`` beyond). Anything the format cannot hold raises
    (``ValueError``, ``TypeError`` or pyarrow's errors): a column of mixed objects, an array
    of Python objects."""
    # The data folder first: mkdir(parents=True) would give it the umask's mode, not 0700.
    files.private_dir(path.parent.parent)
    files.private_dir(path.parent)
    # os.urandom, as secrets.token_hex does: importing secrets (hmac) maps OpenSSL's libcrypto,
    # ~3.5 MB resident that every pool child, which writes results here, would keep (SPEC §13).
    temporary = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    sink = _Limited(files.open_private(temporary, os.O_WRONLY | os.O_EXCL), limit)
    try:
        with sink:
            _encode(value, kind, sink)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _encode(value: Any, kind: str, sink: Any) -> None:
    if kind == "bytes":
        sink.write(bytes(value))
    elif kind == "ndarray":
        import numpy as np

        if value.dtype.hasobject:
            raise TypeError(f"an array of dtype {value.dtype} holds Python objects, which "
                            ".npy keeps only through pickle")
        np.save(sink, value, allow_pickle=False)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame, meta = value, {}
        if kind == "Series":
            frame, meta = value.to_frame(name=SERIES_COLUMN), {"name": _json_name(value.name)}
        table = pa.Table.from_pandas(frame)
        if meta:
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), SERIES_META: json.dumps(meta).encode()})
        pq.write_table(table, sink)


def read(kind: str, path: Path, rows: int | None = None) -> Any:
    """The value stored at ``path`` by ``write``; ``rows``: only the first rows of a frame
    (a preview, without reading the whole file). ``FileNotFoundError`` when it is gone."""
    if kind == "bytes":
        return path.read_bytes()
    if kind == "ndarray":
        import numpy as np

        if rows is None:
            return np.load(path, allow_pickle=False)
        # A preview: the first rows, mapped rather than read (the array may be large).
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        return np.array(mapped if mapped.ndim == 0 else mapped[:rows])
    import pyarrow as pa
    import pyarrow.parquet as pq

    if rows is None:
        table = pq.read_table(path)
    else:
        parquet = pq.ParquetFile(path)
        batch = next(parquet.iter_batches(batch_size=max(1, rows)), None)
        table = (pa.Table.from_batches([batch]) if batch is not None
                 else parquet.schema_arrow.empty_table())
    frame = table.to_pandas()
    if kind != "Series":
        return frame
    series = frame[SERIES_COLUMN]
    meta = (table.schema.metadata or {}).get(SERIES_META)
    name = json.loads(meta)["name"] if meta else None
    series.name = tuple(name) if isinstance(name, list) else name
    return series

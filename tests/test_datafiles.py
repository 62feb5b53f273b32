"""What Parquet and .npy keep of a value, and what they do not (SPEC §15; the README's list):
``datafiles.write`` and ``read`` on real files, no worker."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from notebookjobs.data import datafiles, results
from notebookjobs.model.validate import RESULT_SUFFIXES

KEPT: dict[str, pd.Series] = {
    "int8": pd.Series([1, 2], dtype="int8"), "uint64": pd.Series([1, 2], dtype="uint64"),
    "float32": pd.Series([1.5, 2.0], dtype="float32"), "bool": pd.Series([True, False]),
    "Int64": pd.Series([1, None], dtype="Int64"), "boolean": pd.Series([True, None],
                                                                      dtype="boolean"),
    "str": pd.Series(["a", None]), "category": pd.Series(["a", "b"], dtype="category"),
    "ordered": pd.Series(pd.Categorical(["lo", "hi"], categories=["lo", "hi"], ordered=True)),
    "tz": pd.Series(pd.date_range("2026-01-01", periods=2, tz="Europe/Paris")),
    "timedelta": pd.Series(pd.to_timedelta([1, 2], unit="s")),
    "period": pd.Series(pd.period_range("2026-01", periods=2, freq="M")),
    "interval": pd.Series(pd.interval_range(0, 2)),
    "decimal": pd.Series([Decimal("1.10"), None]), "dict": pd.Series([{"a": 1}, {"a": 2}]),
}


def roundtrip(value, kind, folder):
    """``value`` written to a file of ``folder`` and read back."""
    path = folder / f"value{RESULT_SUFFIXES[kind]}"
    datafiles.write(value, kind, path, limit=2**30)
    return datafiles.read(kind, path)


@pytest.mark.parametrize("name", sorted(KEPT))
def test_parquet_keeps_these_dtypes(name, tmp_path):
    frame = pd.DataFrame({"x": KEPT[name].set_axis(pd.Index(["a", "b"], name="k"))})
    frame.attrs["source"] = "test"
    back = roundtrip(frame, "DataFrame", tmp_path / "data" / "results")
    pd.testing.assert_frame_equal(back, frame)
    assert back.attrs == {"source": "test"}


def test_indexes_and_series_names_are_kept(tmp_path):
    multi = pd.DataFrame({0: [1, 2], 1: [3, 4]},
                         index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["s", "n"]))
    pd.testing.assert_frame_equal(roundtrip(multi, "DataFrame", tmp_path / "d" / "r"), multi)
    series = pd.Series([1.5, 2.5], index=pd.RangeIndex(5, 7), name=("price", "eur"))
    pd.testing.assert_series_equal(roundtrip(series, "Series", tmp_path / "d" / "r"), series)


def test_what_parquet_does_not_keep(tmp_path):
    folder = tmp_path / "d" / "r"
    seconds = pd.DataFrame({"t": pd.to_datetime(["2026-01-01"]).as_unit("s")})
    assert str(roundtrip(seconds, "DataFrame", folder)["t"].dtype) == "datetime64[ms]"
    objects = pd.DataFrame({"s": pd.Series(["a", "b"], dtype=object)})
    assert str(roundtrip(objects, "DataFrame", folder)["s"].dtype) == "str"
    lists = roundtrip(pd.DataFrame({"l": [[1, 2], [3]]}), "DataFrame", folder)
    assert isinstance(lists["l"][0], np.ndarray)
    daily = pd.DataFrame({"x": [1, 2]}, index=pd.date_range("2026-01-01", periods=2, freq="D"))
    assert roundtrip(daily, "DataFrame", folder).index.freq is None


@pytest.mark.parametrize("value", [
    pd.DataFrame({"m": ["a", 1, 2.5]}), pd.DataFrame({"c": [1 + 2j]}),
    pd.DataFrame({"s": pd.arrays.SparseArray([0, 1])}), pd.DataFrame([[1, 2]], columns=["a", "a"]),
], ids=["mixed", "complex", "sparse", "repeated-names"])
def test_a_frame_parquet_cannot_hold_is_kept_as_its_repr(value, tmp_path, capsys):
    kind, kept = results.keep(value, folder=tmp_path / "d" / "results", job_id=1)
    assert kind == "repr" and kept == repr(value)
    assert "could not be stored as .parquet" in capsys.readouterr().out
    assert not list((tmp_path / "d" / "results").glob("1.*"))


def test_arrays_keep_shape_and_dtype_and_object_arrays_are_not_pickled(tmp_path):
    array = np.arange(12, dtype=">i2").reshape(3, 4)
    back = roundtrip(array, "ndarray", tmp_path / "d" / "r")
    assert back.dtype == array.dtype and (back == array).all()
    kind, kept = results.keep(np.array([{"a": 1}], dtype=object), folder=tmp_path / "d" / "r",
                              job_id=2)
    assert kind == "repr" and "{'a': 1}" in kept


def test_a_value_over_the_limit_is_refused_while_it_is_written(tmp_path):
    with pytest.raises(results.ResultTooLargeError, match="larger than max_result_bytes"):
        results.keep(np.zeros(10_000), folder=tmp_path / "d" / "r", job_id=3, limit=1000)
    assert list((tmp_path / "d" / "r").iterdir()) == []  # the partial file is gone

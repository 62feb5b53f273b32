"""Property (SPEC §14, issue 21): whatever a crash or a cut does to the dispatch journal between
appends (a record torn at any byte, a tail of zeros, an append whose head write was lost, the
file cut anywhere past its head), the next append's ids are above every id handed out before,
the file reads back whole after it, and every acknowledged record the cut did not take is
read back, in order. The real journal code on a real file, in this process (no DuckDB)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from notebookjobs import journal

from .harness import records_of
from .poison import examples

#: argument text, with what a torn tail must not be taken for (a footer's magic, after 8 bytes)
TEXT = st.one_of(st.text(max_size=40), st.just("AAAAAAAANJRE"), st.just("NJR1" * 3),
                 st.builds(lambda n: "x" * n, st.integers(4000, 9000)))  # past one read
APPEND = st.tuples(st.just("append"), st.integers(1, 3), st.lists(TEXT, max_size=3))
FAULT = st.one_of(
    st.tuples(st.just("torn"), st.floats(0, 1), TEXT),  # a crash in the middle of a write
    st.tuples(st.just("zeros"), st.integers(1, 400), st.none()),  # length on disk, not bytes
    st.tuples(st.just("head lost"), st.none(), TEXT),  # the record reached the disk, not the head
    st.tuples(st.just("cut"), st.floats(0, 1), st.none()),  # truncated by other means
)


def payload(texts: list[str]) -> bytes:
    return json.dumps({"args": texts}).encode()


@examples(40)
@given(steps=st.lists(st.one_of(APPEND, FAULT), min_size=1, max_size=12))
def test_no_crash_or_cut_numbers_an_id_twice_or_loses_a_record_it_left(tmp_path_factory, steps):
    log = journal.Journal(tmp_path_factory.mktemp("journal") / "queue.duckdb")
    with log.locked() as fd:
        log.reset(fd, 0)
    handed_out = 0  # the highest id an acknowledged append returned
    #: (first, last, end offset) of the intact records: acknowledged, or whose append died
    #: after its record reached the disk (a reader may have taken it: its ids are taken too)
    acked: list[tuple[int, int, int]] = []
    for kind, amount, texts in steps:
        data = log.path.read_bytes()
        if kind == "append":
            first, last = log.append(journal.BATCH, amount, payload(texts))
            # Then its ids are new, the file reads back whole, and what was left is all there
            taken = max([handed_out, *(b for _, b, _ in acked)])
            assert first > taken, (first, taken, steps)
            handed_out = last
            records, size = records_of(log.path)
            assert records[-1].end == size and (records[-1].first_id, records[-1].last_id) == (
                first, last)
            acked.append((first, last, size))
            read = [(r.first_id, r.last_id) for r in records if r.kind != journal.BASE]
            assert read == [(a, b) for a, b, _ in acked], steps
        elif kind == "torn":
            record = journal.encode(journal.BATCH, handed_out + 1, handed_out + 1,
                                    payload([texts]))
            log.path.write_bytes(data + record[:int(amount * (len(record) - 1))])
        elif kind == "zeros":
            log.path.write_bytes(data + b"\0" * amount)
        elif kind == "head lost":
            log.append(journal.JOB, 1, payload([texts]))  # never acknowledged: its caller died
            grown = log.path.read_bytes()
            log.path.write_bytes(data[:journal.HEAD_SIZE] + grown[journal.HEAD_SIZE:])
            records, _ = records_of(log.path)
            acked.append((records[-1].first_id, records[-1].last_id, len(grown)))
        else:  # cut past the head: what it takes is lost, its ids are still handed out
            at = journal.HEAD_SIZE + int(amount * (len(data) - journal.HEAD_SIZE))
            log.path.write_bytes(data[:at])
            acked = [a for a in acked if a[2] <= at]

"""Frames, arrays and result files against the queue (SPEC §14, §15): nothing is pickled, a
reference written by other means reads nothing outside the arguments folder, a damaged file
fails its job alone."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.access import remote
from notebookjobs.data import datafiles
from notebookjobs.model.records import utcnow
from support import change_job

from .harness import socket_of

#: every pickle of protocol 2 or later starts with the PROTO opcode
PICKLE_PROTO = b"\x80"


class Relay:
    """A Unix socket that forwards to the worker's and records every byte either way."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path, self.target = path, target
        self.traffic = bytearray()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        self._server.settimeout(0.05)  # so that the accepting thread sees close() soon
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with self._lock:
                self._sockets += [client, upstream]
            try:
                upstream.connect(str(self.target))
            except OSError:
                continue
            for a, b in ((client, upstream), (upstream, client)):
                thread = threading.Thread(target=self._pipe, args=(a, b), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    self.traffic += data
                sink.sendall(data)
        except OSError:
            pass
        finally:  # one side closed: so does the other (the reply is of no use to anyone now)
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()

    def close(self) -> None:
        link = getattr(remote._links, "link", None)
        if link is not None:  # the client's kept connection, to the relay
            remote._drop(link)
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                sock.close()
        for thread in self._threads:
            thread.join(10)
        self._server.close()



def assert_no_pickle_in(folder: Path) -> list[Path]:
    """Every file under ``folder`` is one of ours and none is a pickle; the data files."""
    data = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        content = path.read_bytes()
        assert not content.startswith(PICKLE_PROTO), f"{path} looks like a pickle"
        if path.suffix == ".parquet":
            assert content[:4] == content[-4:] == b"PAR1", path
            data.append(path)
        elif path.suffix == ".npy":
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                _, _, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(fh))
            assert not dtype.hasobject, f"{path} holds Python objects"
            np.load(path, allow_pickle=False)  # readable without pickle
            data.append(path)
    return data


def test_the_queue_folder_and_the_socket_hold_json_parquet_and_npy_only(project, start_worker,
                                                                tmp_path, monkeypatch):
    # Given a worker, and every client request relayed through a socket that records it
    start_worker()
    relay = Relay(tmp_path / "relay.sock", socket_of(project))
    monkeypatch.setattr(remote, "socket_path", lambda settings: relay.path)
    try:
        # When frames and arrays go in as arguments and come back as results, and the
        # queue's frames are read
        frame = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.Index(["a", "b"], name="k"))
        jobs = [nj.dispatch("jobs.testing.scaled", frame),
                nj.dispatch("jobs.testing.scaled", np.arange(4.0)),
                *nj.dispatch_many("jobs.testing.describe", [[frame.v]]),
                nj.dispatch("jobs.testing.blob", 16), nj.dispatch("jobs.testing.something")]
        results = [job.result(timeout=60) for job in jobs]
        nj.history()
        nj.jobs(order="running")
    finally:
        relay.close()
    assert isinstance(results[0], pd.DataFrame) and isinstance(results[1], np.ndarray)
    # Then every message on the socket was a JSON line, with no pickle in it
    lines = bytes(relay.traffic).splitlines()
    assert len(lines) >= 2 * len(jobs)
    assert PICKLE_PROTO not in relay.traffic and b"pickle" not in relay.traffic.lower()
    for line in lines:
        json.loads(line)
    # And the queue folder holds Parquet, .npy and bytes files, none a pickle
    data = assert_no_pickle_in(project.db.parent)
    assert {p.suffix for p in data} == {".parquet", ".npy"}
    assert len(data) == 5  # two arguments, two frame/array results, one series argument


def forged_job(args: list) -> int:
    """A pending job whose arguments were changed in the file by other means."""
    job_id = int(nj.dispatch("jobs.testing.describe", 0, delay=3600))
    # Opening the file moves the dispatch from the journal into the queue table first.
    change_job(job_id, lambda job: job.evolve(run_at=utcnow()))
    conn = duckdb.connect(str(config.load_settings().db_path))
    try:
        conn.execute("UPDATE queue SET args = ? WHERE id = ?", [json.dumps(args), job_id])
    finally:
        conn.close()
    return job_id


@pytest.mark.parametrize("reference, error", [
    ({"$nj": "ndarray", "file": "../secret.npy"}, "is not a data reference"),
    ({"$nj": "ndarray", "file": "0" * 32 + ".npy", "extra": 1}, "is not a data reference"),
    ({"$nj": "ndarray", "file": "1" * 32 + ".npy"}, "is gone from"),
])
def test_a_forged_reference_is_refused_where_the_attempt_runs(project, start_worker,
                                                              reference, error):
    # Given a job whose stored argument names a file outside the arguments folder (or none)
    job_id = forged_job([reference])
    (datafiles.data_dir(project.db) / "arguments").mkdir(parents=True)
    np.save(datafiles.data_dir(project.db) / "secret.npy", np.arange(3))
    # When a worker runs it, then it fails with the reason and reads nothing
    worker = start_worker()
    with pytest.raises(nj.JobFailedError, match=error):
        nj.result(job_id, timeout=60)
    # And the worker goes on with the next job
    assert nj.dispatch("jobs.testing.ok", 7).result(timeout=60) == 7
    assert worker.proc.poll() is None


def test_a_damaged_argument_file_fails_its_job_alone(project, start_worker):
    # Given a job whose frame argument file was overwritten with garbage before it ran
    job = nj.dispatch("jobs.testing.describe", pd.DataFrame({"v": [1.0]}), delay=3600)
    name = nj.status(job)["args"][0]["file"]
    path = datafiles.data_dir(project.db) / "arguments" / name
    path.write_bytes(b"not parquet at all")
    os.utime(path)
    change_job(job, lambda j: j.evolve(run_at=utcnow()))
    # When the worker runs it, then it fails with the reader's error, and the next job runs
    start_worker()
    with pytest.raises(nj.JobFailedError, match=r"(?i)parquet"):
        job.result(timeout=60)
    assert nj.dispatch("jobs.testing.ok", 8).result(timeout=60) == 8

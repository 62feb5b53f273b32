"""The worker: the process that owns the queue while it runs and runs its jobs (SPEC §12).

``python -m notebookjobs.worker`` (``main``). Its parts, one module each:

- ``main``: the process: ``Worker`` puts the parts together; the command line.
- ``loop``: starts due jobs, settles attempts, cancels, the graceful stop (clock passed in).
- ``state``: the pending and running jobs in memory, in run order.
- ``writer``: the group commit of what changed.
- ``service`` + ``server``: the queue as served to clients over the Unix socket.
- ``executors``: where attempts run: ``local`` (the pool of children) or ``dask``;
  ``procgroup``: killing all an attempt started.
- ``scheduler``: the schedules of whitelist.yaml, ticked.
- ``daemon``: starting, finding and stopping a detached worker.
- ``problems``, ``defaults``: faults reported to ``worker_status()``; timings and limits.

One attempt itself runs in ``notebookjobs.attempt`` (a child's, or ``notebookjobs run``'s).
This ``__init__`` imports nothing: the pool's children import ``executors.local.child`` through
it, and must stay free of the store and the server.
"""

"""One attempt of a job, where it runs: a pool child, a Dask worker's child, or the caller's
own process (``notebookjobs run``). ``runner`` (the target resolved and run), ``capture`` (its
fds 1 and 2 as the attempt's output), ``notebook_runner`` (a notebook run by papermill),
``progress`` (``nj.progress``: what job code reports).

Nothing here reaches the queue: the store, the socket and the worker stay out of the children.
"""

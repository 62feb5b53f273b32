"""The Dask executor (SPEC §18): ``executor`` (our side: submit, wait, stop, lost workers),
``members`` (the cluster's workers, where each attempt goes), ``connect`` (reaching the
cluster), ``task`` (the fixed functions that run on it) and ``child`` (the attempt's child there:
the pool child's loop over JSON lines).
"""

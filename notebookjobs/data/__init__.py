"""A job's data on disk, never pickled: ``datafiles`` (the ``<queue>.data/`` folder: Parquet,
``.npy``, bytes), ``argfiles`` (frames and arrays as arguments), ``results`` (a return value into
what the queue keeps, and back), ``joblog`` (the two job logs).
"""

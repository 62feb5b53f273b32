"""Where the worker's attempts run: ``local`` (a pool of spawned children) or ``dask`` (a Dask
cluster, SPEC §18). ``protocol`` is all the loop sees of either.
"""

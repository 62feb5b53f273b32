"""Job code: what may run and how it is called. ``registry`` (a target name to a callable,
whitelist-checked), ``notebooks`` (an allowed notebook as a target), ``arguments`` (binding and
coercing a call; the ``unique=True`` key), ``discovery`` (the list of jobs), ``hints`` (the
whitelist line that would allow a target).
"""

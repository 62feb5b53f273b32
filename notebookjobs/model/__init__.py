"""The job model: its records (``records``: ``Job``, ``JobSpec``, ``Outcome``, ...), their
statuses, their JSON form (``wire``), the checks of every value that enters (``validate``) and
the pure rules of a job's life: ``transitions`` (the state machine), ``retries``,
``dependencies`` (``after=``) and ``schedule`` (when a schedule's ticks fall).

No I/O and nothing of ours above ``errors``: every other layer builds on it. This ``__init__``
imports nothing, so that importing one module (``statuses`` for the CLI's parser) costs only it.
"""

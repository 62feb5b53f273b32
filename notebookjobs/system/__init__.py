"""What notebookjobs asks of the operating system, in one place: ``files`` (private file modes:
0600 files, 0700 folders, whatever the umask).

The lowest layer: it imports nothing of ours but ``errors``.
"""

"""How a process reaches the queue: the operations a client may ask for, declared once
(``operations``), what each means on an open store (``meaning``), and the one decision of what a
dispatch stores (``admission``). ``queue_client.QueueClient`` chooses the path of each call,
``remote.RemoteQueue`` is the socket's, ``worker.service`` the worker's.
"""

"""The front end in a kernel, above the client: the ``Job`` handle that ``nj.dispatch`` returns
(``handle``), its live line in a notebook (``live``), JupyterLab notifications (``toasts``) and
what these and the dashboard show (``display``: status colours, times as text, messages).
"""

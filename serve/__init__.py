"""The service API (``zhiku serve``): FastAPI over the same ``Assistant`` the UI and the CLI use.

A thin layer like ``ui/``: it authenticates (API keys, ``serve.auth``), limits and counts requests
(``serve.metrics``), logs them (``serve.logs``, and the audit log), and turns requests into calls of
the ``Assistant`` and the knowledge base, answered with the shapes of ``retrieval.payloads`` (the
CLI's ``--json`` contracts). It holds no retrieval logic of its own; access control is the
Assistant's and the knowledge base's, applied with the key's user.
"""

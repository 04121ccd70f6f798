"""The Streamlit app (``zhiku ui``): chat with sources, documents, ingest, graph explorer, evaluation.

The app holds no retrieval or ingest logic of its own: pages call the ``Assistant`` facade and the
knowledge base (accounts and the audit log are ``zhiku.accounts`` and ``zhiku.audit``, shared with the
CLI). What lives here is what only a UI needs: the sign-in page (``app``), feedback storage
(``feedback``), escaped rendering and source cards (``cards``), the per-process context
(``context``) and one module per page under ``views`` whose plain functions the tests call.
Modules here avoid the names of top-level packages (``ingest``, ``eval``, ``kg``): Streamlit puts
this folder on ``sys.path``, where such a name would shadow the real package.
"""

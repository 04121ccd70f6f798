"""The ``ZhikuError`` family: every error a user can act on, in one place.

A ``ZhikuError``'s message is meant for people: it names the file, setting or field and the fix.
The boundaries (CLI, UI, service API) catch this one family and show the message; anything else
is a bug, logged with its traceback and shown as a generic message with a reference id
(``bug_message``), so a defect never looks like a deliberate refusal.
"""
from __future__ import annotations

import logging
import uuid


class ZhikuError(Exception):
    """An error whose message a user can act on."""


class SettingsError(ZhikuError):
    """A setting has a bad value; the message names the setting and where it came from."""


class UsageError(ZhikuError):
    """The command line asks for something impossible (exit code 2)."""


class KnowledgeBaseError(ZhikuError):
    """The knowledge base cannot be used as asked; the message says why and what to do."""


class ModelMismatchError(KnowledgeBaseError):
    """The folder was built with another embedding model than the one configured."""


class KnowledgeBaseBusyError(KnowledgeBaseError):
    """Another ingest (reindex, re-embed) session holds the knowledge base's writer lock."""


class ModelError(ZhikuError):
    """A model cannot be loaded; the message names the model and the fix."""


class LLMError(ModelError):
    """An LLM cannot be loaded or used as configured; the message names the setting and the fix."""


class AclError(ZhikuError):
    """An ACL file is malformed; the message names the file, the entry and the fix."""


class ParseError(ZhikuError):
    """A file cannot be parsed; the message is a one-line reason a person can act on."""


class ClusterError(ZhikuError):
    """A distributed ingest cannot use its Ray cluster (unreachable, no node that can work, every
    worker lost); the message names the address and what to check."""


class QueryError(ZhikuError):
    """The question cannot be searched (empty, or too long); the message says what to do."""


class AssistantError(ZhikuError):
    """A request the assistant cannot serve (unknown document, nothing visible, empty knowledge base)."""


class UnknownEntityError(ZhikuError):
    """A name given by the user matches no entity of the graph (or none the user may see)."""


class AccountError(ZhikuError):
    """A user account cannot be created or changed as asked; the message says why and what to do."""


class SignInLockedError(AccountError):
    """Too many failed sign-ins for one name: the message says when to try again."""


class NotAllowedError(ZhikuError):
    """The user's role or an allow-list setting does not permit the request; the message names the setting."""


class DownloadError(ZhikuError):
    """An original file is not served: access lost, file gone, or changed since ingest (the message says which)."""


class DatasetError(ZhikuError):
    """A dataset file or folder is unusable; the message names the file, the field and the fix."""


class TuneError(ZhikuError):
    """A setting cannot be tuned for this knowledge base (e.g. no questions could be generated from it)."""


#: Errors shown to the user as their message: ours, and the operating system's file errors (whose
#: messages name the path).
USER_ERRORS: tuple[type[BaseException], ...] = (ZhikuError, FileNotFoundError, PermissionError)


def bug_message(log: logging.Logger, where: str, exc: BaseException) -> str:
    """Log ``exc`` with its traceback; return a message for the user with a reference id.

    The reference lets an admin find the traceback in the log from what the user saw.
    """
    ref = uuid.uuid4().hex[:8]
    log.error("unexpected error in %s (reference %s)", where, ref, exc_info=exc)
    return f"something went wrong inside Zhiku (reference {ref}); this is a bug: the log has the details"

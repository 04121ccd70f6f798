"""Structured logs: one JSON object per line, each request's lines carrying its request id.

The request id comes from the caller's ``X-Request-ID`` (when it is a short token) or is made
here; it is echoed in the response header, written in the audit row and in every log line of the
request, so one id ties a client's report, the log and the audit log together.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid

#: The id of the request being served on this task or thread (``-`` outside requests).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("zhiku_request_id", default="-")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_request_id(given: str | None) -> str:
    """The caller's id when it is a safe short token, else a fresh one."""
    return given if given and _SAFE_ID.match(given) else uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...extra fields}``; tracebacks as ``exc``."""

    #: LogRecord attributes that are not extra fields (uvicorn's ``color_message`` repeats the message).
    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                                   "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def log_config(level: str = "INFO") -> dict:
    """A ``logging.config.dictConfig`` for uvicorn and Zhiku: JSON lines on stderr, uvicorn's access log off
    (the service logs each request itself, with its id, user, route and timing)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "zhiku": {"handlers": ["stderr"], "level": level, "propagate": False},
            "serve": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }

"""The error family: user errors speak for themselves at every boundary; anything else is a bug
shown with a reference id (and logged with its traceback), never as if it were intended."""
from __future__ import annotations

import inspect
import logging

import pytest

import zhiku.errors as errors
from zhiku.cli import common
from zhiku.errors import USER_ERRORS, ZhikuError, bug_message


def test_every_error_class_in_the_family_derives_from_zhiku_error():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert len(classes) >= 13
    assert all(issubclass(c, ZhikuError) for c in classes)


def test_a_bug_is_logged_with_its_traceback_and_named_by_a_reference(caplog):
    try:
        raise KeyError("internal detail")
    except KeyError as exc:
        with caplog.at_level(logging.ERROR):
            message = bug_message(logging.getLogger("test"), "a test", exc)
    ref = message.split("reference ")[1].split(")")[0]
    assert "internal detail" not in message and "bug" in message
    assert ref in caplog.text and caplog.records[0].exc_info is not None


class _Args:
    command = "probe"
    verbose = False

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def func(self, args: object) -> int:
        raise self.error


@pytest.mark.parametrize("error, code, shown", [
    (errors.UsageError("use --k 5"), common.USAGE, "use --k 5"),
    (errors.KnowledgeBaseError("no knowledge base at x"), common.FAILED, "no knowledge base at x"),
    (ValueError("list index confusion"), common.FAILED, "reference"),
])
def test_the_cli_shows_user_errors_as_they_are_and_bugs_by_reference(capsys, error, code, shown):
    assert common.run_command(_Args(error)) == code
    err = capsys.readouterr().err
    assert shown in err
    if not isinstance(error, USER_ERRORS):
        assert "list index confusion" not in err.splitlines()[-1]


def test_the_web_app_shows_user_errors_as_they_are_and_bugs_by_reference():
    from ui.context import friendly_message

    assert friendly_message(errors.AssistantError("no document named x")) == "No document named x"
    shown = friendly_message(ValueError("an internal invariant"))
    assert "reference" in shown and "invariant" not in shown


def test_the_service_api_errors_belong_to_the_family_too():
    from serve.app import NotFound
    from serve.auth import RateLimited, Unauthorized
    from serve.openai_api import UnknownModel

    assert all(issubclass(c, ZhikuError) for c in (NotFound, RateLimited, Unauthorized, UnknownModel))

"""Every command's help renders: the contract other tools read first."""
from __future__ import annotations

import pytest


def test_every_command_prints_its_help(capsys):
    """``--help`` of every command and sub-command renders (argparse formats help with ``%``)."""
    import argparse

    from zhiku.cli import build_parser

    def commands(parser: argparse.ArgumentParser, path: list[str]):
        yield path
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from commands(sub, [*path, name])

    for path in commands(build_parser(), []):
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args([*path, "--help"])
        assert done.value.code == 0, path
    assert "10% warm-up" in capsys.readouterr().out

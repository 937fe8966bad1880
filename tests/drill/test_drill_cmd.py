"""`rescue drill`: runs the drill only from a checkout that holds it, and says so otherwise."""

from __future__ import annotations

import subprocess
import sys

from rescue.cli import drill_cmd, main


def test_from_a_checkout_the_command_finds_the_drill():
    top = drill_cmd.checkout()
    assert top is not None
    help_text = subprocess.run(
        [sys.executable, "-m", "rescue", "drill", "--help"], capture_output=True, text=True, cwd=top
    ).stdout
    assert "make drill" in help_text


def test_without_a_checkout_it_explains_and_exits_2(mocker, capsys):
    mocker.patch("rescue.cli.drill_cmd.checkout", return_value=None)
    assert main(["drill"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rescue: drill: ") and "make drill" in err and "\n" not in err.rstrip("\n")


def test_it_passes_the_steps_to_the_drill_and_returns_its_exit_code(mocker):
    run = mocker.patch("rescue.cli.drill_cmd.subprocess.run")
    run.return_value.returncode = 1
    assert main(["drill", "--steps", "smoke"]) == 1
    argv = run.call_args.args[0]
    assert argv[1:] == ["-m", "drill", "--steps", "smoke"]
    assert run.call_args.kwargs["cwd"] == drill_cmd.checkout()

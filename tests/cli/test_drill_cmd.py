"""`rescue drill`: from a checkout it runs `python -m drill` with the steps given and passes its exit code on;
outside a checkout it says where to run it, one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

from rescue.cli import drill_cmd, main


def test_from_a_checkout_it_runs_the_drill_with_the_steps_and_its_exit_code(mocker):
    assert drill_cmd.checkout() is not None  # the tests run from the source tree
    run = mocker.patch("rescue.cli.drill_cmd.subprocess.run", return_value=subprocess.CompletedProcess([], 3))
    assert main(["drill", "--steps", "smoke", "--workdir", "/var/tmp/d"]) == 3
    argv = run.call_args.args[0]
    assert argv == [sys.executable, "-m", "drill", "--steps", "smoke", "--workdir", "/var/tmp/d"]
    assert run.call_args.kwargs["cwd"] == drill_cmd.checkout()


def test_outside_a_checkout_it_explains_in_one_line(mocker, capsys):
    mocker.patch("rescue.cli.drill_cmd.checkout", return_value=None)
    assert main(["drill"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a source checkout" in err and "make drill" in err

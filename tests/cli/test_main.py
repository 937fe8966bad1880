"""The command line's frame: version, help, exit codes and one-line errors."""

import subprocess
import sys

import pytest

from rescue import __version__
from rescue.cli import build_parser, main
from rescue.errors import RefusedError


def run_module(*args):
    return subprocess.run([sys.executable, "-m", "rescue", *args], capture_output=True, text=True)


def test_version_from_a_checkout():
    result = run_module("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"rescue {__version__} (commit ")


def test_help_lists_exit_codes():
    result = run_module("--help")
    assert result.returncode == 0 and "Exit codes" in result.stdout


def test_no_command_is_a_usage_error():
    result = run_module()
    assert result.returncode == 2 and "usage:" in result.stderr


def test_rescue_errors_become_one_line_and_their_exit_code(mocker, capsys):
    def boom(args):
        raise RefusedError("/dev/nst0: tape holds the only good backup; use --force to overwrite")

    parser_factory = mocker.patch("rescue.cli.build_parser")
    parser_factory.return_value.parse_args.return_value = mocker.Mock(func=boom, debug=False)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err == "rescue: /dev/nst0: tape holds the only good backup; use --force to overwrite\n"


def test_os_errors_name_the_path_without_traceback(mocker, capsys):
    def boom(args):
        raise FileNotFoundError(2, "No such file or directory", "/dev/nst9")

    parser_factory = mocker.patch("rescue.cli.build_parser")
    parser_factory.return_value.parse_args.return_value = mocker.Mock(func=boom, debug=False)
    assert main([]) == 2
    assert capsys.readouterr().err == "rescue: /dev/nst9: No such file or directory\n"


TAPE_COMMANDS = [
    ["backup"],
    ["restore"],
    ["verify"],
    ["list"],
    ["label"],
    ["mt", "status"],
    ["catalog", "rebuild"],
]


@pytest.mark.parametrize("command", TAPE_COMMANDS, ids=" ".join)
def test_every_tape_command_shows_and_takes_device_after_the_command(command, capsys):
    with pytest.raises(SystemExit):
        main([*(command[:1] if command[0] == "mt" else command), "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert "-f DEVICE" in usage and "--config FILE" in usage
    args = build_parser().parse_args([*command, "-f", "night.tap", "--config", "/dev/null"])
    assert (args.device, args.config) == ("night.tap", "/dev/null")


def test_device_before_the_command_is_kept_when_none_follows():
    args = build_parser().parse_args(["-f", "night.tap", "label"])
    assert args.device == "night.tap" and args.config is None


@pytest.mark.parametrize(
    "argv, module",
    [
        (["restore", "-C", "/mnt"], "restore_cmd"),
        (["-f", "list", "mt", "status"], "mt_cmd"),  # a device named like a command is the device
        (["--config", "/etc/r.conf", "--debug", "dump-file", "x"], "dump_file_cmd"),
        (["--file=night.tap", "catalog", "rebuild"], "catalog_cmd"),
        (["restre"], None),  # not a command: every parser, so the error lists them all
        (["--help"], None),
        ([], None),
    ],
)
def test_a_run_builds_the_parser_of_its_command_only(argv, module):
    from rescue.cli import _command_module, command_modules

    assert _command_module(argv, command_modules()) == module


def test_a_command_imports_only_its_own_modules():
    probe = (
        "import sys\nfrom rescue.cli import main\n"
        "try:\n    main(['mt', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('rescue.backup', 'rescue.recover'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    typo = run_module("restre")
    assert typo.returncode == 2 and "invalid choice" in typo.stderr and "'recover'" in typo.stderr

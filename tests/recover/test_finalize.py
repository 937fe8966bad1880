"""The finalize stage's file rewrites (with a backup copy), the logs, and the recover state's refusals."""

import io
import json

import pytest

from rescue.errors import RefusedError, RescueError
from rescue.recover import finalize
from rescue.recover.job import RecoverOptions, run_recover


def test_changed_names_are_rewritten_with_the_original_kept_and_never_overwritten(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/fstab").write_text("/dev/vda1 / ext4 defaults 0 1\n")
    (tmp_path / "etc/crypttab").write_text("c UUID=x none luks\n")
    planned = finalize.plan_files(str(tmp_path), {}, {"/dev/vda1": "/dev/nvme0n1p1"})
    assert [rel for rel, _, _ in planned] == ["etc/fstab"]  # crypttab names nothing that changed
    done = finalize.apply_files(str(tmp_path), planned)
    assert (tmp_path / "etc/fstab").read_text() == "/dev/nvme0n1p1 / ext4 defaults 0 1\n"
    assert (tmp_path / "etc/fstab.rescue-orig").read_text() == "/dev/vda1 / ext4 defaults 0 1\n"
    assert done == ["fstab: /dev/vda1 -> /dev/nvme0n1p1 (original kept as /etc/fstab.rescue-orig)"]
    again = finalize.plan_files(str(tmp_path), {}, {"/dev/nvme0n1p1": "/dev/sda1"})
    finalize.apply_files(str(tmp_path), again)
    assert (tmp_path / "etc/fstab.rescue-orig").read_text() == "/dev/vda1 / ext4 defaults 0 1\n"


def test_a_symlinked_etc_in_the_restored_tree_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/fstab").write_text("/dev/vda1 / ext4 defaults 0 1\n")
    (tmp_path / "t").mkdir()
    (tmp_path / "t/etc").symlink_to(tmp_path / "elsewhere")
    planned = [("etc/fstab", "x\n", ["c"])]
    with pytest.raises(RescueError, match="symlink"):
        finalize.apply_files(str(tmp_path / "t"), planned)


def test_logs_are_copied_into_var_log_rescue(tmp_path):
    log = tmp_path / "recover.log"
    log.write_text("$ grub-install\n")
    assert finalize.copy_logs(str(tmp_path / "t"), [str(log), str(tmp_path / "missing.log")]) == [
        "log copied to /var/log/rescue/recover.log"
    ]
    assert (tmp_path / "t/var/log/rescue/recover.log").read_text() == "$ grub-install\n"


def test_summary_lists_each_stage_and_the_total():
    assert finalize.summary({"layout": 5, "restore": 125}) == [
        "  layout      0:05",
        "  restore     2:05",
        "  total       2:10",
    ]


def test_resume_without_a_state_says_there_is_nothing_to_resume(tmp_path):
    opts = RecoverOptions(resume=True, target=str(tmp_path / "t"), state_dir=str(tmp_path / "s"))
    with pytest.raises(RescueError, match="nothing to resume"):
        run_recover(opts, out=io.StringIO())


def test_a_stopped_recover_is_not_started_over_without_resume(tmp_path):
    state = tmp_path / "s"
    state.mkdir()
    data = {"stages": {"layout": {"done": True}, "restore": {"done": True}}, "options": {}, "layout": {}}
    (state / "recover.json").write_text(json.dumps(data))
    opts = RecoverOptions(target=str(tmp_path / "t"), state_dir=str(state), yes=True)
    with pytest.raises(RefusedError, match="stopped before its bootloader stage.*--resume"):
        run_recover(opts, out=io.StringIO())

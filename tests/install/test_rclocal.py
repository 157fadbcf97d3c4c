"""Our /data/rc.local line: added once, before a final exit, removed byte-exactly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from venus_ems.install.rclocal import MARKER, add_hook, hook_line, remove_hook

LINE = hook_line(Path("/data/venus-ems/boot.sh"))


def test_a_missing_file_is_created_executable_and_deleted_again(tmp_path):
    rc = tmp_path / "rc.local"
    result = add_hook(rc, LINE)
    assert result.created
    assert result.changed
    assert rc.read_text() == "#!/bin/sh\n" + LINE
    assert rc.stat().st_mode & 0o111
    assert remove_hook(rc, created=True)
    assert not rc.exists()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("#!/bin/sh\necho a\n", "#!/bin/sh\necho a\n" + LINE),
        ("#!/bin/sh\necho a\nexit 0\n", "#!/bin/sh\necho a\n" + LINE + "exit 0\n"),
        (
            "#!/bin/sh\necho a\nexit 0\n\n# end\n",
            "#!/bin/sh\necho a\n" + LINE + "exit 0\n\n# end\n",
        ),
        ("#!/bin/sh\nexit", "#!/bin/sh\n" + LINE + "exit\n"),
        ("#!/bin/sh\necho no newline", "#!/bin/sh\necho no newline\n" + LINE),
        ("", LINE),
    ],
)
def test_other_lines_are_kept_and_restored_exactly(tmp_path, before, after):
    rc = tmp_path / "rc.local"
    rc.write_text(before)
    rc.chmod(0o750)
    result = add_hook(rc, LINE)
    assert rc.read_text() == after
    assert rc.stat().st_mode & 0o777 == 0o750
    assert not add_hook(rc, LINE).changed  # idempotent
    assert rc.read_text() == after
    assert remove_hook(rc, created=False, added_newline=result.added_newline)
    assert rc.read_text() == before


def test_an_old_form_of_our_line_is_replaced_not_duplicated(tmp_path):
    rc = tmp_path / "rc.local"
    rc.write_text(f"#!/bin/sh\n/old/path/boot.sh  {MARKER}\necho mine\n")
    rc.chmod(0o755)
    assert add_hook(rc, LINE).changed
    assert rc.read_text() == "#!/bin/sh\necho mine\n" + LINE


def test_a_disabled_or_non_executable_rc_local_is_reported(tmp_path):
    rc = tmp_path / "rc.local"
    rc.write_text("#!/bin/sh\n")
    rc.chmod(0o644)
    (tmp_path / "rc.local.disabled").write_text("")
    warnings = " ".join(add_hook(rc, LINE).warnings)
    assert "is not executable" in warnings
    assert "disabled the boot hooks" in warnings
    assert rc.stat().st_mode & 0o777 == 0o644  # we never enable the user's other lines


def test_the_line_runs_the_boot_script_and_never_fails(tmp_path):
    boot = tmp_path / "boot.sh"
    rc = tmp_path / "rc.local"
    add_hook(rc, hook_line(boot))
    assert subprocess.run(["sh", "-e", str(rc)], check=False).returncode == 0  # boot.sh absent
    boot.write_text(f"#!/bin/sh\ntouch {tmp_path / 'ran'}\n")
    boot.chmod(0o755)
    assert subprocess.run(["sh", "-e", str(rc)], check=False).returncode == 0
    assert (tmp_path / "ran").exists()

"""What we read about the device and what we refuse."""

from __future__ import annotations

import pytest

from venus_ems.install.target import Target, VenusVersion, read_target, refusals


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("v3.67", VenusVersion(3, 67)),
        ("v3.80~40", VenusVersion(3, 80, 40)),
        ("3.60", VenusVersion(3, 60)),
        ("v2.94", VenusVersion(2, 94)),
        ("Victron Energy", None),
        ("", None),
    ],
)
def test_version_file_first_line(text, parsed):
    assert VenusVersion.parse(text) == parsed


def test_betas_count_as_their_release():
    assert VenusVersion(3, 70, 12).release >= (3, 70)
    assert str(VenusVersion(3, 80, 40)) == "v3.80~40"


def target(venus="v3.70", uname="armv7l", python=(3, 12)):
    return Target(VenusVersion.parse(venus) if venus else None, "einstein", uname, python)


def test_a_supported_gx_is_accepted():
    assert refusals(target(), arch="armv7hf", python="3.12") == []
    assert refusals(target(uname="aarch64"), arch="aarch64", python="3.12") == []
    assert target("v3.70").apps_layout
    assert not target("v3.67").apps_layout


@pytest.mark.parametrize(
    ("device", "arch", "message"),
    [
        (target(None), "armv7hf", "not a Venus OS device"),
        (target("v3.50"), "armv7hf", "Venus OS v3.50 is too old"),
        (target(uname="aarch64"), "armv7hf", "use the aarch64 bundle"),
        (target(uname="mips"), "armv7hf", "no venus-ems bundle exists for this CPU"),
        (target(python=(3, 8)), "armv7hf", "this device runs Python 3.8"),
    ],
)
def test_refusals_say_why(device, arch, message):
    assert any(message in r for r in refusals(device, arch=arch, python="3.12"))


def test_read_target_from_a_root(tmp_path):
    (tmp_path / "opt" / "victronenergy").mkdir(parents=True)
    (tmp_path / "opt" / "victronenergy" / "version").write_text("v3.80~40\nVictron Energy\n")
    (tmp_path / "etc" / "venus").mkdir(parents=True)
    (tmp_path / "etc" / "venus" / "machine").write_text("einstein\n")
    t = read_target(tmp_path, uname="armv7l")
    assert t.venus == VenusVersion(3, 80, 40)
    assert t.machine == "einstein"
    assert t.arch == "armv7hf"
    assert read_target(tmp_path / "nothing").venus is None

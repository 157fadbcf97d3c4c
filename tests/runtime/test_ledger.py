"""The output ledger: one file per output while a value of ours may be out there."""

from __future__ import annotations

import json

import pytest

from venus_ems.runtime.ledger import OutputLedger, same_value

HUB4 = {"kind": "dbus", "service": "com.victronenergy.hub4", "path": "/Overrides/Setpoint"}


def test_record_update_and_clear(tmp_path):
    ledger = OutputLedger(tmp_path / "outputs", bus_id="boot-1")
    assert ledger.entries() == []
    assert not (tmp_path / "outputs").exists()  # nothing is created until needed
    ledger.record("ess.grid_setpoint", HUB4, -300.0, None, None, at=100.0)
    (entry,) = ledger.entries()
    assert (entry.name, entry.values, entry.safe, entry.bus_id) == (
        "ess.grid_setpoint",
        (-300.0,),
        None,
        "boot-1",
    )
    path = tmp_path / "outputs" / "ess.grid_setpoint.json"
    inode = path.stat().st_ino
    ledger.record("ess.grid_setpoint", HUB4, -250.0, -300.0, None, at=101.0)
    assert path.stat().st_ino == inode  # an update rewrites the file in place
    (entry,) = OutputLedger(tmp_path / "outputs").entries()  # as the next start reads it
    assert entry.values == (-250.0, -300.0)
    assert entry.ours(-300)
    assert entry.ours(-250.0)
    assert not entry.ours(-200.0)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    ledger.clear("ess.grid_setpoint")
    assert ledger.entries() == []
    ledger.clear("ess.grid_setpoint")  # twice is fine


def test_persistent_entries_have_no_bus_id_and_keep_the_safe_value(tmp_path):
    ledger = OutputLedger(tmp_path, bus_id="boot-1")
    target = {"kind": "dbus", "service": "com.victronenergy.settings", "path": "/X"}
    ledger.record("cap", target, 250.0, None, 4000.0, at=1.0, persistent=True)
    (entry,) = ledger.entries()
    assert entry.bus_id is None
    assert entry.safe == 4000.0


def test_tuples_round_trip_and_compare_as_lists(tmp_path):
    ledger = OutputLedger(tmp_path, bus_id="b")
    ledger.record("phases", {"kind": "mode3"}, (100.0, -50.0, 0.0), None, (0.0,) * 3, at=1.0)
    (entry,) = OutputLedger(tmp_path).entries()
    assert entry.ours((100, -50, 0))
    assert same_value(entry.safe, (0.0, 0.0, 0.0))
    assert not same_value(object(), 1.0)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"name": "x", "target": {}, "values": [], "at": 1.0}),
        json.dumps({"name": "x", "target": {}, "values": [{"a": 1}], "at": 1.0}),
        json.dumps({"name": "x", "target": {}, "values": [1.0], "at": "now"}),
        json.dumps({"name": "x", "target": {}, "values": [1.0], "at": 1.0, "bus_id": 5}),
        " " * 70_000,
    ],
)
def test_unusable_files_are_reported_and_removed(tmp_path, caplog, content):
    (tmp_path / "x.json").write_text(content)
    assert OutputLedger(tmp_path).entries() == []
    assert "unusable" in caplog.text
    assert not (tmp_path / "x.json").exists()


def test_names_cannot_escape_the_directory(tmp_path):
    ledger = OutputLedger(tmp_path / "outputs", bus_id="b")
    ledger.record("../../evil", HUB4, 1.0, None, None, at=1.0)
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == [".._.._evil.json"]


def test_an_unwritable_directory_raises_oserror(tmp_path):
    (tmp_path / "outputs").write_text("a file, not a directory")
    ledger = OutputLedger(tmp_path / "outputs", bus_id="b")
    with pytest.raises(OSError):
        ledger.record("x", HUB4, 1.0, None, None, at=1.0)

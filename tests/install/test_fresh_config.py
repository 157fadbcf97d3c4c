"""The config a first install writes: the example, valid, state under /data, private."""

from __future__ import annotations

import shutil

from gx_helpers import REPO

from venus_ems.install.installer import _fresh_config
from venus_ems.install.layout import Layout
from venus_ems.runtime.config import check_config, load_config


def test_fresh_config_is_the_example_with_the_state_directory_set(tmp_path):
    source = tmp_path / "bundle"
    source.mkdir()
    shutil.copyfile(REPO / "config.example.toml", source / "config.example.toml")
    layout = Layout(tmp_path / "root", apps=True)
    _fresh_config(source, layout)
    code, text = check_config(layout.config)
    assert code == 0, text
    assert "nothing (all disabled)" in text
    config = load_config(layout.config)
    assert config.general.state_path() == layout.root / "data" / "venus-ems" / "state"
    assert layout.config.stat().st_mode & 0o777 == 0o600  # it will hold passwords

"""``venus-ems sim --report``: read the config files, run, draw a progress bar on a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ...errors import ConfigError
from ...runtime.config import Config, parse_config
from ..scenarios import list_scenarios
from . import Progress, make_report

__all__ = ["progress_bar", "report_files"]


class _AnyEnv(dict[str, str]):
    """The environment, where every unset variable reads as an empty string."""

    def __contains__(self, key: object) -> bool:
        """Every name is there."""
        return True

    def __missing__(self, key: str) -> str:
        """An unset variable is empty."""
        return ""


def _load(path: str) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror or err}") from None
    # secrets do not matter in a simulation: unset environment variables read as ""
    config, _ = parse_config(text, source=path, env=_AnyEnv(os.environ))
    return config


def report_files(
    scenario: str,
    out_dir: str,
    *,
    config: str | None = None,
    compare: Sequence[str] | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    progress: bool = False,
) -> Path:
    """Run the report for config files (none: Victron's ESS alone); ConfigError on any mistake."""
    if config and compare:
        raise ConfigError("give either --config FILE or --compare FILE_A FILE_B")
    if scenario not in list_scenarios():
        raise ConfigError(f"unknown scenario {scenario!r} (see venus-ems sim --list)")
    duration = 86400.0 if duration_s is None else duration_s
    if not 60.0 <= duration <= 86400.0:
        raise ConfigError(f"--duration {duration:g}: expected 60..86400 s for a report")
    configs: list[tuple[str, Config | None, str]]
    if compare:
        configs = [(label, _load(path), path) for label, path in zip("AB", compare, strict=True)]
    elif config:
        configs = [("this configuration", _load(config), config)]
    else:
        configs = [("Victron ESS alone", None, "no --config: no venus-ems feature")]
    try:
        return make_report(
            scenario,
            configs,
            out_dir,
            start_s=start_s,
            duration_s=duration,
            progress=progress_bar() if progress else None,
        )
    except ValueError as err:  # a feature whose settings do not fit the site
        raise ConfigError(str(err)) from None
    except OSError as err:
        raise ConfigError(f"{out_dir}: {err.strerror or err}") from None


def progress_bar() -> Progress:
    """One line on stderr for all runs: ``A [#####.....]  50 %  B [###.......]  30 %``."""
    state: dict[str, float] = {}

    def show(label: str, done: float) -> None:
        if state.get(label) == done:
            return
        state[label] = done
        width = 24 if len(state) > 1 else 40
        parts = []
        for name, frac in state.items():
            filled = round(frac * width)
            parts.append(
                f"{name[:18]} [{'#' * filled}{'.' * (width - filled)}] {100 * frac:3.0f} %"
            )
        end = "\n" if all(v >= 1.0 for v in state.values()) else ""
        print("\r" + "  ".join(parts), end=end, file=sys.stderr, flush=True)

    return show

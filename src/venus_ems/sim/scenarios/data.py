"""Read the committed scenario data files (CSV with ``#`` header lines and a ``# step_s:`` line)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from ...errors import ConfigError

__all__ = ["DataFile", "read_data"]


@dataclass(frozen=True)
class DataFile:
    """One data file: columns of numbers at a fixed step (s), plus its header text."""

    name: str
    step_s: int
    columns: dict[str, tuple[float, ...]]
    header: str

    def energy_kwh(self, column: str) -> float:
        """Energy in kWh of a power column in W."""
        return sum(self.columns[column]) * self.step_s / 3.6e6


def parse_data(name: str, text: str) -> DataFile:
    """Parse file text; raises ConfigError naming the file and line on anything malformed."""
    header: list[str] = []
    step_s = 0
    names: list[str] | None = None
    rows: list[list[float]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            header.append(line[1:].strip())
            if line[1:].strip().startswith("step_s:"):
                step_s = int(line.split(":", 1)[1])
            continue
        if names is None:
            names = [c.strip() for c in line.split(",")]
            continue
        parts = line.split(",")
        if len(parts) != len(names):
            raise ConfigError(f"{name}:{lineno}: expected {len(names)} values, got {len(parts)}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError as err:
            raise ConfigError(f"{name}:{lineno}: not a number in {line!r}") from err
    if names is None or not rows:
        raise ConfigError(f"{name}: no data rows")
    if step_s <= 0 or 86400 % step_s or len(rows) * step_s != 86400:
        raise ConfigError(f"{name}: step_s {step_s} x {len(rows)} rows is not one day")
    cols = {c: tuple(r[i] for r in rows) for i, c in enumerate(names)}
    return DataFile(name, step_s, cols, "\n".join(header))


def read_data(name: str) -> DataFile:
    """Load ``data/<name>`` from the package; raises ConfigError if missing or malformed."""
    try:
        text = (resources.files(__package__) / "data" / name).read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(f"scenario data file {name!r} not found") from err
    return parse_data(name, text)

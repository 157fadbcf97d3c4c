"""Path specs by unit, as Victron formats them in Text."""

from __future__ import annotations

from ..tree import PathSpec

__all__ = ["HZ", "INT", "KWH", "PCT", "STR", "A", "V", "W"]

W = PathSpec("d", "%.0F W", unit="W")
V = PathSpec("d", "%.1F V", unit="V")
A = PathSpec("d", "%.2F A", unit="A")
HZ = PathSpec("d", "%.2F Hz", unit="Hz")
KWH = PathSpec("d", "%.2F kWh", unit="kWh")
PCT = PathSpec("d", "%.0F %%", unit="%")
INT = PathSpec("i")
STR = PathSpec("s")

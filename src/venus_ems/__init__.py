"""venus-ems: energy management for Victron GX devices."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"

"""``venus-ems run`` with a bug injected into one real feature (fault injection for tests).

``python crash_child.py FEATURE AFTER_S <venus-ems arguments>``: the named feature runs as
configured and raises ``RuntimeError`` — a bug, as a programming error would — as soon as an
output it claims holds its value (mid-command), or ``AFTER_S`` seconds after each start if it
drives none. Everything else is the real command line.
"""

from __future__ import annotations

import sys

import anyio

import venus_ems.daemon
from venus_ems.cli import main


class Crashing:
    """Runs a feature, then raises a bug ``after_s`` seconds after it started."""

    def __init__(self, inner, after_s: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.after_s = after_s
        self.runs = 0

    async def run(self, ctx, *, task_status) -> None:
        self.runs += 1
        async with anyio.create_task_group() as tg:
            await tg.start(self.inner.run, ctx)
            task_status.started()
            with anyio.move_on_after(self.after_s):
                while not self.driving(ctx):
                    await anyio.sleep(0.01)
            raise RuntimeError(f"injected bug (run {self.runs})")

    @staticmethod
    def driving(ctx) -> bool:
        """An output this feature claims holds the value it asked for."""
        return any(
            act.owner == ctx.name and act.value == act.desired and act.last_error is None
            for act in ctx.actuators
        )


def inject(feature: str, after_s: float) -> None:
    create = venus_ems.daemon.create_features

    def create_with_bug(config):
        return [
            (name, Crashing(f, after_s) if name == feature else f) for name, f in create(config)
        ]

    venus_ems.daemon.create_features = create_with_bug


if __name__ == "__main__":
    inject(sys.argv[1], float(sys.argv[2]))
    sys.exit(main(sys.argv[3:]))

"""A private ``dbus-daemon`` for tests, the simulator and the demo (Debian's real daemon)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from ..errors import BusError

__all__ = ["PrivateBus"]

# Limits as on a GX's system bus (dbus-daemon's built-in system defaults), so tests see the
# same backpressure a real device would apply.
_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <limit name="max_incoming_bytes">133169152</limit>
  <limit name="max_outgoing_bytes">133169152</limit>
  <limit name="max_message_size">33554432</limit>
  <limit name="max_replies_per_connection">128</limit>
  <limit name="reply_timeout">25000</limit>
</busconfig>
"""


class PrivateBus:
    """Start ``dbus-daemon`` on a unix socket in a temporary directory; ``address`` to connect."""

    def __init__(self, directory: Path | None = None) -> None:
        """Prepare (not start) a daemon; ``directory`` holds its socket and config."""
        self._own_dir = directory is None
        self.directory = (
            Path(tempfile.mkdtemp(prefix="venus-ems-bus-")) if directory is None else directory
        )
        self.address = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start the daemon and return its address; BusError if dbus-daemon is missing or fails."""
        exe = shutil.which("dbus-daemon")
        if exe is None:
            raise BusError("dbus-daemon is not installed (apt-get install dbus-daemon)")
        sock = self.directory / "bus"
        conf = self.directory / "bus.conf"
        conf.write_text(_CONFIG.format(socket=sock))
        self._proc = subprocess.Popen(
            [exe, f"--config-file={conf}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if not line:
            self.stop()
            raise BusError("dbus-daemon did not start")
        self.address = line
        return line

    def stop(self) -> None:
        """Stop the daemon and remove its directory if we created it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        """Process id of the running daemon."""
        return None if self._proc is None else self._proc.pid

    def __enter__(self) -> PrivateBus:
        """Start on entry."""
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop on exit."""
        self.stop()

"""Where the daemon's memory goes: RSS attributed to each import, then to what is not imports.

Runs `venus-ems run` (as bench/daemon_bench.py does: same devices, same configurations, the
bundle launcher by default) with an import hook that reads the process's RSS before and after
each module executes and charges the difference to that module alone (children are subtracted).
After ``--seconds`` the child writes the table and exits through SIGTERM. Rows are grouped by
top-level package; "Python at start" is the interpreter before the first import of ours, "not
imports" is the rest of the RSS: the daemon's own objects, buffers and feature state.

    python bench/import_cost.py [--only idle|meters|wave1] [--seconds 15] [--mode bundle|venv]

Per-import deltas are a measurement, not an accounting identity: pages touched by one import
(a malloc arena growing, a shared library's relocations) are charged to whoever touched them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
HOOK = Path(__file__).resolve().parent / "import_hook.py"

GROUPS = {
    "pydantic": ("pydantic", "pydantic_core", "annotated_types", "typing_inspection"),
    "aiohttp and helpers": (
        "aiohttp",
        "multidict",
        "yarl",
        "frozenlist",
        "propcache",
        "aiosignal",
        "aiohappyeyeballs",
        "attr",
        "attrs",
        "idna",
    ),
    "dbus-fast": ("dbus_fast",),
    "MQTT (aiomqtt, paho)": ("aiomqtt", "paho"),
    "anyio, typing_extensions": ("anyio", "typing_extensions", "sniffio"),
    "asyncio, ssl, OpenSSL": (
        "asyncio",
        "ssl",
        "_ssl",
        "_hashlib",
        "hashlib",
        "concurrent",
        "selectors",
        "socket",
        "subprocess",
        "_asyncio",
        "select",
        "_socket",
    ),
}


def table(data: dict) -> list[tuple[str, float]]:
    """(row, MB) in the order printed; the rows add up to VmRSS."""
    rows: dict[str, float] = {}
    for module, mb in data["cost"].items():
        top = module.split(".")[0]
        if top == "venus_ems":
            parts = module.split(".")
            key = "venus_ems." + (parts[1] if len(parts) > 1 else "__init__")
            if key == "venus_ems.runtime" and len(parts) > 2 and parts[2] == "config":
                key = "venus_ems.runtime.config (pydantic models)"
        else:
            key = next((g for g, tops in GROUPS.items() if top in tops), "other standard library")
        rows[key] = rows.get(key, 0.0) + mb
    total = data["status"]["VmRSS"]
    imports = sum(data["cost"].values())
    out = [("Python at start (interpreter, libc, encodings)", data["start"])]
    out += sorted(rows.items(), key=lambda kv: -kv[1])
    out.append(("not imports (objects, buffers, feature state)", total - data["start"] - imports))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--mode", choices=("bundle", "venv"), default="bundle")
    ap.add_argument("--only", action="append", choices=("idle", "meters", "wave1"))
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration (median)")
    a = ap.parse_args()
    import daemon_bench as db  # noqa: PLC0415

    print(f"# import_cost on {os.uname().nodename}, {time.strftime('%Y-%m-%d')}, mode {a.mode}")
    with db.Lab() as lab:
        bundle = db.unpacked_bundle(lab.tmp, pure_dbus=False) if a.mode == "bundle" else None
        for kind in a.only or ("idle", "wave1"):
            runs = [run_once(a, lab, bundle, kind) for _ in range(a.repeat)]
            rows: dict[str, list[float]] = {}
            for data in runs:
                for row, mb in table(data):
                    rows.setdefault(row, []).append(mb)
            rss = statistics.median(d["status"]["VmRSS"] for d in runs)
            print(f"\n## {db.TITLES[kind]}: RSS {rss:.1f} MB (median of {a.repeat})")
            for row, values in rows.items():
                spread = f" (runs: {' '.join(f'{v:.1f}' for v in values)})" if a.repeat > 1 else ""
                print(f"{statistics.median(values):6.1f} MB  {row}{spread}")
            last = runs[-1]
            top = sorted(last["cost"].items(), key=lambda kv: -kv[1])[:10]
            print("largest single imports: " + ", ".join(f"{m} {v:.1f}" for m, v in top))
            grouped = {m for tops in GROUPS.values() for m in tops}
            std: dict[str, float] = {}
            for module, mb in last["cost"].items():
                head = module.split(".")[0]
                if head in sys.stdlib_module_names and head not in grouped:
                    std[head] = std.get(head, 0.0) + mb
            biggest = sorted(std.items(), key=lambda kv: -kv[1])[:14]
            print("standard library: " + ", ".join(f"{m} {v:.1f}" for m, v in biggest))
            maps = sorted(last["maps"].items(), key=lambda kv: -kv[1])[:10]
            print(
                "resident by mapping: "
                + ", ".join(f"{Path(m).name if m.startswith('/') else m} {v:.1f}" for m, v in maps)
            )


def run_once(a: argparse.Namespace, lab, bundle: Path | None, kind: str) -> dict:
    """One daemon run with the import hook; its report."""
    dump = Path(tempfile.mkdtemp()) / "cost.json"
    if bundle is not None:
        base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
        cmd = [base, "-I", "-S", str(HOOK), str(dump), str(a.seconds), str(bundle / "launch.py")]
    else:
        cmd = [sys.executable, str(HOOK), str(dump), str(a.seconds)]
    env = {**os.environ, "VENUS_EMS_SITE_DIRS": ""}
    args = ["run", "--config", str(lab.config(kind)), "--bus", lab.bus.address]
    done = subprocess.run(
        [*cmd, *args], env=env, check=False, capture_output=True, text=True, timeout=120
    )
    if not dump.exists():
        sys.exit(f"the daemon did not report: {done.stderr[-3000:]}")
    return json.loads(dump.read_text())


if __name__ == "__main__":
    main()

"""D-Bus layer benchmark: our Service/Monitor against a bare dbus-fast handler, in one run.

Every figure is measured in this invocation on a private dbus-daemon; each role runs in its own
process so CPU time is attributed to the right side. Prints ratios and CPU µs per operation.

    python bench/dbus_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dbus_fast import Message, MessageType, NameFlag, Variant

from venus_ems.venus import Identity, PathSpec, Service, open_monitor
from venus_ems.venus.bus import connect
from venus_ems.venus.daemon import PrivateBus

NAME = "com.victronenergy.bench"
D = PathSpec("d", "%.1F W")


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def paths(n: int) -> list[str]:
    return [f"/Bench/{i // 10}/P{i % 10}" for i in range(n)]


def say(**kw: Any) -> None:
    print(json.dumps(kw), flush=True)


async def read_line() -> str:
    return await anyio.to_thread.run_sync(sys.stdin.readline)


# ------------------------------------------------------------------ roles (child processes)


async def role_server_ours(address: str, n: int, name: str) -> None:
    gc.collect()
    tracemalloc.start()
    traced0 = tracemalloc.get_traced_memory()[0]
    svc = Service(name, identity=Identity("bench"), device_instance=1, address=address)
    for i, p in enumerate(paths(n)):
        svc.add_path(p, float(i), D)
    async with svc:
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - traced0
        tracemalloc.stop()
        say(ready=True, rss_kb=rss_kb(), traced=traced)
        await read_line()


async def role_server_bare(address: str, n: int, name: str) -> None:
    """A plain dbus-fast service: one message handler answering GetValue from a dict."""
    bus = await connect(address)
    values = {p: float(i) for i, p in enumerate(paths(n))}

    def handler(msg: Message) -> Message | None:
        if msg.message_type is MessageType.METHOD_CALL and msg.member == "GetValue":
            v = values.get(msg.path)
            if v is not None:
                return Message.new_method_return(msg, "v", [Variant("d", v)])
        return None

    bus.add_message_handler(handler)
    await bus.request_name(name, NameFlag.DO_NOT_QUEUE)
    say(ready=True)
    await read_line()
    bus.disconnect()


async def role_publisher(address: str, n: int, mode: str, total: int, name: str) -> None:
    svc = Service(name, identity=Identity("bench"), device_instance=1, address=address)
    ps = paths(n)
    for p in ps:
        svc.add_path(p, 0.0, D)
    svc.add_path("/Bench/Done", 0, PathSpec("i"))
    async with svc:
        say(ready=True)
        await read_line()
        c0, t0 = cpu(), time.perf_counter()
        sent = 0
        value = 0.0
        while sent < total:
            value += 1.0
            if mode == "batched":
                with svc.batch():
                    for p in ps:
                        svc[p] = value
            else:
                for p in ps:
                    svc[p] = value
            sent += n
            if svc._writer is not None and svc._writer.congested:
                await svc.drained()
            elif sent % (n * 20) == 0:
                await anyio.sleep(0)
        svc["/Bench/Done"] = 1
        await svc._writer.drained(empty=True)  # type: ignore[union-attr]
        c1, t1 = cpu(), time.perf_counter()
        say(cpu_s=c1 - c0, wall_s=t1 - t0, sent=sent, last=value, rss_kb=rss_kb())
        await read_line()


async def role_monitor(address: str, services: int) -> None:
    watch = {"com.victronenergy.bench": None}
    t0 = time.perf_counter()
    async with open_monitor(address, watch=watch) as mon:
        while len(mon.services()) < services:
            await anyio.sleep(0.001)
        scan_ms = (time.perf_counter() - t0) * 1e3
        callbacks = 0
        batches = 0
        done = anyio.Event()
        max_rss = rss_kb()

        def on_change(changes: Any) -> None:
            nonlocal callbacks, batches, max_rss
            callbacks += len(changes)
            batches += 1
            if batches % 64 == 0:
                max_rss = max(max_rss, rss_kb())
            for (_svc, path), value in changes.items():
                if path == "/Bench/Done" and value == 1:
                    done.set()

        mon.on_change(on_change)
        say(ready=True, scan_ms=scan_ms, rss_kb=rss_kb(), services=len(mon.services()))
        await read_line()
        c0 = cpu()
        u0 = mon.updates_received
        await done.wait()
        c1 = cpu()
        finals = {
            p: v for s in mon.services() for p, v in s.values.items() if p.startswith("/Bench/")
        }
        say(
            cpu_s=c1 - c0,
            updates=mon.updates_received - u0,
            callbacks=callbacks,
            batches=batches,
            finals=len({v for p, v in finals.items() if p != "/Bench/Done"}),
            last=max(v for p, v in finals.items() if p != "/Bench/Done"),
            rss_kb=max_rss,
        )
        await read_line()


async def role_watch_many(address: str, services: int) -> None:
    """Cold discovery + scan in a fresh process, warm repeats, and the memory a scan retains."""
    watch = {"com.victronenergy.bench": None}
    times = []
    for _ in range(6):
        t0 = time.perf_counter()
        async with open_monitor(address, watch=watch) as mon:
            times.append((time.perf_counter() - t0) * 1e3)
            assert len(mon.services()) == services
    # memory: everything warmed up; compare a monitor that watches nothing with one that scans
    async with open_monitor(address, watch={"com.victronenergy.none": None}):
        gc.collect()
        rss0 = rss_kb()
    tracemalloc.start()
    gc.collect()
    traced0 = tracemalloc.get_traced_memory()[0]
    rss1 = rss_kb()
    async with open_monitor(address, watch=watch) as mon:
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - traced0
        rss = rss_kb()
        values = sum(len(s.values) for s in mon.services())
    tracemalloc.stop()
    say(
        ready=True,
        cold_ms=times[0],
        warm_ms=sorted(times[1:])[2],
        rss_kb=rss,
        rss_delta_kb=rss - min(rss0, rss1),
        traced=traced,
        values=values,
    )
    await read_line()


# ------------------------------------------------------------------ orchestration


class Child:
    def __init__(self, address: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--role", *args, "--address", address],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {self.proc.args} died")
        return json.loads(line)  # type: ignore[no-any-return]

    def send(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        try:
            self.send()
        except BrokenPipeError:
            pass
        self.proc.wait(10)


async def round_trips(address: str, name: str, count: int, inflight: int) -> float:
    """Mean wall µs per GetValue round trip (client in this process)."""
    bus = await connect(address)
    ps = paths(100)
    per_task = count // inflight

    async def worker(k: int) -> None:
        for i in range(per_task):
            msg = Message(
                destination=name,
                path=ps[(i + k) % 100],
                interface="com.victronenergy.BusItem",
                member="GetValue",
            )
            reply = await bus.call(msg)
            assert reply.message_type is MessageType.METHOD_RETURN

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for k in range(inflight):
            tg.start_soon(worker, k)
    dt = time.perf_counter() - t0
    bus.disconnect()
    return dt / (per_task * inflight) * 1e6


def bench_round_trips(address: str, count: int) -> list[str]:
    ours = Child(address, "server-ours", "100", NAME + ".ours")
    bare = Child(address, "server-bare", "100", NAME + ".bare")
    ours.read()
    bare.read()
    out = []
    for inflight in (1, 32):
        res: dict[str, list[float]] = {"ours": [], "bare": []}
        for _ in range(3):  # interleave to share any drift
            for who in ("bare", "ours"):
                res[who].append(anyio.run(round_trips, address, f"{NAME}.{who}", count, inflight))
        o, b = min(res["ours"]), min(res["bare"])
        out.append(
            f"GetValue round trip, {inflight:2d} in flight: ours {o:6.1f} µs, bare dbus-fast "
            f"{b:6.1f} µs, ratio {o / b:.2f} (target <= 1.10)"
        )
    ours.stop()
    bare.stop()
    return out


def bench_fanout(address: str, mode: str, total: int) -> list[str]:
    pub = Child(address, "publisher", "100", mode, str(total), NAME + ".pub")
    pub.read()
    mon = Child(address, "monitor", "1")
    mon.read()
    mon.send()
    time.sleep(0.2)
    pub.send()
    p = pub.read()
    m = mon.read()
    pub.stop()
    mon.stop()
    sent = p["sent"]
    lost = sent + 1 - m["updates"]  # +1: the /Bench/Done marker
    per_pub = p["cpu_s"] / sent * 1e6
    per_mon = m["cpu_s"] / max(m["updates"], 1) * 1e6
    rate = sent / p["wall_s"]
    kind = "ItemsChanged (100/batch)" if mode == "batched" else "PropertiesChanged"
    targets = (5, 4) if mode == "batched" else (13, 10)
    correct = m["finals"] == 1 and m["last"] == p["last"]
    return [
        f"fan-out {kind}: {sent} updates at {rate / 1e3:.0f}k/s; publisher {per_pub:.2f} µs CPU "
        f"(target <= {targets[0]}), monitor {per_mon:.2f} µs CPU (target <= {targets[1]}); "
        f"lost {lost}; final values correct: {correct}; callbacks {m['callbacks']} in "
        f"{m['batches']} batches; monitor peak RSS {m['rss_kb'] / 1024:.1f} MB"
    ]


def bench_memory_and_scan(address: str) -> list[str]:
    big = Child(address, "server-ours", "1000", NAME + ".big")
    b = big.read()
    small = Child(address, "server-ours", "0", NAME + ".small")
    s = small.read()
    big.stop()
    small.stop()
    # 41 declared + 9 mandatory paths = 50 per service
    services = [Child(address, "server-ours", "41", f"{NAME}.s{i}") for i in range(20)]
    for c in services:
        c.read()
    watchers = [Child(address, "watch-many", "20") for _ in range(3)]
    w = [c.read() for c in watchers]
    for c in watchers:
        c.stop()
    for c in services:
        c.stop()
    per_path = (b["traced"] - s["traced"]) / 1000
    values = w[0]["values"]
    mid = sorted(w, key=lambda x: x["traced"])[1]
    cold = sorted(x["cold_ms"] for x in w)[1]
    warm = sorted(x["warm_ms"] for x in w)[1]
    return [
        f"service with 1000 paths: RSS {b['rss_kb'] / 1024:.1f} MB; {per_path:.0f} B per path "
        f"allocated (tracemalloc, 1000 vs 0 paths; target <= 1024)",
        f"monitor watching 20 services x {values // 20} paths: RSS {mid['rss_kb'] / 1024:.1f} MB, "
        f"{mid['traced'] / values:.0f} B per value retained (tracemalloc), RSS grew "
        f"{mid['rss_delta_kb'] * 1024 / values:.0f} B per value (target <= 512)",
        f"connect + discover + scan 20 x {values // 20}: {warm:.1f} ms warm, {cold:.1f} ms in a "
        f"fresh process (target <= 15)",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role")
    ap.add_argument("--address")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    if a.role:
        fn = {
            "server-ours": lambda: role_server_ours(a.address, int(a.args[0]), a.args[1]),
            "server-bare": lambda: role_server_bare(a.address, int(a.args[0]), a.args[1]),
            "publisher": lambda: role_publisher(
                a.address, int(a.args[0]), a.args[1], int(a.args[2]), a.args[3]
            ),
            "monitor": lambda: role_monitor(a.address, int(a.args[0])),
            "watch-many": lambda: role_watch_many(a.address, int(a.args[0])),
        }[a.role]
        anyio.run(fn)
        return
    scale = 1 if not a.quick else 10
    print(
        f"# dbus_bench on {os.uname().nodename}, {time.strftime('%Y-%m-%d')}, "
        f"Python {sys.version.split()[0]}"
    )
    with PrivateBus() as bus:
        for line in bench_round_trips(bus.address, 20000 // scale):
            print(line)
        for line in bench_fanout(bus.address, "props", 200_000 // scale):
            print(line)
        for line in bench_fanout(bus.address, "batched", 2_000_000 // scale):
            print(line)
        for line in bench_memory_and_scan(bus.address):
            print(line)


if __name__ == "__main__":
    main()

# ruff: noqa: PLC0415 - imports are deferred on purpose: the start is measured without them
"""Child of bench/import_cost.py: ``python import_hook.py DUMP SECONDS [launch.py] ARGS``.

Imports as little as it can (json, signal, threading, time: the report thread must not import
while the daemon does) before it measures the interpreter's starting RSS, then charges
each module's execution to it (its children subtracted) and runs venus-ems.
"""

import json
import os
import signal
import sys
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> float:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


START = rss()
stack = []
cost = {}


class Timed:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        stack.append(0.0)
        before = rss()
        try:
            self.loader.exec_module(module)
        finally:
            spent = rss() - before
            cost[module.__name__] = spent - stack.pop()
            if stack:
                stack[-1] += spent


class Finder:
    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = Timed(spec.loader)
                return spec
        return None


def report(dump, seconds):
    time.sleep(seconds)
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                status[key] = int(value.split()[0]) / 1024
    files = {}
    name = None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and not line.startswith(("Rss", "Size")):
                name = head[5] if len(head) > 5 else "[anon]"
            elif head[0] == "Rss:":
                files[name] = files.get(name, 0) + int(head[1]) / 1024
    with open(dump, "w") as f:
        json.dump({"start": START, "cost": cost, "status": status, "maps": files}, f)
    os.kill(os.getpid(), signal.SIGTERM)


def main():
    dump, seconds, *argv = sys.argv[1:]
    sys.meta_path.insert(0, Finder())
    threading.Thread(target=report, args=(dump, float(seconds)), daemon=True).start()
    if argv and argv[0].endswith("launch.py"):
        import runpy

        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")
    else:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
        from venus_ems.cli import main as cli

        sys.exit(cli(argv))


main()

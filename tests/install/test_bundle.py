"""The release bundle: contents, manifest, launcher, reproducibility, refusals, GX wheels."""

from __future__ import annotations

import ast
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import pytest
import tomllib
from gx_helpers import REPO, clean_python, daemon_env, make_gx_root
from packaging.requirements import Requirement

from venus_ems.install import manifest
from venus_ems.install.bundle import MAX_BYTES, build
from venus_ems.install.wheels import GX_PLATFORMS, normalize, read_pins
from venus_ems.launch import accepts, version_key


def unpack(run_file: Path, into: Path) -> Path:
    out = subprocess.run(
        ["sh", str(run_file), "--extract", str(into)], capture_output=True, text=True, check=True
    )
    assert "unpacked into" in out.stdout
    (top,) = into.iterdir()
    return top


def launch_check(top: Path, site_dirs: str, *, isolate_network: bool = False):
    cmd = [clean_python(), "-I", "-S", str(top / "launch.py"), "--check"]
    if isolate_network and shutil.which("unshare"):
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            cmd = ["unshare", "-rn", *cmd]
    env = daemon_env(VENUS_EMS_SITE_DIRS=site_dirs)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=300)


def test_every_module_imports_from_the_bundle_alone(bundles, tmp_path):
    top = unpack(bundles["v1"], tmp_path)
    bare = subprocess.run(
        [clean_python(), "-I", "-S", "-c", "import pydantic"], capture_output=True, check=False
    )
    assert bare.returncode != 0  # the interpreter has nothing of ours: only the bundle can help
    out = launch_check(top, "", isolate_network=True)
    assert out.returncode == 0, out.stderr
    assert "every module imports (aiohttp bundled 3.14.5, dbus-fast bundled 5.2.0)" in out.stdout
    # dbus-fast goes pure Python as on armv7 (PyPI has no armv7l wheel): nothing compiled
    assert list((top / "groups" / "dbus-fast").rglob("*.so")) == []
    assert (top / "groups" / "dbus-fast" / "dbus_fast" / "message.py").is_file()


def test_the_image_packages_are_used_when_new_enough(bundles, tmp_path):
    top = unpack(bundles["v1"], tmp_path)
    site = sysconfig.get_paths()["purelib"]  # this virtualenv stands in for the image
    out = launch_check(top, site)
    assert out.returncode == 0, out.stderr
    assert "aiohttp image 3.14.5, dbus-fast image 5.2.0" in out.stdout


@pytest.mark.parametrize(
    ("image", "minimum", "bundled", "use"),
    [
        ("2.21.1", "2.24", "5.2.0", False),  # Venus OS 3.60-3.80 ship dbus-fast 2.21.1
        ("3.9.4", "3.14", "3.14.5", False),  # and aiohttp 3.9.4
        ("5.2.0", "2.24", "5.2.0", True),
        ("5.9.1", "2.24", "5.2.0", True),
        ("6.0.0", "2.24", "5.2.0", False),  # a major version we never tested
        ("3.14", "3.14", "3.14.5", True),
        ("", "3.14", "3.14.5", False),
        ("3.15.0rc1", "3.14", "3.14.5", True),
    ],
)
def test_which_image_versions_are_accepted(image, minimum, bundled, use):
    assert accepts(image, minimum=minimum, bundled=bundled) is use


def test_version_key():
    assert version_key("3.9.4") == (3, 9, 4)
    assert version_key("2.0rc1") == (2, 0)
    assert version_key("v1") == ()


def test_manifest_finds_changed_missing_and_extra_files(bundles, tmp_path):
    top = unpack(bundles["v1"], tmp_path)
    assert manifest.verify(top) == []
    (top / "lib" / "venus_ems" / "daemon.py").write_text("# changed\n")
    (top / "lib" / "venus_ems" / "errors.py").unlink()
    (top / "lib" / "extra.py").write_text("")
    (top / "lib" / "venus_ems" / "__pycache__").mkdir(exist_ok=True)
    (top / "lib" / "venus_ems" / "__pycache__" / "x.pyc").write_bytes(b"")  # caches are fine
    assert sorted(manifest.verify(top)) == [
        "lib/extra.py: not in the manifest",
        "lib/venus_ems/daemon.py: checksum mismatch",
        "lib/venus_ems/errors.py: missing",
    ]
    out = install_sh(top, make_gx_root(tmp_path / "gx"))
    assert out.returncode == 1
    assert "the bundle is damaged" in out.stderr


def test_the_archive_is_reproducible(bundles, tmp_path):
    again = build("host", tmp_path, repo=REPO, from_env=True, compresslevel=1, say=lambda _: None)
    assert again.read_bytes() == bundles["v1"].read_bytes()


def install_sh(top: Path, root: Path, *args: str):
    return subprocess.run(
        ["sh", str(top / "install.sh"), "--root", str(root), "--python", clean_python(), *args],
        capture_output=True,
        text=True,
        env=daemon_env(),
        check=False,
        timeout=60,
    )


def edit_platform(top: Path, key: str, value: str) -> None:
    path = top / "PLATFORM"
    path.write_text(re.sub(rf"(?m)^{key}=.*$", f"{key}={value}", path.read_text()))


@pytest.mark.parametrize(
    ("venus", "edit", "message"),
    [
        (None, None, "this is not a Venus OS device"),
        ("v3.50", None, "Venus OS v3.50 is too old: venus-ems needs v3.60 or later"),
        ("v2.94~3", None, "Venus OS v2.94~3 is too old"),
        ("v3.70", ("arch", "armv7hf"), "this bundle is for armv7hf, this device is x86_64"),
        (
            "v3.70",
            ("python", "3.12" if sys.version_info[:2] != (3, 12) else "3.13"),
            "this bundle is built for Python 3.1",
        ),
    ],
)
def test_install_refuses_what_it_cannot_run_on(bundles, tmp_path, venus, edit, message):
    if os.uname().machine != "x86_64":
        pytest.skip("the messages below name x86_64")
    top = unpack(bundles["v1"], tmp_path / "b")
    root = make_gx_root(tmp_path / "gx", venus or "v3.70")
    if venus is None:
        (root / "opt" / "victronenergy" / "version").unlink()
    if edit:
        edit_platform(top, *edit)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    out = install_sh(top, root)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "venus-ems install: refused:" in out.stderr
    assert message in out.stderr
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written


def test_pins_are_within_pyproject_ranges():
    pins = {p.name: p.version for p in read_pins(REPO / "release" / "requirements-gx.txt")}
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = GX_PLATFORMS["aarch64"].marker_env()
    for dep in map(Requirement, deps):
        if dep.marker is not None and not dep.marker.evaluate(env):
            continue
        assert normalize(dep.name) in pins, f"{dep.name} is not pinned"
        assert dep.specifier.contains(pins[normalize(dep.name)]), f"{dep} vs pin"


# ------------------------------------------------------------------- the GX bundles (network)

ELF = {
    "armv7hf": (1, 40, "cpython-312-arm-linux-gnueabihf"),
    "aarch64": (2, 183, "cpython-312-aarch64-linux-gnu"),
}


def elf_header(path: Path) -> tuple[int, int, int]:
    """(class 1=32/2=64 bit, machine, flags) of an ELF file."""
    data = path.read_bytes()[:64]
    assert data[:4] == b"\x7fELF", path
    klass = data[4]
    machine = struct.unpack_from("<H", data, 18)[0]
    flags = struct.unpack_from("<I", data, 36 if klass == 1 else 48)[0]
    return klass, machine, flags


def imported_tops(source: str) -> set[str]:
    """Top-level modules imported on Python 3.12 (version checks and TYPE_CHECKING applied)."""
    env = {"sys": types.SimpleNamespace(version_info=(3, 12, 0)), "TYPE_CHECKING": False}
    tops: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and (
                "version_info" in ast.unparse(node.test)
                or "TYPE_CHECKING" in ast.unparse(node.test)
            ):
                taken = eval(compile(ast.Expression(node.test), "<test>", "eval"), env)
                visit(node.body if taken else node.orelse)
                continue
            if isinstance(node, ast.Import):
                tops.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops.add(node.module.split(".")[0])
            for field in ("body", "orelse", "finalbody", "handlers"):
                visit(getattr(node, field, []) or [])

    visit(ast.parse(source).body)
    return tops


def pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def gx_bundles(tmp_path_factory) -> dict[str, Path]:
    """The real bundles, wheels from PyPI (cached in ~/.cache/venus-ems/wheelhouse)."""
    house = Path.home() / ".cache" / "venus-ems" / "wheelhouse"
    cached = all(any((house / f"cp312-{a}").glob("*.whl")) for a in GX_PLATFORMS)
    if not cached and not pypi_reachable():
        pytest.skip("PyPI cannot be reached and no wheelhouse is cached")
    out = tmp_path_factory.mktemp("gx")
    return {a: build(a, out, repo=REPO, wheelhouse=house, say=lambda _: None) for a in GX_PLATFORMS}


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(GX_PLATFORMS))
def test_gx_bundle(gx_bundles, tmp_path, arch):
    run_file = gx_bundles[arch]
    assert run_file.stat().st_size <= MAX_BYTES
    top = unpack(run_file, tmp_path)
    assert manifest.verify(top) == []
    assert (top / "PLATFORM").read_text() == f"arch={arch}\npython=3.12\n"
    klass, machine, soabi = ELF[arch]
    compiled = sorted(top.rglob("*.so"))
    assert compiled
    for so in compiled:
        assert so.name.endswith((f".{soabi}.so", ".abi3.so")), so.name
        k, m, flags = elf_header(so)
        assert (k, m) == (klass, machine), so.name
        if arch == "armv7hf":
            assert flags & 0x400, f"{so.name} is not hard-float"  # EF_ARM_ABI_FLOAT_HARD
    dbus_compiled = list((top / "groups" / "dbus-fast").rglob("*.so"))
    assert bool(dbus_compiled) is (arch == "aarch64")  # armv7: PyPI has no wheel, pure Python
    # every import in venus_ems resolves to the standard library or to the bundle itself
    shipped = {
        p.name.removesuffix(".py").split(".")[0]
        for d in [top / "lib", *(top / "groups").iterdir()]
        for p in d.iterdir()
    }
    for py in (top / "lib" / "venus_ems").rglob("*.py"):
        missing = imported_tops(py.read_text()) - shipped - set(sys.stdlib_module_names)
        assert not missing, f"{py.relative_to(top)} imports {missing}"


def test_venus_ems_install_file_runs_the_files_own_installer(bundles, tmp_path):
    root = make_gx_root(tmp_path / "gx", "v3.50")
    out = subprocess.run(
        [sys.executable, "-m", "venus_ems.cli", "install", str(bundles["v1"]), "--root", str(root)],
        capture_output=True,
        text=True,
        env=daemon_env(),
        check=False,
        timeout=60,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Venus OS v3.50 is too old" in out.stderr  # said by the bundle's own install.sh

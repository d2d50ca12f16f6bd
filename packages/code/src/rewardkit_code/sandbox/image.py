"""Build a sandbox image offline from this machine's own Python interpreter.

No registry needed: the image is `FROM scratch` plus a minimal root file system made of
the interpreter binary, its standard library (without site-packages, tests, tkinter,
idlelib, ensurepip), the shared libraries it and its extension modules link to (found
with `ldd`, each stored at the same absolute path), and an /etc/passwd with `nobody`.
The interpreter keeps its host path, so its compiled-in prefix and rpath stay valid;
`/usr/local/bin/python3` links to it. Only what the runner and standard-library programs
need: tests and untrusted programs run with the standard library only.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from rewardkit_code.sandbox.docker_backend import BUILT_IMAGE, docker_client

SKIP_DIRS = {
    "site-packages",
    "dist-packages",
    "test",
    "tests",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "__phello__",
}
SKIP_EXTENSIONS = ("_tkinter",)

DOCKERFILE = """FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8
USER 65534:65534
WORKDIR /work
CMD ["python3"]
"""


def interpreter_layout(python: str) -> dict[str, str]:
    """Executable, stdlib and lib-dynload paths of an interpreter (asks the interpreter)."""
    code = (
        "import json, sys, sysconfig; p = sysconfig.get_paths(); "
        "print(json.dumps({'executable': sys.executable, 'base': sys.base_prefix, "
        "'stdlib': p['stdlib'], 'dynload': sysconfig.get_config_var('DESTSHARED') or '', "
        "'version': sys.version.split()[0]}))"
    )
    out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    exe = Path(info["executable"]).resolve()
    if info["base"] and not str(exe).startswith(info["base"]):  # a venv's python
        real = Path(info["base"]) / "bin" / exe.name
        exe = real.resolve() if real.exists() else exe
    info["executable"] = str(exe)
    if not info["dynload"] or not Path(info["dynload"]).is_dir():
        info["dynload"] = str(Path(info["stdlib"]) / "lib-dynload")
    return info


def shared_libraries(binaries: list[Path]) -> set[str]:
    """Absolute paths of the shared libraries (and the loader) that `binaries` need."""
    libs: set[str] = set()
    for b in binaries:
        proc = subprocess.run(["ldd", str(b)], capture_output=True, text=True)
        if proc.returncode != 0:
            continue  # a static binary or not an ELF file
        for line in proc.stdout.splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
                libs.add(parts[2])
            elif parts and parts[0].startswith("/"):
                libs.add(parts[0])  # the dynamic loader
    return libs


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, path: str, added: set[str]) -> None:
    """Add `path` (following links) with its parent directories readable by anyone."""
    parts = Path(path).parts
    for i in range(2, len(parts)):
        parent = str(Path(*parts[:i]))
        if parent not in added:
            added.add(parent)
            _add_dir(tar, parent)
    if path in added:
        return
    added.add(path)
    info = tar.gettarinfo(os.path.realpath(path), arcname=path.lstrip("/"))
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755 if info.mode & 0o111 else 0o644
    with open(path, "rb") as f:
        tar.addfile(info, f)


def write_rootfs(target: Path, python: str | None = None) -> dict[str, str]:
    """Write the minimal root file system tar for `python` (default: this interpreter)."""
    layout = interpreter_layout(python or sys.executable)
    exe, stdlib = Path(layout["executable"]), Path(layout["stdlib"])
    files: list[str] = [str(exe)]
    extensions: list[Path] = []
    for root, dirs, names in os.walk(stdlib):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith("config-")]
        for n in names:
            if n.startswith(SKIP_EXTENSIONS):
                continue
            path = Path(root) / n
            files.append(str(path))
            if n.endswith(".so"):
                extensions.append(path)
    dynload = Path(layout["dynload"])
    if dynload.is_dir() and not str(dynload).startswith(str(stdlib)):
        for p in dynload.glob("*.so"):
            if not p.name.startswith(SKIP_EXTENSIONS):
                files.append(str(p))
                extensions.append(p)
    libs = shared_libraries([exe, *extensions])
    added: set[str] = set()
    with tarfile.open(target, "w") as tar:
        for d, mode in (("/tmp", 0o1777), ("/work", 0o1777), ("/etc", 0o755)):
            _add_dir(tar, d, mode)
            added.add(d)
        for d in ("/proc", "/sys", "/dev", "/usr", "/usr/local", "/usr/local/bin"):
            _add_dir(tar, d)
            added.add(d)
        _add_bytes(
            tar,
            "/etc/passwd",
            b"root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        _add_bytes(tar, "/etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        for path in sorted(set(files) | libs):
            if os.path.isfile(path):
                _add_file(tar, path, added)
        for name in ("python3", "python"):
            link = tarfile.TarInfo(f"usr/local/bin/{name}")
            link.type, link.linkname = tarfile.SYMTYPE, str(exe)
            tar.addfile(link)
    return layout


def build_image(tag: str = BUILT_IMAGE, python: str | None = None, client=None) -> str:
    """Build the sandbox image `tag` without a registry; returns the image id."""
    client = client or docker_client(timeout=600)
    with tempfile.TemporaryDirectory(prefix="rewardkit-image-") as tmp:
        layout = write_rootfs(Path(tmp) / "rootfs.tar", python)
        (Path(tmp) / "Dockerfile").write_text(DOCKERFILE)
        labels = {"rewardkit-code.python": layout["version"]}
        image, _ = client.images.build(path=tmp, tag=tag, rm=True, pull=False, labels=labels)
    check = client.containers.run(
        tag,
        ["python3", "-I", "-c", "import json, ctypes, hashlib; print('ok')"],
        network_mode="none",
        remove=True,
    )
    if b"ok" not in check:
        raise RuntimeError(f"image {tag} was built but python3 does not run in it: {check!r}")
    return image.id

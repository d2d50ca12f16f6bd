"""The offline image's root file system: interpreter, stdlib, shared libraries, users."""

import sys
import tarfile

import pytest

from rewardkit_code.cli import main
from rewardkit_code.sandbox.image import interpreter_layout, shared_libraries, write_rootfs


def test_interpreter_layout_and_libraries():
    layout = interpreter_layout(sys.executable)
    assert "/.venv/" not in layout["executable"]  # the base interpreter, not the venv link
    assert layout["version"] == sys.version.split()[0]
    libs = shared_libraries([__import__("pathlib").Path(layout["executable"])])
    assert any("libc.so" in lib for lib in libs)
    assert any("ld-linux" in lib for lib in libs)


@pytest.mark.slow
def test_rootfs_contents(tmp_path):
    layout = write_rootfs(tmp_path / "rootfs.tar")
    with tarfile.open(tmp_path / "rootfs.tar") as tar:
        names = set(tar.getnames())
        passwd = tar.extractfile("etc/passwd").read().decode()
        work = tar.getmember("work")
    exe = layout["executable"].lstrip("/")
    assert exe in names and "usr/local/bin/python3" in names
    assert any(n.endswith("/json/__init__.py") for n in names)
    assert not any("/site-packages/" in n for n in names)  # no host packages leak in
    assert "nobody:x:65534" in passwd and work.mode == 0o1777


def test_cli_rejects_unknown_commands(capsys):
    with pytest.raises(SystemExit):
        main(["sandbox", "explode"])
    assert "invalid choice" in capsys.readouterr().err

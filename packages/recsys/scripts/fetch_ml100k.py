"""Copy MovieLens-100K (ml-100k.inter, ml-100k.item) out of the RecBole wheel.

RecBole ships the dataset in its wheel under `recbole/dataset_example/ml-100k/`. We do
not install RecBole; this script downloads the wheel from PyPI with pip (no dependencies),
reads the two files out of the zip and writes them to `src/rewardkit_recsys/data/`, where
`rewardkit_recsys.movielens` loads them. Run once; the copied files are committed.

    python packages/recsys/scripts/fetch_ml100k.py [--wheel PATH_TO_WHEEL]

MovieLens data: F. Maxwell Harper and Joseph A. Konstan, "The MovieLens Datasets:
History and Context", ACM TiiS 5(4), 2015 (GroupLens, University of Minnesota); free for
research use under the GroupLens terms.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

RECBOLE_VERSION = "1.2.1"
MEMBERS = ("ml-100k.inter", "ml-100k.item")
PREFIX = "recbole/dataset_example/ml-100k/"
DEST = Path(__file__).resolve().parents[1] / "src" / "rewardkit_recsys" / "data"


def download_wheel(directory: Path) -> Path:
    """`pip download --no-deps recbole==1.2.1` into `directory`; returns the wheel path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        f"recbole=={RECBOLE_VERSION}",
        "-d",
        str(directory),
    ]
    subprocess.run(cmd, check=True)
    wheels = sorted(directory.glob("recbole-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip download wrote no recbole wheel into {directory}")
    return wheels[0]


def extract(wheel: Path, dest: Path = DEST) -> list[Path]:
    """Write the two MovieLens files of `wheel` into `dest`; returns the written paths."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for member in MEMBERS:
            if PREFIX + member not in names:
                raise FileNotFoundError(f"{wheel} has no {PREFIX + member}")
            target = dest / member
            target.write_bytes(zf.read(PREFIX + member))
            written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a recbole wheel already downloaded")
    args = parser.parse_args()
    if args.wheel is not None:
        paths = extract(args.wheel)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            paths = extract(download_wheel(Path(tmp)))
    for p in paths:
        print(f"wrote {p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

"""`rewardkit-code` command line: sandbox image building and checks.

rewardkit-code sandbox build-image [--tag TAG] [--python PATH]   offline image
rewardkit-code sandbox check [--backend docker|local|auto] [--image IMAGE]
rewardkit-code sandbox clean                                     remove stale containers
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rewardkit-code")
    sub = parser.add_subparsers(dest="group", required=True)
    sandbox = sub.add_parser("sandbox", help="the code-execution sandbox").add_subparsers(
        dest="command", required=True
    )
    build = sandbox.add_parser("build-image", help="build the sandbox image with no registry")
    from rewardkit_code.sandbox.docker_backend import BUILT_IMAGE

    build.add_argument("--tag", default=BUILT_IMAGE)
    build.add_argument("--python", default=None, help="interpreter to copy (default: this one)")
    check = sandbox.add_parser("check", help="run a tiny program in the sandbox")
    check.add_argument("--backend", default="auto", choices=["auto", "docker", "local"])
    check.add_argument("--image", default=None)
    sandbox.add_parser("clean", help="remove sandbox containers left by dead processes")
    args = parser.parse_args(argv)

    if args.command == "build-image":
        from rewardkit_code.sandbox.image import build_image

        start = time.monotonic()
        image_id = build_image(args.tag, args.python)
        print(f"built {args.tag} ({image_id[:19]}) in {time.monotonic() - start:.1f}s")
    elif args.command == "check":
        from rewardkit_code.sandbox import AssertTest, make_sandbox

        settings = {"image": args.image} if args.image else {}
        with make_sandbox(args.backend, pool_size=1, **settings) as box:
            outs = box.run("def f(x):\n    return 2 * x\n", [AssertTest("assert f(21) == 42")])
        print(f"{box.backend}: {outs[0].status} {outs[0].message}".strip())
        return 0 if outs[0].passed else 1
    elif args.command == "clean":
        from rewardkit_code.sandbox.docker_backend import remove_stale_containers

        print(f"removed {remove_stale_containers()} containers")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures for rewardkit-code tests.

Docker tests (marked `docker`) use the image `rewardkit-code sandbox build-image` makes
(or $REWARDKIT_CODE_TEST_IMAGE). Without an engine they skip with the reason, except when
REWARDKIT_REQUIRE_DOCKER=1 (CI, after `bash .ci/docker.sh`): then they fail.
"""

from __future__ import annotations

import os

import pytest

from rewardkit_code.sandbox.docker_backend import BUILT_IMAGE, docker_available
from rewardkit_code.sandbox.local import LocalSandbox

REQUIRE_DOCKER = os.environ.get("REWARDKIT_REQUIRE_DOCKER", "") == "1"
TEST_IMAGE = os.environ.get("REWARDKIT_CODE_TEST_IMAGE", BUILT_IMAGE)


def _unavailable(reason: str) -> None:
    if REQUIRE_DOCKER:
        pytest.fail(f"REWARDKIT_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
    pytest.skip(f"{reason}; run `bash .ci/docker.sh` to set one up")


def require_docker_image() -> str:
    ok, why = docker_available()
    if not ok:
        _unavailable(f"no Docker engine answers ({why})")
    import docker.errors

    from rewardkit_code.sandbox.docker_backend import docker_client

    try:
        docker_client().images.get(TEST_IMAGE)
    except docker.errors.ImageNotFound:
        _unavailable(
            f"the sandbox image {TEST_IMAGE} is missing (rewardkit-code sandbox build-image)"
        )
    return TEST_IMAGE


@pytest.fixture(scope="session")
def docker_image() -> str:
    return require_docker_image()


@pytest.fixture(scope="session")
def docker_sandbox(docker_image):
    from rewardkit_code.sandbox.docker_backend import DockerSandbox

    box = DockerSandbox(image=docker_image, pool_size=2, timeout=3.0, memory_mb=256)
    box.warm_up()
    yield box
    box.close()


@pytest.fixture(scope="session")
def local_sandbox():
    box = LocalSandbox(pool_size=2, timeout=3.0, memory_mb=512)
    yield box
    box.close()

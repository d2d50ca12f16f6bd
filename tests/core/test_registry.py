"""Registries: decorator built-ins, entry-point plugins, and their error messages."""

import sys
import textwrap

import pytest

from rewardkit.registry import Registry, RegistryError


def make_distribution(root, dist, group, entries, module=None, source=""):
    """Write an installed-looking distribution (dist-info + optional module) under root."""
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")
    if module:
        (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("fake_plugin")]:
        del sys.modules[name]


def test_builtin_registration_and_lookup():
    reg = Registry("reward", "rewardkit.test.none")

    @reg.register("core.one")
    def one(samples):
        return [1.0] * len(samples)

    assert reg.get("core.one") is one
    assert reg.names() == ["core.one"]
    assert reg.entries()[0].distribution == "rewardkit"


def test_same_builtin_name_twice_is_an_error():
    reg = Registry("reward", "rewardkit.test.none")
    reg.register("x", object())
    with pytest.raises(RegistryError, match="registered twice"):
        reg.register("x", object())


def test_unknown_name_suggests_close_matches():
    reg = Registry("advantage", "rewardkit.test.none")
    reg.register("grpo", object())
    reg.register("dr_grpo", object())
    with pytest.raises(RegistryError, match=r"unknown advantage 'gpro'.*Did you mean 'grpo'"):
        reg.get("gpro")


def test_plugin_is_listed_without_import_and_loaded_lazily(site):
    make_distribution(
        site,
        "fake-plugin-a",
        "rewardkit.test.lazy",
        {"fake.reward": "fake_plugin_a:reward"},
        module="fake_plugin_a",
        source="reward = 'loaded'\n",
    )
    reg = Registry("reward", "rewardkit.test.lazy")
    [entry] = reg.entries()
    assert (entry.name, entry.distribution, entry.target) == (
        "fake.reward",
        "fake-plugin-a",
        "fake_plugin_a:reward",
    )
    assert "fake_plugin_a" not in sys.modules  # listing imported nothing
    assert reg.get("fake.reward") == "loaded"
    assert "fake_plugin_a" in sys.modules


def test_same_name_from_two_distributions(site):
    for dist in ("fake-plugin-b", "fake-plugin-c"):
        make_distribution(site, dist, "rewardkit.test.dup", {"dup.name": "os:getcwd"})
    reg = Registry("task", "rewardkit.test.dup")
    with pytest.raises(RegistryError, match="fake-plugin-b, fake-plugin-c"):
        reg.get("dup.name")


def test_plugin_shadowing_a_builtin_is_an_error(site):
    make_distribution(site, "fake-plugin-d", "rewardkit.test.shadow", {"grpo": "os:getcwd"})
    reg = Registry("advantage", "rewardkit.test.shadow")
    reg.register("grpo", object())
    with pytest.raises(RegistryError, match="both by rewardkit and by fake-plugin-d"):
        reg.get("grpo")


def test_failing_import_names_distribution_and_exception(site):
    make_distribution(
        site,
        "fake-plugin-e",
        "rewardkit.test.broken",
        {"broken.reward": "fake_plugin_e:x"},
        module="fake_plugin_e",
        source="raise ImportError('needs libfoo')\n",
    )
    reg = Registry("reward", "rewardkit.test.broken")
    with pytest.raises(RegistryError, match=r"fake-plugin-e.*ImportError: needs libfoo"):
        reg.get("broken.reward")

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.errors import ConfigError, UserError
from orchestrator.profiles import known_arches, load_profile, load_profile_file


def test_all_profiles_load() -> None:
    assert known_arches() == ["arm64", "sparc64", "x86_64"]
    for arch in known_arches():
        prof = load_profile(arch)
        assert prof.name == arch
        assert prof.build.fragments[0] == f"base-{arch}"
    assert load_profile("sparc64").qemu.max_cpus == 1
    assert load_profile("sparc64").build.kernel_image == "image"  # not the gzip zImage


def test_unknown_arch() -> None:
    with pytest.raises(UserError, match="known arches: arm64, sparc64, x86_64"):
        load_profile("riscv64")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["qemu"].pop("console"), "missing key qemu.console"),
        (lambda d: d["qemu"].update(max_cpus=0), "qemu.max_cpus must be a positive integer"),
        (lambda d: d["build"].update(fragments="debug"), "build.fragments must be a list"),
        (lambda d: d["qemu"].update(colour="red"), "unknown key.*qemu.colour"),
        (lambda d: d.update(name="other"), "must match the file name"),
    ],
)
def test_invalid_profile_names_the_key(tmp_path: Path, mutate, message: str) -> None:
    src = load_profile("x86_64").path
    data = yaml.safe_load(src.read_text())
    mutate(data)
    bad = tmp_path / "x86_64.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message) as err:
        load_profile_file(bad)
    assert str(bad) in str(err.value)

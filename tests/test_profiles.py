from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.config.arch import known_arches, load_profile, load_profile_file
from orchestrator.errors import ConfigError, UserError


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
        (lambda d: d["qemu"].pop("console"), r"yaml:\d+: missing key qemu.console"),
        (lambda d: d["qemu"].update(max_cpus=0), r"yaml:\d+: qemu.max_cpus: must be a positive"),
        (lambda d: d["build"].update(fragments="debug"), r"yaml:\d+: build.fragments: must be a l"),
        (lambda d: d["qemu"].update(colour="red"), r"yaml:\d+: qemu.colour: unknown key"),
        (lambda d: d["busybox"].update(source="rpm"), r"busybox.source: must be one of host, deb"),
        (lambda d: d["target"].update(elf_machine="62"), r"target.elf_machine: must be a positive"),
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


def test_error_line_is_the_line_of_the_key(tmp_path: Path) -> None:
    text = load_profile("x86_64").path.read_text().replace("max_cpus: 8", "max_cpus: eight")
    bad = tmp_path / "x86_64.yaml"
    bad.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "max_cpus: eight" in ln)
    with pytest.raises(ConfigError, match=rf"x86_64.yaml:{line}: qemu.max_cpus: must be"):
        load_profile_file(bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x86_64\nqemu:\n\tbinary: q\n", r"x86_64.yaml:3: not valid YAML.*\n.*tabs"),
        ("", "empty arch profile"),
        ("- a\n- b\n", "must be a mapping"),
        ("name: x86_64\n" + "# padding\n" * 200_000, "too big"),
    ],
)
def test_unreadable_yaml_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "x86_64.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_profile_file(bad)
    assert str(bad) in str(err.value)


def test_host_data_files_use_the_same_loader(tmp_path: Path) -> None:
    from orchestrator.config.schema import load_file_as
    from orchestrator.config.tools import ToolList, package_for
    from orchestrator.guest.dropbear import DropbearRecipe

    assert package_for("aarch64-linux-gnu-gcc") == "gcc-aarch64-linux-gnu"  # from the profile
    assert package_for("qemu-system-sparc64") == "qemu-system-sparc"
    assert package_for("git") == "git"
    bad = tmp_path / "dropbear.yaml"
    bad.write_text("configure: --enable-static\nlocaloptions: x\n")
    with pytest.raises(ConfigError, match=r"dropbear.yaml:1: configure: must be a list"):
        load_file_as(DropbearRecipe, bad, "dropbear recipe")
    bad.write_text("tools: {git: git}\nextra: 1\n")
    with pytest.raises(ConfigError, match=r"tools.yaml|dropbear.yaml:2: extra: unknown key"):
        load_file_as(ToolList, bad, "host tool list")


def test_host_arch_aliases_come_from_the_profiles() -> None:
    from orchestrator.config.arch import arch_of_host

    assert arch_of_host("amd64") == "x86_64"
    assert arch_of_host("aarch64") == "arm64"
    assert arch_of_host("riscv64") == "riscv64"


def test_the_yaml_cache_stamp_follows_the_pyyaml_that_import_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new PyYAML (another file, or the same file changed) must not reuse parsed documents."""
    import os
    import sys

    from orchestrator.config import schema

    fake = tmp_path / "yaml" / "__init__.py"
    fake.parent.mkdir()
    fake.write_text("")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "nothing"), str(tmp_path), *sys.path])
    monkeypatch.setattr(schema, "_yaml_stamp", None)
    first = schema._pyyaml_stamp()
    assert str(fake) in first  # the first yaml on sys.path, as import would take
    os.utime(fake, ns=(1, 1))
    monkeypatch.setattr(schema, "_yaml_stamp", None)
    assert schema._pyyaml_stamp() != first

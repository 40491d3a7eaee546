from __future__ import annotations

import dataclasses
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.config.arch import arch_dir, known_arches, load_profile, load_profile_file
from orchestrator.errors import ConfigError, UserError
from orchestrator.paths import configs_dir

REPO = Path(__file__).resolve().parents[1]


def test_all_profiles_load() -> None:
    assert "x86_64" in known_arches()
    for arch in known_arches():
        prof = load_profile(arch)
        assert prof.name == arch
        assert prof.build.fragments[0] == f"base-{arch}"
    assert load_profile("sparc64").qemu.max_cpus == 1
    assert load_profile("sparc64").build.kernel_image == "image"  # not the gzip zImage


def test_unknown_arch() -> None:
    with pytest.raises(UserError, match=f"known arches: {', '.join(known_arches())}$"):
        load_profile("vax")


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


# ------------------------------------------------------------- adding an arch is data only
# (docs/architecture.md "Adding an arch"): what the files besides the profile must hold, and
# that the code reading a profile has no arch of its own.


@pytest.mark.parametrize("arch", known_arches())
def test_an_arch_has_its_data_files(arch: str) -> None:
    """The profile's fragments exist, and `make setup` installs its compiler and QEMU."""
    prof = load_profile(arch)
    kconfig = configs_dir() / "kconfig"
    for frag in {*prof.build.fragments, *(f for s in prof.fragment_sets.values() for f in s)}:
        assert (kconfig / f"{frag}.config").is_file(), f"{arch}: no {kconfig}/{frag}.config"
    listed = (configs_dir() / "host" / "apt-packages.txt").read_text()
    packages = {ln.split("#")[0].strip() for ln in listed.splitlines()} - {""}
    wanted = {prof.build.cc_package, prof.qemu.package}
    if prof.busybox.source == "host":
        wanted.add(prof.busybox.package)
    assert wanted <= packages, f"{arch}: not in configs/host/apt-packages.txt"


def _busybox_fetches(repo: Path) -> list[str]:
    res = subprocess.run(
        ["bash", str(repo / "scripts" / "setup-host.sh"), "--print-busybox-fetches"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.split("\n")


def test_setup_fetches_the_busybox_every_profile_names() -> None:
    """scripts/setup-host.sh reads the profiles with awk (it runs before PyYAML is there):
    it must see in every profile what the loader sees."""
    expected = []
    for arch in known_arches():
        bb = load_profile(arch).busybox
        if bb.source == "deb":
            # Debian's <package>_<version>_<arch>.deb: the glob names what to download
            m = re.fullmatch(r"([a-z0-9][a-z0-9.+-]*)_\*_([a-z0-9-]+)\.deb", bb.deb)
            assert m, f"{arch}: busybox.deb {bb.deb!r} is not <package>_*_<debian arch>.deb"
            expected.append(f"deb {arch} {m[1]}:{m[2]} {bb.deb}")
        elif bb.source == "build":
            m = re.fullmatch(r"([a-z0-9][a-z0-9.+-]*)_\*\.dsc", bb.dsc)
            assert m, f"{arch}: busybox.dsc {bb.dsc!r} is not <source package>_*.dsc"
            expected.append(f"src {arch} {m[1]} {bb.dsc}")
    assert [ln for ln in _busybox_fetches(REPO) if ln] == expected


def _new_arch(root: Path) -> None:
    """riscv64 as a copy of arm64's profile: a .deb busybox, another uname."""
    text = load_profile("arm64").path.read_text()
    text = text.replace("name: arm64", "name: riscv64").replace("_arm64.deb", "_riscv64.deb")
    text = text.replace("uname_machine: aarch64", "uname_machine: riscv64")
    (root / "configs" / "arch" / "riscv64.yaml").write_text(text)


def test_setup_fetches_a_new_arch_busybox_without_a_change(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup-host.sh", tmp_path / "scripts")
    shutil.copytree(arch_dir(), tmp_path / "configs" / "arch")
    _new_arch(tmp_path)
    assert "deb riscv64 busybox-static:riscv64 busybox-static_*_riscv64.deb" in (
        _busybox_fetches(tmp_path)
    )
    assert load_profile_file(tmp_path / "configs" / "arch" / "riscv64.yaml").name == "riscv64"


def test_smoke_helper_takes_the_arch_from_the_profile(tmp_path: Path) -> None:
    """guest-tests/smoke/hello.c knows no arch: its name and uname come from the profile."""
    from orchestrator.config.arch import arch_of_host
    from orchestrator.guest.initramfs import HELPER_CFLAGS, helper_defines

    host = arch_of_host(platform.machine())
    if host not in known_arches():
        pytest.skip(f"no profile for this host's arch ({host})")
    prof = load_profile(host)
    cc = shutil.which(prof.build.cc)
    if not cc:
        pytest.skip(f"{prof.build.cc} not installed: run make setup")
    hello = REPO / "guest-tests" / "smoke" / "hello.c"

    def build_and_run(defines: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        out = tmp_path / "hello"
        built = subprocess.run(
            [cc, *HELPER_CFLAGS, *defines, "-o", out, hello], capture_output=True, text=True
        )
        assert built.returncode == 0, built.stderr
        return subprocess.run([out], capture_output=True, text=True, timeout=60)

    ok = build_and_run(helper_defines(prof))
    assert ok.returncode == 0 and ok.stdout.startswith(f"kto-hello: {host} pid="), ok.stdout
    # a profile whose uname differs from the machine it runs on: the helper says so
    other = dataclasses.replace(
        prof, target=dataclasses.replace(prof.target, uname_machine="riscv64")
    )
    bad = build_and_run(helper_defines(other))
    assert bad.returncode == 1
    assert f"kernel says {platform.machine()} (expected riscv64)" in bad.stdout, bad.stdout
    # built without the profile's defines: a compile error, not a guess
    plain = subprocess.run([cc, *HELPER_CFLAGS, "-o", tmp_path / "h", hello], capture_output=True)
    assert plain.returncode != 0 and b"KTO_ARCH" in plain.stderr

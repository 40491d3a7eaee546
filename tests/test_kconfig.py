from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.build import kconfig
from orchestrator.errors import KconfigDropped, UserError


def _frag(tmp_path: Path, name: str, text: str) -> kconfig.Fragment:
    p = tmp_path / f"{name}.config"
    p.write_text(text)
    return kconfig.Fragment(name, p)


def test_dropped_option_is_named_with_fragment_and_line(tmp_path: Path) -> None:
    frag = _frag(tmp_path, "mm", "# comment\nCONFIG_SHMEM=y\nCONFIG_TMPFS=y\n")
    final = "CONFIG_SHMEM=y\n# CONFIG_TMPFS is not set\n"
    with pytest.raises(KconfigDropped) as err:
        kconfig.verify([frag], final, tmp_path / ".config")
    msg = str(err.value)
    assert "CONFIG_TMPFS=y (from mm.config line 3) ended up as not set" in msg
    assert "CONFIG_SHMEM" not in msg.split("\n", 1)[1]
    assert "depends on" in msg


def test_values_unset_and_modules(tmp_path: Path) -> None:
    frag = _frag(
        tmp_path,
        "f",
        'CONFIG_NR_CPUS=8\nCONFIG_CMDLINE="a b"\n# CONFIG_MODULES is not set\nCONFIG_KVM=m\n',
    )
    ok = 'CONFIG_NR_CPUS=8\nCONFIG_CMDLINE="a b"\nCONFIG_KVM=y\n'
    kconfig.verify([frag], ok, Path(".config"))
    bad = kconfig.dropped_options([frag], "CONFIG_NR_CPUS=4\nCONFIG_MODULES=y\nCONFIG_KVM=y\n")
    assert sorted(r.option for r, _ in bad) == [
        "CONFIG_CMDLINE",
        "CONFIG_MODULES",
        "CONFIG_NR_CPUS",
    ]


def test_later_fragment_overrides_earlier(tmp_path: Path) -> None:
    a = _frag(tmp_path, "a", "CONFIG_PROVE_LOCKING=y\n")
    b = _frag(tmp_path, "b", "# CONFIG_PROVE_LOCKING is not set\n")
    kconfig.verify([a, b], "CONFIG_DEBUG_KERNEL=y\n", Path(".config"))


def test_bad_fragment_line_names_file_and_line(tmp_path: Path) -> None:
    frag = _frag(tmp_path, "bad", "CONFIG_A=y\nKVM=y\n")
    with pytest.raises(UserError, match=r"bad.config:2: not a Kconfig line"):
        kconfig.parse_fragment(frag)


def test_find_fragment_by_name_and_unknown() -> None:
    assert kconfig.find_fragment("debug").path.name == "debug.config"
    with pytest.raises(UserError, match=r"known fragments: .*debug"):
        kconfig.find_fragment("no-such-fragment")


def test_shipped_fragments_parse() -> None:
    names = kconfig.known_fragments()
    assert {"base-x86_64", "base-arm64", "base-sparc64", "debug"} <= set(names)
    for name in names:
        assert kconfig.parse_fragment(kconfig.find_fragment(name))

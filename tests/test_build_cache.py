from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.build.cache import cache_key
from orchestrator.build.kernel import BuildRequest, plan
from orchestrator.build.record import load_record


def test_cache_key_depends_on_every_input() -> None:
    base = ("c0ffee", "none", "CONFIG_A=y\n", "gcc 12.2.0", "bzImage")
    key = cache_key(*base)
    assert key == cache_key(*base)
    for i in range(len(base)):
        changed = list(base)
        changed[i] = changed[i] + "x"
        assert cache_key(*changed) != key, f"input {i} does not reach the key"


def test_incomplete_cache_entry_is_not_a_hit(tmp_path) -> None:
    assert load_record(tmp_path) is None
    (tmp_path / "build.json").write_text('{"status": "PA')  # killed mid-write
    assert load_record(tmp_path) is None
    (tmp_path / "build.json").write_text(json.dumps({"status": "PASS"}))
    assert load_record(tmp_path) == {"status": "PASS"}


def test_dry_run_plan_names_inputs() -> None:
    p = plan(
        BuildRequest(
            tree="debian-6.12",
            arch="sparc64",
            fragments=["lockdep"],
            patches="kernels/series/kto-banner",
        )
    )
    assert p["arch"] == "sparc64"
    assert any(f.endswith("lockdep.config") for f in p["fragments"])
    assert "--target-arch sparc" in p["steps"][-1]
    assert "--kernel-image image" in p["steps"][-1]
    assert "git am -3" in p["steps"][1]


def test_command_line_reproduces_request() -> None:
    req = BuildRequest(tree="debian-6.1", arch="arm64", patches="s.mbox", fragments=["lockdep"])
    assert req.command_line() == (
        "kto build --tree debian-6.1 --arch arm64 --patches s.mbox --config lockdep"
    )


def test_unknown_fragment_fails_before_work() -> None:
    from orchestrator.errors import UserError

    with pytest.raises(UserError, match="no-such"):
        plan(BuildRequest(tree="debian-6.1", arch="x86_64", fragments=["no-such"]))


def test_request_key_covers_fragments_and_series(tmp_path) -> None:
    from orchestrator.build.cache import request_key
    from orchestrator.build.kconfig import Fragment
    from orchestrator.config.arch import load_profile

    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_A=y\n")
    prof = load_profile("arm64")
    k = request_key("c0ffee", "none", prof, [Fragment("f", frag)], "gcc 12")
    assert k == request_key("c0ffee", "none", prof, [Fragment("f", frag)], "gcc 12")
    assert k != request_key("c0ffee", "abcd", prof, [Fragment("f", frag)], "gcc 12")
    assert k != request_key(
        "c0ffee", "none", load_profile("x86_64"), [Fragment("f", frag)], "gcc 12"
    )
    frag.write_text("CONFIG_A=n\n")  # same file, new content: a new request
    assert k != request_key("c0ffee", "none", prof, [Fragment("f", frag)], "gcc 12")


def test_build_progress_estimates_from_the_last_build(tmp_path: Path) -> None:
    from orchestrator.build.estimate import BuildProgress

    build_dir, work = tmp_path / "build", tmp_path / "work"
    (build_dir / "kernel").mkdir(parents=True)
    first = BuildProgress(build_dir, work)
    assert first.cold and first.fraction() is None
    assert "no earlier cold build" in first.ticker()
    for i in range(8):
        (build_dir / "kernel" / f"f{i}.o").write_bytes(b"")
    first.done()
    # The next cold build of this tree+arch: 2 of the 8 objects so far is 25 %.
    for i in range(2, 8):
        (build_dir / "kernel" / f"f{i}.o").unlink()
    again = BuildProgress(build_dir, work)
    assert again.fraction() == pytest.approx(0.25)
    assert again.ticker().startswith("25%, ~")
    # Once vmlinux exists builds are incremental, estimated by time once one has finished.
    (build_dir / "vmlinux").write_bytes(b"")
    inc = BuildProgress(build_dir, work)
    assert not inc.cold and inc.fraction() is None
    inc.done()
    assert BuildProgress(build_dir, work).fraction() is not None

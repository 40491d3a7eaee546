from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.build.cache import cache_key
from orchestrator.build.kernel import BuildRequest, plan
from orchestrator.build.record import load_record

from .conftest import git


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


def test_one_build_dir_per_final_config_and_lru_eviction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.build import builddirs
    from orchestrator.build.cache import artifacts_root, work_dir

    work = work_dir("debian-6.1", "x86_64")
    a = builddirs.build_dir_for(work, "CONFIG_A=y\n")
    b = builddirs.build_dir_for(work, "CONFIG_B=y\n")
    assert a != b and a.parent.parent == b.parent.parent == work / "configs"
    assert (a / ".config").read_text() == "CONFIG_A=y\n"
    # The same config again: the same dir, and its .config is not rewritten (mtime kept).
    before = (a / ".config").stat().st_mtime_ns
    assert builddirs.build_dir_for(work, "CONFIG_A=y\n") == a
    assert (a / ".config").stat().st_mtime_ns == before
    # Over the cap: the least recently used dir of this tree goes, never the one in use.
    (a / "vmlinux").write_bytes(b"\0" * 300_000)
    (b / "vmlinux").write_bytes(b"\0" * 300_000)
    (a.parent / "used").write_text("100\n")
    (b.parent / "used").write_text("200\n")
    other = work_dir("other-tree", "x86_64") / "configs" / "c" / "build"
    other.mkdir(parents=True)
    (other.parent / "used").write_text("1\n")  # older, but another tree's: not ours to remove
    removed = builddirs.evict(work.parent, keep=b, cap=400_000)
    assert removed == [a.parent] and not a.exists() and b.exists() and other.exists()
    assert builddirs.evict(work.parent, keep=b, cap=0) == []  # only the dir in use is left
    assert artifacts_root() in work.parents


def test_each_untrusted_series_has_its_own_work_dir_gone_with_its_last_build_dir(
    tmp_path: Path,
) -> None:
    """Two mailed series on one tree, arch and config: two build dirs, two compiler caches,
    two config scratch dirs (what one plants there, the other never runs). Evicting a
    series' last build dir takes its whole work dir (compiler cache included)."""
    from orchestrator.build import builddirs
    from orchestrator.build.cache import sandbox_ccache, work_dir
    from orchestrator.build.kernel import series_owner
    from orchestrator.build.patches import Patch, Series
    from orchestrator.build.trust import UNTRUSTED, decide

    def one(kind: str, diff: str) -> Series:
        text = f"Subject: [PATCH] x\n\n---\ndiff --git a/x b/x\n{diff}\n"
        return Series("s", kind, [Patch("x", 1, 1, None, "M <m@x>", text)])

    trust = decide("debian-6.1", True, "mbox", None)
    a, b = series_owner(trust, one("mbox", "+a")), series_owner(trust, one("dir", "+b"))
    assert a and b and a != b
    # A tree's own code (a range of an untrusted tree, or trusted: no sandbox) is the tree's.
    ranged = one("git-range", "+c")
    assert series_owner(decide("mine", False, "git-range", None), ranged) == ""
    assert series_owner(decide("debian-6.1", True, "git-range", None), ranged) == ""
    wa, wb = (work_dir("debian-6.1", "x86_64", UNTRUSTED, o) for o in (a, b))
    assert wa != wb and wa.parent == wb.parent  # one tree dir: one lock, one eviction
    assert sandbox_ccache(wa) != sandbox_ccache(wb)
    da = builddirs.build_dir_for(wa, "CONFIG_A=y\n")
    db = builddirs.build_dir_for(wb, "CONFIG_A=y\n")
    assert da != db
    sandbox_ccache(wa).mkdir()
    (wa / "kconfig").mkdir()
    (da.parent / "used").write_text("100\n")
    (db.parent / "used").write_text("200\n")
    (da / "vmlinux").write_bytes(b"\0" * 300_000)
    (db / "vmlinux").write_bytes(b"\0" * 300_000)
    failed = work_dir("debian-6.1", "x86_64", UNTRUSTED, "c" * 16)  # never got a build dir
    (failed / "patches").mkdir(parents=True)
    sandbox_ccache(failed).mkdir()
    assert builddirs.evict(wa.parent, keep=db, cap=400_000) == [da.parent]
    assert not wa.exists() and not failed.exists() and db.exists()


def test_interrupted_build_dir_starts_clean(tmp_path: Path) -> None:
    from orchestrator.build import builddirs
    from orchestrator.build.cache import work_dir

    work = work_dir("t", "arm64")
    d = builddirs.build_dir_for(work, "CONFIG_X=y\n")
    (d / "half.o").write_bytes(b"junk")
    (d / builddirs.BUILDING_MARK).write_text("1234\n")
    again = builddirs.build_dir_for(work, "CONFIG_X=y\n")
    assert again == d and not (d / "half.o").exists()


def test_series_touching_kconfig_needs_the_config_step(tiny_repo: Path) -> None:
    from orchestrator.build.kernel import touches_kconfig
    from orchestrator.build.trees import resolve_tree

    tree = resolve_tree(str(tiny_repo))
    base = tree.base_commit
    assert not touches_kconfig(tree, base)
    (tiny_repo / "mm" / "mmu_notifier.c").write_text("int changed;\n")
    git(tiny_repo, "commit", "-qam", "code only")
    assert not touches_kconfig(tree, git(tiny_repo, "rev-parse", "HEAD"))
    (tiny_repo / "mm" / "Kconfig").write_text("config NEW\n\tbool\n")
    git(tiny_repo, "add", "-A")
    git(tiny_repo, "commit", "-qm", "a Kconfig symbol")
    assert touches_kconfig(tree, git(tiny_repo, "rev-parse", "HEAD"))


HOLD = """
import sys, time
from pathlib import Path
from orchestrator.locks import file_lock
with file_lock(Path(sys.argv[1]), "matrix run X", wait=False):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_held_run_lock_is_refused_and_a_dead_holders_lock_is_free(tmp_path: Path) -> None:
    import subprocess
    import sys

    from orchestrator.errors import UserError
    from orchestrator.locks import file_lock

    lock = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with (
        pytest.raises(UserError, match=rf"matrix run X is in use by kto pid {holder.pid}"),
        file_lock(lock, "matrix run X", wait=False),
    ):
        pass
    holder.kill()  # SIGKILL: the file stays, the lock goes with the process
    holder.wait()
    with file_lock(lock, "matrix run X", wait=False):
        assert lock.read_text().strip() == str(__import__("os").getpid())

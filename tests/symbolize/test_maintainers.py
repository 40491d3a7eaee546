"""get_maintainer.pl: on a real 6.1 tree if one is unpacked, on a minimal tree with a
MAINTAINERS written here (the script taken from a real tree at test time, never kept in kto), and
the trees it cannot answer for."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.symbolize.maintainers import find_maintainers, parse_output

TREES = Path.home() / ".cache" / "kto" / "trees"


def real_tree() -> Path | None:
    found = sorted(TREES.glob("*/*/scripts/get_maintainer.pl")) if TREES.is_dir() else []
    trees = [p.parents[1] for p in found if (p.parents[1] / "MAINTAINERS").is_file()]
    return trees[0] if trees else None


MAINTAINERS = """\
List of maintainers (a minimal file for kto's tests)

KTO TEST SUBSYSTEM
M:\tAda Maintainer <ada@example.org>
R:\tRex Reviewer <rex@example.org>
L:\tkto-test@lists.example.org
S:\tMaintained
F:\tmm/kto_test.c

THE REST
M:\tLinus Torvalds <torvalds@linux-foundation.org>
L:\tlinux-kernel@vger.kernel.org
S:\tBuried alive in reporters
F:\t*
F:\t*/
"""


def committed(root: Path) -> str:
    """The tree as a git commit kto trusts (a named tree's base): its sha."""
    import subprocess

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    if not (root / ".git").exists():
        subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=root, check=True)
    res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True)
    return res.stdout.decode().strip()


def minimal_tree(root: Path, script: Path | None) -> Path:
    """What get_maintainer.pl needs to accept a directory as a kernel tree."""
    for name in ("COPYING", "CREDITS", "Kbuild", "Makefile", "README"):
        (root / name).write_text("")
    for name in (
        "Documentation",
        "arch",
        "include",
        "drivers",
        "fs",
        "init",
        "ipc",
        "kernel",
        "lib",
        "scripts",
        "mm",
    ):
        (root / name).mkdir()
    (root / "mm" / "kto_test.c").write_text("int x;\n")
    (root / "MAINTAINERS").write_text(MAINTAINERS)
    if script is not None:
        # A copy, not a link: it runs from the tree's git commit, which would hold a link.
        shutil.copyfile(script, root / "scripts" / "get_maintainer.pl")
    return root


def test_parse_roles() -> None:
    out = parse_output(
        "Andrew Morton <akpm@linux-foundation.org> (maintainer:MEMORY MANAGEMENT)\n"
        "Jane Doe <jane@example.org> (reviewer:MEMORY MANAGEMENT)\n"
        "linux-mm@kvack.org (open list:MEMORY MANAGEMENT)\n"
        "alsa-devel@alsa-project.org (moderated list:SOUND)\n"
        "linux-kernel@vger.kernel.org (open list)\n",
        "mm/memory.c",
    )
    assert out.people == [
        "Andrew Morton <akpm@linux-foundation.org>",
        "Jane Doe <jane@example.org>",
    ]
    assert out.lists == [
        "linux-mm@kvack.org",
        "alsa-devel@alsa-project.org",
        "linux-kernel@vger.kernel.org",
    ]


def test_real_tree() -> None:
    tree = real_tree()
    if tree is None:
        pytest.skip(f"no kernel tree with MAINTAINERS under {TREES} (make run unpacks one)")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True)
    out = find_maintainers(tree, "mm/mmu_notifier.c", head.stdout.strip())
    assert out.note is None, out.note
    assert "linux-mm@kvack.org" in out.lists
    assert any("akpm@linux-foundation.org" in p for p in out.people)


def test_minimal_tree_with_a_real_script(tmp_path: Path) -> None:
    tree = real_tree()
    if tree is None:
        pytest.skip(f"no kernel tree under {TREES} to take scripts/get_maintainer.pl from")
    root = minimal_tree(tmp_path, tree / "scripts" / "get_maintainer.pl")
    out = find_maintainers(root, "mm/kto_test.c", committed(root))
    assert out.note is None, out.note
    assert out.people[:2] == ["Ada Maintainer <ada@example.org>", "Rex Reviewer <rex@example.org>"]
    assert "kto-test@lists.example.org" in out.lists
    assert "linux-kernel@vger.kernel.org" in out.lists


def test_no_maintainers_file(tmp_path: Path) -> None:
    root = minimal_tree(tmp_path, None)
    (root / "MAINTAINERS").unlink()
    out = find_maintainers(root, "mm/kto_test.c")
    assert not out.people and not out.lists
    assert "no MAINTAINERS" in (out.note or "")


def test_no_script(tmp_path: Path) -> None:
    root = minimal_tree(tmp_path, None)
    out = find_maintainers(root, "mm/kto_test.c", committed(root))
    assert "no scripts/get_maintainer.pl" in (out.note or "")


def test_a_failing_script_is_a_note(tmp_path: Path) -> None:
    fake = tmp_path / "fake.pl"
    fake.write_text('print STDERR "boom\\n"; exit 3;\n')
    (tmp_path / "t").mkdir()
    root = minimal_tree(tmp_path / "t", fake)
    out = find_maintainers(root, "mm/kto_test.c", committed(root))
    assert out.note == "get_maintainer.pl exit 3: boom"


def test_a_file_outside_the_tree_and_no_tree(tmp_path: Path) -> None:
    root = minimal_tree(tmp_path, None)
    assert "is not in" in (find_maintainers(root, "kernel/nope.c").note or "")
    assert "no source tree" in (find_maintainers(None, "kernel/fork.c").note or "")


def test_the_script_comes_from_the_trusted_commit(tmp_path: Path) -> None:
    """A series that edits scripts/get_maintainer.pl does not get its Perl run: the copy
    from the base commit runs, on the worktree's MAINTAINERS; with no trusted commit (an
    untrusted tree, a record that names none) nothing of the tree runs at all."""
    root = minimal_tree(tmp_path, None)
    script = root / "scripts" / "get_maintainer.pl"
    script.write_text("print 'Trusted One <trusted@example.org> (maintainer:X)', \"\\n\";\n")
    base = committed(root)
    script.write_text("print 'Evil <evil@example.org> (maintainer:X)', \"\\n\";\n")  # a series
    assert find_maintainers(root, "mm/kto_test.c", commit=base).people == [
        "Trusted One <trusted@example.org>"
    ]
    untrusted = find_maintainers(root, "mm/kto_test.c")
    assert not untrusted.people and "of a trusted base commit" in (untrusted.note or "")


@pytest.mark.parametrize(
    ("trust", "runs"),
    [
        (None, True),  # a record from before trust was recorded: kto's named trees
        (
            {"domain": "untrusted", "reason": "the series comes from a mail", "tree_trusted": True},
            True,
        ),
        ({"domain": "untrusted", "reason": "a git range in tree /x", "tree_trusted": False}, False),
        (
            {"domain": "untrusted", "reason": "a commit of tree /x, which is not declared trusted"},
            False,
        ),
    ],
)
def test_only_a_trusted_trees_base_commit_gets_its_script_run(
    trust: dict[str, object] | None, runs: bool
) -> None:
    from orchestrator.symbolize.decode import inputs_from_build_record

    record: dict[str, object] = {"inputs": {"base_commit": "abc", "head_commit": "def"}}
    if trust is not None:
        record["trust"] = trust
    assert (inputs_from_build_record(record).trusted_commit == "abc") is runs


def test_a_get_maintainer_conf_from_a_series_is_not_read(tmp_path: Path) -> None:
    # The script takes options from ./.get_maintainer.conf (--self-test would have it run
    # wget on MAINTAINERS' links through a shell); a series can add the file: it is data.
    tree = real_tree()
    if tree is None:
        pytest.skip(f"no kernel tree under {TREES} to take scripts/get_maintainer.pl from")
    root = minimal_tree(tmp_path, tree / "scripts" / "get_maintainer.pl")
    base = committed(root)
    (root / ".get_maintainer.conf").write_text("--nol\n")  # what the series adds
    out = find_maintainers(root, "mm/kto_test.c", base)
    assert "kto-test@lists.example.org" in out.lists, out

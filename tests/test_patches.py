"""Patch series: mboxes (b4), mangled mails (data/mails/), directories, git ranges; applying."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from orchestrator.build.patches import Series, apply_series, load_series
from orchestrator.build.trees import resolve_tree, tree_lock
from orchestrator.errors import PatchApplyError, UserError

from .conftest import DATA, REPO, git

MAILS = DATA / "mails"  # see MAILS/README.md


def _make_series(repo: Path, out: Path, version: int, edits: list[tuple[int, str]]) -> None:
    """Two commits on a branch, exported as a threaded vN series with a cover letter."""
    git(repo, "checkout", "-q", "-B", f"v{version}", "main")
    for no, (line, new) in enumerate(edits, 1):
        f = repo / "mm" / "mmu_notifier.c"
        lines = f.read_text().splitlines(keepends=True)
        lines[line - 1] = new + "\n"
        f.write_text("".join(lines))
        git(repo, "commit", "-q", "-am", f"mm/mmu_notifier: change {no} (v{version})")
    git(
        repo,
        "format-patch",
        "-q",
        "--thread",
        "--cover-letter",
        f"-v{version}",
        "-o",
        str(out),
        "main..HEAD",
    )
    git(repo, "checkout", "-q", "main")


def _thread_mbox(repo: Path, tmp: Path) -> Path:
    """A lore-like thread: v1, a review reply, v2 (out of order), as one mbox."""
    _make_series(repo, tmp / "v1", 1, [(3, "int line3_v1;"), (20, "int line20_v1;")])
    _make_series(repo, tmp / "v2", 2, [(3, "int line3_v2;"), (20, "int line20_v2;")])
    box_path = tmp / "thread.mbox"
    box = mailbox.mbox(str(box_path))
    v1 = sorted((tmp / "v1").iterdir())
    v2 = sorted((tmp / "v2").iterdir())
    for f in [*v1, v2[0], v2[2], v2[1]]:  # cover, 2/2 before 1/2
        box.add(mailbox.mboxMessage(f.read_bytes()))
    first_v1 = mailbox.mboxMessage(v1[1].read_bytes())
    reply = mailbox.mboxMessage()
    reply["From"] = "Reviewer <rev@example.org>"
    reply["Subject"] = "Re: " + first_v1["Subject"]
    reply["Message-Id"] = "<reply-1@example.org>"
    reply["In-Reply-To"] = first_v1["Message-Id"]
    reply["References"] = first_v1["Message-Id"]
    reply.set_payload("> diff --git a/mm/mmu_notifier.c\nLooks wrong, please respin.\n")
    box.add(reply)
    box.flush()
    return box_path


def _tree_for(repo: Path):
    return resolve_tree(str(repo))


def test_mbox_thread_picks_newest_revision_in_order(tiny_repo: Path, tmp_path: Path) -> None:
    mbox = _thread_mbox(tiny_repo, tmp_path)
    series = load_series(str(mbox), _tree_for(tiny_repo))
    assert series.kind == "mbox"
    assert [p.nm for p in series.patches] == ["1/2", "2/2"]
    assert all("v2" in p.subject for p in series.patches)
    assert all(p.message_id for p in series.patches)
    tree = _tree_for(tiny_repo)
    head = apply_series(tree, series, tmp_path / "work")
    text = (tree.worktree / "mm" / "mmu_notifier.c").read_text()
    assert "line3_v2" in text and "line20_v2" in text
    assert git(tiny_repo, "rev-list", "--count", f"main..{head}") == "2"
    # The user's own checkout is untouched: kto works in a linked worktree of its own.
    assert tree.worktree != tiny_repo
    assert git(tiny_repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert "line3_v2" not in (tiny_repo / "mm" / "mmu_notifier.c").read_text()


def test_series_hash_ignores_headers_but_not_code(tiny_repo: Path, tmp_path: Path) -> None:
    mbox = _thread_mbox(tiny_repo, tmp_path)
    tree = _tree_for(tiny_repo)
    a = load_series(str(mbox), tree)
    b = load_series(str(tmp_path / "v2"), tree)  # the same v2 patches, as a directory
    assert [p.nm for p in b.patches] == ["1/2", "2/2"]  # cover letter skipped: no diff
    assert a.hash == b.hash
    c = load_series(str(tmp_path / "v1"), tree)
    assert c.hash != a.hash
    assert Series("", "none").hash == "none"


def test_directory_series_file_order(tiny_repo: Path, tmp_path: Path) -> None:
    _make_series(tiny_repo, tmp_path / "s", 1, [(3, "int a;"), (20, "int b;")])
    d = tmp_path / "s"
    names = sorted(p.name for p in d.iterdir() if "000" in p.name and "cover" not in p.name)
    (d / "series").write_text("# reversed on purpose\n" + "\n".join(reversed(names)) + "\n")
    series = load_series(str(d), _tree_for(tiny_repo))
    assert [p.subject.split()[-2] for p in series.patches] == ["2", "1"]
    (d / "series").write_text("missing.patch\n")
    with pytest.raises(UserError, match=r"missing\.patch"):
        load_series(str(d), _tree_for(tiny_repo))


def test_git_range(tiny_repo: Path, tmp_path: Path) -> None:
    git(tiny_repo, "checkout", "-q", "-b", "topic")
    (tiny_repo / "mm" / "new.c").write_text("int x;\n")
    git(tiny_repo, "add", "-A")
    git(tiny_repo, "commit", "-q", "-m", "mm: add new.c")
    git(tiny_repo, "checkout", "-q", "main")
    tree = _tree_for(tiny_repo)
    series = load_series("main..topic", tree)
    assert series.kind == "git-range"
    assert [p.subject for p in series.patches] == ["[PATCH] mm: add new.c"]
    apply_series(tree, series, tmp_path / "w")
    assert (tree.worktree / "mm" / "new.c").exists()
    with pytest.raises(UserError, match=r"not valid"):
        load_series("main..nosuchbranch", tree)


def test_bad_patches_argument_is_a_user_error(tiny_repo: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        load_series("/nonexistent/series.mbox", _tree_for(tiny_repo))


@pytest.mark.parametrize(
    ("mail", "subject", "how"),
    [
        (
            "web-archive-patch.txt",
            "mm/mmu_notifiers: look up the notifier list once in the young helpers",
            "web-archive",
        ),
        (
            "flattened-qp-reply-patch.txt",
            "mm/mmu_notifier: name the ops that set both secondary TLB and range callbacks",
            "lost newlines",
        ),
    ],
)
def test_mangled_mails_are_read_and_fail_cleanly(
    mail: str, subject: str, how: str, tiny_repo: Path, tmp_path: Path
) -> None:
    tree = _tree_for(tiny_repo)
    series = load_series(str(MAILS / mail), tree)
    assert len(series.patches) == 1
    patch = series.patches[0]
    assert subject in patch.subject
    assert how in patch.mangled
    assert "diff --git a/mm/mmu_notifier.c" in patch.text
    with pytest.raises(PatchApplyError) as err:
        apply_series(tree, series, tmp_path / "w")
    msg = str(err.value)
    assert subject in msg and "1/1" in msg and "mm/mmu_notifier.c" in msg
    assert "b4 am" in msg or "original" in msg
    # The tree is left clean at its base commit.
    assert git(tree.worktree, "status", "--porcelain") == ""
    assert git(tree.worktree, "rev-parse", "HEAD") == tree.base_commit
    assert git(tree.worktree, "rev-parse", "--abbrev-ref", "HEAD") == "kto/work"
    assert not Path(git(tree.worktree, "rev-parse", "--git-path", "rebase-apply")).exists()


@pytest.mark.integration
@pytest.mark.parametrize("mail", ["web-archive-patch.txt", "flattened-qp-reply-patch.txt"])
def test_mangled_mails_do_not_apply_to_debian_61(mail: str, tmp_path: Path) -> None:
    tree = resolve_tree("debian-6.1")
    series = load_series(str(MAILS / mail), tree)
    with tree_lock(tree):
        with pytest.raises(
            PatchApplyError,
            match=r"patch 1/1 .* does not apply to debian-6.1 .*in mm/mmu_notifier.c",
        ):
            apply_series(tree, series, tmp_path / "w")
        assert tree.git.is_clean()
        assert tree.git.out("rev-parse", "HEAD") == tree.base_commit


@pytest.mark.integration
def test_banner_series_applies_to_debian_61(tmp_path: Path) -> None:
    tree = resolve_tree("debian-6.1")
    series = load_series(str(REPO / "kernels" / "series" / "kto-banner"), tree)
    with tree_lock(tree):
        head = apply_series(tree, series, tmp_path / "w")
        assert head != tree.base_commit
        assert "kto-banner" in (tree.repo / "init" / "main.c").read_text()


def test_patch_files_and_summary_name_the_touched_files() -> None:
    from orchestrator.build.patches import Patch, Series

    text = (
        "From: A <a@example.org>\nSubject: [PATCH 1/1] x\n\nbody\n---\n"
        "diff --git a/kernel/fork.c b/kernel/fork.c\n--- a/kernel/fork.c\n+++ b/kernel/fork.c\n"
        "diff --git a/mm/old.c b/mm/new.c\nsimilarity index 90%\n"
    )
    patch = Patch("[PATCH 1/1] x", 1, 1, "id@example.org", "A <a@example.org>", text)
    assert patch.files == ["kernel/fork.c", "mm/old.c", "mm/new.c"]
    summary = Series("s.mbox", "mbox", [patch]).summary()
    assert summary["patches"][0]["files"] == ["kernel/fork.c", "mm/old.c", "mm/new.c"]
    assert "text" not in summary["patches"][0]

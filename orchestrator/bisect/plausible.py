"""Why a named commit may not be the change a bisection was after: the reasons a culprit
(or, for a fix bisection, a fix) should be looked at by a person before it is mailed to its
author.

A flag never changes the answer: the search named what the runs said. It says the answer is
implausible for the kernel that ran (a change that cannot reach that kernel: documentation,
comments, another arch's files, an image byte-identical to its parent's), that the commit
is of a kind that moves bugs around without being their cause (a merge, a revert), or that
the answer is less sure than the bot's floor for mailing anyone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.git import Git

if TYPE_CHECKING:
    from orchestrator.bisect.driver import State

# Files no kernel build reads: changing only these cannot make or fix a runtime bug.
DOC_DIRS = ("Documentation/", "LICENSES/")
DOC_FILES = frozenset({"MAINTAINERS", "CREDITS", "COPYING", "README", ".mailmap"})
DOC_SUFFIXES = (".rst", ".txt", ".md")
C_SUFFIXES = (".c", ".h")
# Enough context for every hunk to be the whole file: a comment's state at a changed line
# depends on lines far above it (a `/*` opened before the hunk).
WHOLE_FILE = "-U1000000"


def commit_info(git: Git, sha: str) -> dict[str, Any]:
    """The commit as a report or a mail names it: sha, subject, author, parents, and the
    trailers that lead to its thread."""
    fmt = "%H%n%s%n%an <%ae>%n%P%n%b"
    lines = git.out("show", "-s", f"--format={fmt}", sha).splitlines()
    body = "\n".join(lines[4:])
    trailers = [ln for ln in body.splitlines() if ln.startswith(("Link:", "Message-Id:"))]
    return {
        "sha": lines[0],
        "subject": lines[1],
        "author": lines[2],
        "parents": lines[3].split(),
        "trailers": trailers,
    }


def flags(
    git: Git,
    info: dict[str, Any],
    run_dir: Path,
    state: State,
    *,
    arch: str,
    floor: float,
    confidence: float,
) -> list[str]:
    """Human reasons the commit in `info` should not be mailed to its author as found;
    empty when nothing looks wrong. `arch`: the kto arch the probes ran (its kernel arch
    dir is the one whose files matter); `floor`: the least confidence worth a mail."""
    fix = bool(getattr(state, "fix", False))
    what = "fix" if fix else "bug"
    out = []
    parents = info["parents"]
    if len(parents) > 1:
        out.append(f"a merge commit: the {what} may come from either side")
    elif info["subject"].startswith("Revert") and not fix:
        # Reverting the culprit is the usual fix, so only a cause bisection doubts a revert.
        out.append("a revert: the bug may be what the reverted commit fixed")
    if len(parents) == 1 and (reason := content_flag(git, parents[0], info["sha"], arch)):
        out.append(reason)
    if parents and identical_image(run_dir, state, info["sha"], parents[0]):
        out.append("the kernel image is byte-identical to its parent's: not this change")
    if confidence < floor:
        out.append(f"confidence {confidence:.1%} is under the floor for mailing ({floor:.0%})")
    return out


def kernel_arch_dir(arch: str) -> str | None:
    """The directory under arch/ a kto arch's kernel builds (x86_64: x86, sparc64: sparc),
    read from where its profile says make leaves the image; None when that path says
    nothing (a profile whose image is not under arch/<dir>/)."""
    from orchestrator.config.arch import load_profile

    parts = load_profile(arch).build.image_path.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "arch" else None


def _is_doc(path: str) -> bool:
    return (
        path.startswith(DOC_DIRS)
        or path in DOC_FILES
        or path.endswith(DOC_SUFFIXES)
        or Path(path).name.startswith("README")
    )


def _other_arch(path: str, own: str | None) -> str | None:
    """arch/<dir>/ when `path` is under another arch's directory than `own`."""
    parts = path.split("/")
    if own and len(parts) > 2 and parts[0] == "arch" and parts[1] != own:
        return f"arch/{parts[1]}/"
    return None


def content_flag(git: Git, parent: str, sha: str, arch: str) -> str:
    """One reason when the change from `parent` to `sha` cannot reach `arch`'s kernel:
    it touches only documentation, comments and blank lines in C, or other arches' files
    (any mix of the three). "" when any file holds a change that can."""
    paths = git.out("diff", "--no-renames", "--name-only", parent, sha).splitlines()
    if not paths:
        return "the commit changes no file"
    own = kernel_arch_dir(arch)
    docs, others, c_files = [], set(), []
    for p in paths:
        if _is_doc(p):
            docs.append(p)
        elif other := _other_arch(p, own):
            others.add(other)
        elif p.endswith(C_SUFFIXES):
            c_files.append(p)
        else:
            return ""
    if c_files and not comments_only(git, parent, sha, c_files):
        return ""
    parts = []
    if docs:
        parts.append("documentation")
    if c_files:
        parts.append("comments and blank lines in C")
    if others:
        parts.append(f"{', '.join(sorted(others))} (a {arch} kernel builds arch/{own}/)")
    return f"changes only {' and '.join(parts)}: nothing the probed kernel runs"


def comments_only(git: Git, parent: str, sha: str, paths: list[str]) -> bool:
    """Do the diff's -/+ lines of these C files change only comments and blank lines?
    Each file's old side (context and - lines) and new side (context and + lines) are
    compared with comments and blank lines removed and spaces within a line collapsed;
    line breaks count (a preprocessor line ends at one)."""
    # Not git.out: stripping would cut a last context line of one space.
    diff = git("diff", "--no-renames", WHOLE_FILE, parent, sha, "--", *paths).stdout
    return all(_code(old) == _code(new) for old, new in _sides(diff))


def _sides(diff: str) -> list[tuple[list[str], list[str]]]:
    """Per file of a unified diff: its old and its new lines (the hunks' lines only: with
    whole-file context, the whole file). A binary file gets sides that never match."""
    files: list[tuple[list[str], list[str]]] = []
    in_hunk = False
    for line in diff.split("\n"):
        if line.startswith("diff --git "):
            files.append(([], []))
            in_hunk = False
        elif line.startswith("Binary files ") and files:
            files[-1] = (["binary: old"], ["binary: new"])
        elif line.startswith("@@"):
            in_hunk = True
        elif in_hunk and files and line[:1] in (" ", "-", "+"):
            old, new = files[-1]
            if line[0] != "+":
                old.append(line[1:])
            if line[0] != "-":
                new.append(line[1:])
    return files


def _code(lines: list[str]) -> list[str]:
    """C source without its comments: `//` to the line's end and `/* ... */` (over lines
    too) become a space, string and character literals are kept as they are (a `/*` in
    one is not a comment); then each line's spaces collapsed and blank lines dropped."""
    text = "\n".join(lines)
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        two = text[i : i + 2]
        if two == "//":
            j = text.find("\n", i)
            i = n if j < 0 else j
            out.append(" ")
        elif two == "/*":
            j = text.find("*/", i + 2)
            end = n if j < 0 else j + 2
            out.append(" " + "\n" * text.count("\n", i, end))
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return [" ".join(ln.split()) for ln in "".join(out).split("\n") if ln.strip()]


def identical_image(run_dir: Path, state: State, sha: str, parent: str) -> bool:
    """Did the probes of `sha` and of `parent` boot the same kernel image (the build cache
    hashed both)? Unknown hashes say nothing."""
    shas: dict[str, set[str]] = {}
    for r in state.runs:
        if r["commit"] not in (sha, parent):
            continue
        rec = _job_record(run_dir / r["folder"])
        image = _image_sha(Path(str(rec["kernel"]))) if rec.get("kernel") else ""
        if image:
            shas.setdefault(r["commit"], set()).add(image)
    return bool(shas.get(parent)) and shas.get(sha) == shas.get(parent)


def _job_record(job_dir: Path) -> dict[str, Any]:
    """A probe's job.json, read the way every driver reads one (records.model)."""
    from orchestrator.records.model import load_job

    return load_job(job_dir).record


def _image_sha(image: Path) -> str:
    """The image's sha256 as its build record has it (the build cache computed it once)."""
    from orchestrator.build.record import load_record

    rec = load_record(image.parent) or {}
    return str(((rec.get("artifacts") or {}).get("kernel") or {}).get("sha256") or "")

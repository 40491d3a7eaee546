"""Kernel source trees: named trees from kernels/trees.yaml, or any local git repository.

Debian's linux-source tarballs are extracted once into the cache and committed into a git
repository there, so that series apply with `git am -3` and bisect has commits to walk.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator import progress
from orchestrator.config.schema import BadYAML, safe_load
from orchestrator.errors import ConfigError, MissingDependency, UserError
from orchestrator.git import Git
from orchestrator.locks import file_lock
from orchestrator.paths import cache_dir, kernels_dir
from orchestrator.proc import run

TREES_FILE = "trees.yaml"


@dataclass(frozen=True)
class TreeSpec:
    name: str
    kind: str  # "tarball" | "git"
    tarball: Path | None = None
    package: str | None = None
    path: Path | None = None
    description: str = ""
    trusted: bool = True  # named trees are the user's own unless `trusted: false`


@dataclass(frozen=True)
class Tree:
    """A work tree kto may check out and patch, plus the commit builds start from.

    `repo` is where the commits live; `worktree` is where kto applies series and builds.
    They are the same for kto's own (tarball) trees; a user's git tree gets a linked
    worktree in kto's cache so the user's checkout is never touched.
    """

    name: str
    repo: Path
    worktree: Path
    base_commit: str
    ref: str
    describe: str
    trusted: bool = False  # declared trusted (kernels/trees.yaml): build/trust.py decides

    @property
    def git(self) -> Git:
        return Git(self.worktree)


def load_tree_specs(path: Path | None = None) -> tuple[dict[str, TreeSpec], str]:
    path = path or kernels_dir() / TREES_FILE
    try:
        data = safe_load(path.read_text())
    except (OSError, BadYAML) as exc:
        raise ConfigError(f"{path}: cannot read tree list: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("trees"), dict):
        raise ConfigError(f"{path}: expected a mapping with a `trees:` mapping")
    specs: dict[str, TreeSpec] = {}
    for name, entry in data["trees"].items():
        where = f"{path}: trees.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping")
        kind = entry.get("kind")
        trusted = entry.get("trusted", True)
        if not isinstance(trusted, bool):
            raise ConfigError(f"{where}.trusted: expected true or false")
        if kind == "tarball":
            for key in ("tarball", "package"):
                if not entry.get(key):
                    raise ConfigError(f"{where}: kind tarball needs `{key}`")
            specs[name] = TreeSpec(
                name,
                kind,
                tarball=Path(entry["tarball"]),
                package=entry["package"],
                description=entry.get("description", ""),
                trusted=trusted,
            )
        elif kind == "git":
            if not entry.get("path"):
                raise ConfigError(f"{where}: kind git needs `path`")
            specs[name] = TreeSpec(
                name,
                kind,
                path=(path.parent / entry["path"]).resolve(),
                description=entry.get("description", ""),
                trusted=trusted,
            )
        else:
            raise ConfigError(f"{where}: unknown kind {kind!r} (expected tarball or git)")
    default = data.get("default", next(iter(specs), ""))
    if default not in specs:
        raise ConfigError(f"{path}: default tree {default!r} is not in `trees`")
    return specs, default


def trees_cache() -> Path:
    return cache_dir() / "trees"


def _package_version(package: str) -> str | None:
    res = run(["dpkg-query", "-W", "-f=${Version}", package], check=False)
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else None


def _strip_debian_gitignore(src: Path) -> None:
    # Debian's tarball .gitignore ends with `/*` + `!/debian/`, which would make `git add -A`
    # add nothing at all.
    gi = src / ".gitignore"
    if not gi.exists():
        return
    lines = gi.read_text().splitlines()
    kept = [ln for ln in lines if ln.strip() not in ("/*", "!/debian/")]
    if kept != lines:
        gi.write_text("\n".join(kept) + "\n")


def prepare_tarball_tree(spec: TreeSpec) -> Path:
    """Extract the tarball into the cache and commit it (once per package version)."""
    assert spec.tarball and spec.package
    if not spec.tarball.exists():
        raise MissingDependency(f"kernel source {spec.tarball}", spec.package)
    version = _package_version(spec.package) or f"mtime{int(spec.tarball.stat().st_mtime)}"
    repo = trees_cache() / spec.name / version.replace(":", "_").replace("~", "_")
    stamp = repo / ".git" / "kto-tree-ready"
    with file_lock(trees_cache() / f"{spec.name}.lock", f"tree {spec.name}"):
        if stamp.exists():
            return repo
        if repo.exists():
            shutil.rmtree(repo)  # a half-finished extraction from a killed run
        tmp = repo.with_name(repo.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        with progress.phase(f"extract {spec.tarball.name} (once per package version)"):
            run(["tar", "-xf", spec.tarball, "-C", tmp, "--strip-components=1"])
            _strip_debian_gitignore(tmp)
        git = Git(tmp)
        with progress.phase(f"commit {spec.name} {version} into a local git repository"):
            git("init", "-q", "-b", "main")
            git("config", "gc.auto", "0")
            git("add", "-A")
            git(
                "commit",
                "-q",
                "-m",
                f"{spec.name}: {spec.package} {version}\n\nImported from {spec.tarball} by kto.",
            )
            git("tag", f"{spec.name}-{version.replace(':', '_').replace('~', '_')}")
        tmp.rename(repo)
        (repo / ".git" / "kto-tree-ready").write_text(f"{time.time()}\n")
        return repo


def tree_lock(tree: Tree):
    """Held while a tree's work tree is checked out for a series and built."""
    slug = hashlib.sha256(str(tree.repo).encode()).hexdigest()[:12]
    return file_lock(
        cache_dir() / "locks" / f"tree-{tree.name.replace('/', '_')[-40:]}-{slug}.lock",
        f"tree {tree.name} (another kto process is using it)",
    )


def resolve_tree(name_or_path: str, ref: str | None = None) -> Tree:
    """A named tree (kernels/trees.yaml) or a local git repository path, at `ref`."""
    specs, _ = load_tree_specs()
    spec = specs.get(name_or_path)
    if spec is None:
        path = Path(name_or_path).expanduser()
        if not path.exists():
            known = ", ".join(sorted(specs))
            raise UserError(
                f"unknown tree {name_or_path!r}: not a named tree and not a path",
                hint=f"use one of: {known}; or a path to a local git repository",
            )
        # A path nobody named in kernels/trees.yaml: trusted only with --trusted.
        spec = TreeSpec(str(path), "git", path=path.resolve(), trusted=False)
    repo = prepare_tarball_tree(spec) if spec.kind == "tarball" else spec.path
    assert repo is not None
    git = Git(repo)
    if not git.is_repo():
        raise UserError(
            f"tree {spec.name}: {repo} is not a git repository",
            hint="give a kernel git checkout, or a named tree from kernels/trees.yaml",
        )
    # kto's own trees never move `main` (series go on kto/work); a user's tree is taken at
    # the user's HEAD unless --ref says otherwise.
    ref = ref or ("main" if spec.kind == "tarball" else "HEAD")
    res = git("rev-parse", "--verify", f"{ref}^{{commit}}", check=False)
    if res.returncode != 0:
        raise UserError(f"tree {spec.name}: unknown ref {ref!r}", hint="give a branch, tag or sha")
    commit = res.stdout.strip()
    describe = git("describe", "--tags", "--always", commit, check=False).stdout.strip()
    worktree = repo if spec.kind == "tarball" else _kto_worktree(repo, commit)
    return Tree(spec.name, repo, worktree, commit, ref, describe or commit[:12], spec.trusted)


def _kto_worktree(repo: Path, commit: str) -> Path:
    """A linked worktree of a user's repository, owned by kto (created once, then reused)."""
    slug = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:12]
    wt = cache_dir() / "worktrees" / f"{repo.name}-{slug}"
    with file_lock(cache_dir() / "locks" / f"worktree-{slug}.lock", f"worktree of {repo}"):
        if not (wt / ".git").exists():
            git = Git(repo)
            git("worktree", "prune")
            if wt.exists():
                shutil.rmtree(wt)
            wt.parent.mkdir(parents=True, exist_ok=True)
            with progress.phase(f"check out a kto worktree of {repo} (once)"):
                git("worktree", "add", "--detach", str(wt), commit)
    return wt

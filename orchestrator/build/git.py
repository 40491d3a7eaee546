"""Every git call goes through here; failures raise with git's stderr."""

from __future__ import annotations

from pathlib import Path

from orchestrator.proc import Result, run


class Git:
    def __init__(self, repo: Path) -> None:
        self.repo = Path(repo)

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> Result:
        # A fixed identity and no hooks/editor: kto's commits must not depend on user config.
        return run(
            [
                "git",
                "-c",
                "user.name=kto",
                "-c",
                "user.email=kto@localhost",
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "advice.detachedHead=false",
                *args,
            ],
            cwd=self.repo,
            check=check,
            input=input,
            env={"GIT_EDITOR": "true", "GIT_TERMINAL_PROMPT": "0"},
        )

    def out(self, *args: str) -> str:
        return self(*args).stdout.strip()

    def is_repo(self) -> bool:
        if not self.repo.is_dir():
            return False
        res = self("rev-parse", "--git-dir", check=False)
        return res.returncode == 0

    def is_clean(self) -> bool:
        return self.out("status", "--porcelain", "--untracked-files=no") == ""

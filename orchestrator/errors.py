"""Error families and the exit codes they map to, decided in one place.

Exit codes (documented in README):
  0  success / PASS / nothing found
  1  the kernel is wrong: FAIL verdict, findings in `kto parse`
  2  bad input: usage error, unknown tree/arch, bad YAML, missing file
  3  infrastructure error (ERROR/MISS): QEMU died, build tool crashed, timeout without evidence
  4  the patch series does not apply to the tree
  5  the kernel does not build with this series/config (compile or config error)
  6  a host dependency is missing: run `make setup`
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_PATCH = 4
EXIT_BUILD = 5
EXIT_MISSING_DEP = 6


class KtoError(Exception):
    """Base class: `message` says what went wrong, `hint` says what to do."""

    exit_code = EXIT_INFRA

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "hint": self.hint, "exit_code": self.exit_code}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> KtoError:
        """An error another kto process recorded (to_dict), with its exit code."""
        err = cls(str(doc.get("message") or "unknown error"), doc.get("hint"))
        err.exit_code = int(doc.get("exit_code") or EXIT_INFRA)
        return err

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UserError(KtoError):
    """Bad input from the user: a name, a file or an option."""

    exit_code = EXIT_USAGE


class ConfigError(UserError):
    """A data file (YAML profile, fragment, test description) is invalid."""


class InfraError(KtoError):
    """The harness or the host failed, not the kernel."""

    exit_code = EXIT_INFRA


class MissingDependency(KtoError):
    """A host tool or package is not installed."""

    exit_code = EXIT_MISSING_DEP

    def __init__(self, what: str, package: str) -> None:
        super().__init__(
            f"{what} is not installed (Debian package: {package})",
            hint="run `make setup` (installs every host dependency)",
        )
        self.package = package


class PatchApplyError(KtoError):
    """The series does not apply: a verdict about the series, not a crash."""

    exit_code = EXIT_PATCH


class BuildError(KtoError):
    """The kernel failed to configure or compile with the requested inputs."""

    exit_code = EXIT_BUILD


class KconfigDropped(BuildError):
    """Fragments asked for options that olddefconfig removed (unmet dependencies)."""

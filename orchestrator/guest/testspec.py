"""Guest tests as data: guest-tests/<name>/test.yaml, its schema, and judging a workload.

This module owns the test description: loading and validation (errors name the file and the
key), what a test needs from the build (Kconfig fragments and fragment sets), what it adds to
the boot (kernel parameters, run.sh arguments, duration, time limit), which arches it cannot
run on and why (a SKIP, never a PASS), and its pass criteria. Judging the console against
them is guest/monitor.py; one boot's parameters are guest/workload.py.

    name: rcutorture-onoff
    description: ...
    arches: [x86_64, arm64]                 # where it runs
    skip: {sparc64: "sun4u has one CPU"}    # where it does not, and why (SKIP verdict)
    kconfig: [stress]                       # fragment sets (arch profile) or fragment names
    duration_s: {default: 30, arch: {sparc64: 20}, accel: {kvm: 120}}
    timeout_s: 120                          # allowance beyond the duration
    silence_s: 40                           # no console output this long: stuck (default
                                            # 120; a test that prints every 10 s says less)
    cmdline:                                # kernel parameters; "{duration}" is replaced,
      rcutorture.shutdown_secs: "{duration}"
      rcutorture.onoff_interval: {jiffies: 0.8}   # seconds -> jiffies at the kernel's HZ
    args: {mode: random}                    # run.sh arguments, rendered as key=value words
    end: kernel                             # test (default): run.sh ends it; kernel: the
                                            # kernel powers off by itself (shutdown_secs)
    pass:
      required: [{regex: "End of test: SUCCESS", missing: "rcutorture: no End of test line"}]
      results: [hotplug]                    # result lines (guest_protocol.RESULT) expected
      forbidden: [{regex: "created two mmu_notifier's", title: "..."}]
    metrics: [rcutorture]                   # console metric parsers (METRIC_PARSERS)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.config.arch import known_arches, load_profile
from orchestrator.config.schema import BadYAML, safe_load
from orchestrator.errors import ConfigError, UserError
from orchestrator.guest.metrics import METRIC_PARSERS
from orchestrator.guest.protocol import RESERVED_TESTS, TEST_NAME_RE
from orchestrator.parser.patterns import CustomPattern
from orchestrator.paths import guest_tests_dir

ARG_RE = re.compile(r"^[A-Za-z0-9_.,:/+-]*$")  # run.sh argument values: one shell word
ENDS = ("test", "kernel")
ACCELS = ("tcg", "kvm")
KEYS = {
    "name",
    "description",
    "arches",
    "skip",
    "timeout_s",
    "silence_s",
    "kconfig",
    "duration_s",
    "cmdline",
    "args",
    "end",
    "pass",
    "metrics",
}


@dataclass(frozen=True)
class Jiffies:
    """A kernel parameter given in seconds but taken in jiffies (rcutorture.onoff_interval)."""

    seconds: float

    def render(self, hz: int) -> str:
        return str(max(1, round(self.seconds * hz)))


@dataclass(frozen=True)
class Duration:
    default: int
    arch: dict[str, int] = field(default_factory=dict)
    accel: dict[str, int] = field(default_factory=dict)

    def for_run(self, arch: str, accel: str) -> int:
        return self.arch.get(arch) or self.accel.get(accel) or self.default


@dataclass(frozen=True)
class Required:
    regex: str
    missing: str  # the verdict title when no console line matched


@dataclass(frozen=True)
class Criteria:
    required: tuple[Required, ...] = ()
    results: tuple[str, ...] = ()
    forbidden: tuple[CustomPattern, ...] = ()


@dataclass(frozen=True)
class GuestTest:
    name: str
    description: str
    arches: tuple[str, ...]
    timeout_s: int
    dir: Path
    skip: dict[str, str] = field(default_factory=dict)
    kconfig: tuple[str, ...] = ()
    duration: Duration | None = None
    cmdline: dict[str, str | Jiffies] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    end: str = "test"
    criteria: Criteria = field(default_factory=Criteria)
    metrics: tuple[str, ...] = ()
    silence_s: int | None = None  # None: outcome.Timeouts' default

    def files(self) -> list[Path]:
        """Files packed as they are (everything but hidden files and C sources), sorted."""
        return sorted(
            p
            for p in self.dir.rglob("*")
            if p.is_file()
            and p.suffix != ".c"
            and not any(part.startswith(".") for part in p.relative_to(self.dir).parts)
        )

    def helpers(self) -> list[Path]:
        """C sources compiled into static helpers (top level of the test folder)."""
        return sorted(self.dir.glob("*.c"))

    @property
    def path(self) -> Path:
        return self.dir / "test.yaml"

    def skip_reason(self, arch: str) -> str | None:
        """Why the test is a SKIP on `arch` (None: it runs there). Unknown: a UserError."""
        if arch in self.arches:
            return None
        if arch in self.skip:
            return self.skip[arch]
        raise UserError(
            f"guest test {self.name!r} does not support {arch}",
            hint=f"its test.yaml lists arches: {', '.join(self.arches)}",
        )

    def fragments_for(self, arch: str) -> list[str]:
        """Kconfig fragment names this test needs on `arch` (fragment sets expanded)."""
        sets = load_profile(arch).fragment_sets
        out: list[str] = []
        for name in self.kconfig:
            for frag in sets.get(name, (name,)):
                if frag not in out:
                    out.append(frag)
        return out

    def duration_for(self, arch: str, accel: str, override: int | None = None) -> int | None:
        if override is not None:
            if self.duration is None:
                raise UserError(
                    f"guest test {self.name!r} has no duration (no `duration_s` in {self.path})",
                    hint="drop --duration for this test",
                )
            return override
        return self.duration.for_run(arch, accel) if self.duration else None

    def time_limit(self, duration: int | None) -> int:
        """The host's limit for the test phase: the duration plus the test's allowance."""
        return self.timeout_s + (duration or 0)

    def render_cmdline(self, duration: int | None, hz: int) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in self.cmdline.items():
            if isinstance(value, Jiffies):
                out[key] = value.render(hz)
            else:
                out[key] = _fill(value, duration)
        return out

    def render_args(self, duration: int | None, overrides: dict[str, str]) -> dict[str, str]:
        args = {k: _fill(v, duration) for k, v in self.args.items()}
        for k, v in overrides.items():
            if not ARG_RE.match(v) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k):
                raise UserError(
                    f"--arg {k}={v}: keys are identifiers, values one word of "
                    "letters, digits and _.,:/+-"
                )
            args[k] = v
        return args


def _fill(value: str, duration: int | None) -> str:
    if "{duration}" in value:
        if duration is None:
            raise UserError(f"{value!r} needs a duration and the test has none")
        value = value.replace("{duration}", str(duration))
    return value


def args_string(args: dict[str, str]) -> str:
    """run.sh arguments as /init word-splits them: key=value words."""
    return " ".join(f"{k}={v}" for k, v in args.items())


def merge_cmdline(*layers: dict[str, str]) -> list[str]:
    """Kernel parameters from several layers (fragment defaults, the test): later wins."""
    merged: dict[str, str] = {}
    for layer in layers:
        merged.update(layer)
    return [f"{k}={v}" for k, v in merged.items()]


# --------------------------------------------------------------------------------------------
# loading and validation


class _Check:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.path}: `{key}` {what}")

    def str_list(self, data: dict[str, Any], key: str) -> tuple[str, ...]:
        v = data.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(key, "must be a list of strings")
        return tuple(v)

    def seconds(self, v: Any, key: str) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise self.fail(key, "must be a positive integer (seconds)")
        return v


def _duration(c: _Check, v: Any) -> Duration | None:
    if v is None:
        return None
    if isinstance(v, int):
        return Duration(c.seconds(v, "duration_s"))
    if not isinstance(v, dict) or "default" not in v:
        raise c.fail("duration_s", "must be seconds or {default: S, arch: {...}, accel: {...}}")
    extra = set(v) - {"default", "arch", "accel"}
    if extra:
        raise c.fail("duration_s", f"has unknown key(s) {', '.join(sorted(extra))}")
    per: dict[str, dict[str, int]] = {}
    for sub, allowed in (("arch", known_arches()), ("accel", list(ACCELS))):
        m = v.get(sub, {})
        if not isinstance(m, dict) or set(m) - set(allowed):
            raise c.fail(f"duration_s.{sub}", f"must map {'/'.join(allowed)} to seconds")
        per[sub] = {k: c.seconds(s, f"duration_s.{sub}.{k}") for k, s in m.items()}
    return Duration(c.seconds(v["default"], "duration_s.default"), per["arch"], per["accel"])


def _cmdline(c: _Check, v: Any) -> dict[str, str | Jiffies]:
    if not isinstance(v, dict):
        raise c.fail("cmdline", "must map kernel parameters to values")
    out: dict[str, str | Jiffies] = {}
    for k, val in v.items():
        key = f"cmdline.{k}"
        if not isinstance(k, str) or not re.match(r"^[A-Za-z0-9_.-]+$", k):
            raise c.fail(key, "is not a kernel parameter name")
        if isinstance(val, dict):
            if set(val) != {"jiffies"} or not isinstance(val["jiffies"], int | float):
                raise c.fail(key, "as a mapping must be {jiffies: SECONDS}")
            out[k] = Jiffies(float(val["jiffies"]))
        elif isinstance(val, str | int) and not isinstance(val, bool):
            if " " in str(val):
                raise c.fail(key, "must not contain spaces")
            out[k] = str(val)
        else:
            raise c.fail(key, "must be a string, a number or {jiffies: SECONDS}")
    return out


def _criteria(c: _Check, v: Any) -> Criteria:
    if v is None:
        return Criteria()
    if not isinstance(v, dict) or set(v) - {"required", "results", "forbidden"}:
        raise c.fail("pass", "must be a mapping of required / results / forbidden")
    required = []
    for i, r in enumerate(v.get("required", []) or []):
        if not isinstance(r, dict) or set(r) != {"regex", "missing"}:
            raise c.fail(f"pass.required[{i}]", "must be {regex: ..., missing: TITLE}")
        required.append(Required(_regex(c, r["regex"], f"pass.required[{i}]"), str(r["missing"])))
    forbidden = []
    for i, r in enumerate(v.get("forbidden", []) or []):
        if not isinstance(r, dict) or "regex" not in r or set(r) - {"regex", "title"}:
            raise c.fail(f"pass.forbidden[{i}]", "must be {regex: ..., title: TITLE}")
        regex = _regex(c, r["regex"], f"pass.forbidden[{i}]")
        forbidden.append(CustomPattern(regex, r.get("title")))
    return Criteria(tuple(required), c.str_list(v, "results"), tuple(forbidden))


def _regex(c: _Check, v: Any, key: str) -> str:
    if not isinstance(v, str) or not v:
        raise c.fail(key, "needs a non-empty regex")
    try:
        re.compile(v)
    except re.error as exc:
        raise c.fail(key, f"regex {v!r} does not compile: {exc}") from exc
    return v


def load_test_file(path: Path) -> GuestTest:
    try:
        data = safe_load(path.read_text())
    except (OSError, BadYAML) as exc:
        raise ConfigError(f"{path}: cannot read test description: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping")
    c = _Check(path)
    name = data.get("name")
    if name != path.parent.name:
        raise ConfigError(f"{path}: `name` is {name!r}, must match the folder name")
    if not TEST_NAME_RE.match(name) or name in RESERVED_TESTS:
        raise ConfigError(f"{path}: `name` {name!r} is reserved or not a plain word")
    extra = set(data) - KEYS
    if extra:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(extra))}")
    arches = data.get("arches")
    if not isinstance(arches, list) or not arches:
        raise ConfigError(f"{path}: `arches` must be a non-empty list")
    unknown = sorted(set(map(str, arches)) - set(known_arches()))
    if unknown:
        raise ConfigError(f"{path}: `arches` has unknown arch(es) {', '.join(unknown)}")
    timeout = data.get("timeout_s")
    if not isinstance(timeout, int) or timeout < 1:
        raise ConfigError(f"{path}: `timeout_s` must be a positive integer (seconds)")
    skip = data.get("skip", {}) or {}
    if not isinstance(skip, dict) or not all(isinstance(r, str) and r for r in skip.values()):
        raise c.fail("skip", "must map an arch to the reason the test cannot run there")
    for arch in skip:
        if arch not in known_arches() or arch in arches:
            raise c.fail(f"skip.{arch}", "must be a known arch that is not in `arches`")
    end = data.get("end", "test")
    if end not in ENDS:
        raise c.fail("end", f"must be one of {', '.join(ENDS)}")
    args = data.get("args", {}) or {}
    if not isinstance(args, dict):
        raise c.fail("args", "must map run.sh argument names to values")
    for k, v in args.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(k)) or not ARG_RE.match(
            str(v).replace("{duration}", "")
        ):
            raise c.fail(f"args.{k}", "must be an identifier with a one-word value")
    test = GuestTest(
        name=name,
        description=str(data.get("description", "")),
        arches=tuple(arches),
        timeout_s=timeout,
        dir=path.parent,
        skip={str(k): v for k, v in skip.items()},
        kconfig=c.str_list(data, "kconfig"),
        duration=_duration(c, data.get("duration_s")),
        cmdline=_cmdline(c, data.get("cmdline", {}) or {}),
        args={str(k): str(v) for k, v in args.items()},
        end=end,
        criteria=_criteria(c, data.get("pass")),
        metrics=c.str_list(data, "metrics"),
        silence_s=None
        if data.get("silence_s") is None
        else c.seconds(data["silence_s"], "silence_s"),
    )
    for m in test.metrics:
        if m not in METRIC_PARSERS:
            raise c.fail(
                "metrics", f"has unknown parser {m!r} (known: {', '.join(METRIC_PARSERS)})"
            )
    uses_duration = any("{duration}" in str(v) for v in [*test.cmdline.values(), *args.values()])
    if uses_duration and test.duration is None:
        raise c.fail("duration_s", "is required: `cmdline` or `args` use {duration}")
    from orchestrator.build.kconfig import known_fragments

    for arch in test.arches:
        sets = load_profile(arch).fragment_sets
        for k in test.kconfig:
            if k not in sets and k not in known_fragments():
                raise c.fail(
                    "kconfig",
                    f"names {k!r}: neither a fragment set of configs/arch/{arch}.yaml nor a "
                    "fragment in configs/kconfig/",
                )
    return test


def list_tests(arch: str | None = None) -> list[GuestTest]:
    """Every folder of guest-tests/ with a test.yaml (that supports `arch`, if given)."""
    tests = [load_test_file(p) for p in sorted(guest_tests_dir().glob("*/test.yaml"))]
    return [t for t in tests if arch is None or arch in t.arches]


def load_test(name: str) -> GuestTest:
    path = guest_tests_dir() / name / "test.yaml"
    if not TEST_NAME_RE.match(name) or not path.is_file():
        known = ", ".join(t.name for t in list_tests()) or "none"
        raise UserError(f"unknown guest test {name!r}", hint=f"known tests: {known}")
    return load_test_file(path)


def test_timeout(name: str) -> int | None:
    """The test's own time limit in seconds (test.yaml `timeout_s`); None for command jobs."""
    if name in RESERVED_TESTS:
        return None
    return load_test(name).timeout_s

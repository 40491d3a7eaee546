"""Guest workloads as data: test.yaml validation, rendering, metrics from real consoles,
pass criteria on recorded consoles (orchestrator/guest/testspec.py, monitor.py, workload.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, UserError
from orchestrator.guest import monitor, workload
from orchestrator.guest import testspec as workloads
from orchestrator.parser import parse_text
from orchestrator.records.outcome import ConsoleOutcome
from orchestrator.records.verdict import Status, judge

GOLDEN = Path(__file__).parent / "parser" / "golden"
STRESS_X86 = ["base-x86_64", "debug", "lockdep", "rcutorture", "mm-stress", "kvm-x86_64"]


def _record(frags: list[str]) -> dict:
    return {"inputs": {"fragments": [{"name": f} for f in frags]}}


# ------------------------------------------------------------------------------ the tests


def test_every_guest_test_loads_and_stress_tests_share_one_kernel() -> None:
    tests = {t.name: t for t in workloads.list_tests()}
    assert {"smoke", "rcutorture", "rcutorture-onoff", "hotplug", "kvm-mmu-notifier"} <= set(tests)
    assert {"mm-churn", "stress-mm"} <= set(tests)
    for arch in ("x86_64", "arm64", "sparc64"):
        sets = {
            tuple(t.fragments_for(arch)) for t in tests.values() if t.kconfig and arch in t.arches
        }
        assert len(sets) == 1, f"{arch}: stress tests ask for different kernels: {sets}"
    assert tests["smoke"].fragments_for("x86_64") == []
    assert "kvm-x86_64" in tests["kvm-mmu-notifier"].fragments_for("x86_64")
    assert "kvm-arm64" in tests["kvm-mmu-notifier"].fragments_for("arm64")


def test_honest_skips_per_arch() -> None:
    hotplug = workloads.load_test("hotplug")
    assert "one CPU" in (hotplug.skip_reason("sparc64") or "")
    assert hotplug.skip_reason("x86_64") is None
    assert "no KVM" in (workloads.load_test("kvm-mmu-notifier").skip_reason("sparc64") or "")
    assert workloads.load_test("rcutorture").skip_reason("sparc64") is None
    assert workloads.load_test("mm-churn").skip_reason("sparc64") is None


def _write(tmp_path: Path, body: str) -> Path:
    d = tmp_path / "t1"
    d.mkdir(exist_ok=True)
    (d / "test.yaml").write_text("name: t1\narches: [x86_64]\ntimeout_s: 10\n" + body)
    return d / "test.yaml"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("skip: {x86_64: why}\n", r"`skip.x86_64` must be a known arch that is not in `arches`"),
        ("skip: {sparc64: ''}\n", r"`skip` must map an arch"),
        ("kconfig: [no-such-fragment]\n", r"`kconfig` names 'no-such-fragment'"),
        ("duration_s: 0\n", r"`duration_s` must be a positive integer"),
        ("duration_s: {default: 5, arch: {vax: 1}}\n", r"`duration_s.arch` must map"),
        ("cmdline: {a.b: {seconds: 1}}\n", r"`cmdline.a.b` as a mapping must be \{jiffies"),
        ("cmdline: {a.b: 'x y'}\n", r"`cmdline.a.b` must not contain spaces"),
        ("cmdline: {a.b: '{duration}'}\n", r"`duration_s` is required"),
        ("end: never\n", r"`end` must be one of test, kernel"),
        ("pass: {required: [{regex: '('}]}\n", r"pass.required\[0\]"),
        ("pass: {required: [{regex: '(', missing: t}]}\n", r"does not compile"),
        ("pass: {forbidden: [{title: t}]}\n", r"`pass.forbidden\[0\]` must be"),
        ("pass: {maybe: []}\n", r"`pass` must be a mapping"),
        ("metrics: [perf]\n", r"`metrics` has unknown parser 'perf'"),
        ("args: {'bad key': 1}\n", r"`args.bad key`"),
        ("colour: red\n", r"unknown key\(s\) colour"),
        ("silence_s: 0\n", r"`silence_s` must be a positive integer"),
        ("silence_s: soon\n", r"`silence_s` must be a positive integer"),
    ],
)
def test_bad_test_yaml_names_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError, match=message) as exc:
        workloads.load_test_file(path)
    assert str(path) in str(exc.value)


def test_unknown_arch_without_a_skip_reason_is_a_user_error() -> None:
    with pytest.raises(UserError, match="does not support sparc64"):
        workloads.load_test("kvm-mmu-notifier").__class__(
            "x", "", ("x86_64",), 1, Path(".")
        ).skip_reason("sparc64")


def test_silence_limit_from_the_test_unless_the_user_gives_one(tmp_path: Path) -> None:
    from orchestrator.job.plan import plan_job, timeouts
    from orchestrator.records.spec import BootOptions, JobSpec

    kernel = str(tmp_path / "bzImage")
    Path(kernel).write_bytes(b"not booted: only planned")
    rcu = plan_job(JobSpec(arch="x86_64", test="rcutorture", kernel=kernel), None)
    assert timeouts(rcu, None).silence == workloads.load_test("rcutorture").silence_s == 20
    smoke = plan_job(JobSpec(arch="x86_64", test="smoke", kernel=kernel), None)
    assert timeouts(smoke, None).silence == 120.0  # the default: smoke says nothing
    given = JobSpec(
        arch="x86_64", test="rcutorture", kernel=kernel, boot=BootOptions(silence_timeout=7)
    )
    assert timeouts(plan_job(given, None), None).silence == 7.0


# ------------------------------------------------------------------------------ rendering


def test_rcutorture_onoff_cmdline_jiffies_and_duration() -> None:
    t = workloads.load_test("rcutorture-onoff")
    p = workload.plan(
        t, "x86_64", "tcg", duration=60, build_record=_record(STRESS_X86), config_text=None
    )
    assert "rcutorture.torture_type=rcu" in p.cmdline
    assert "rcutorture.torture_type=none" not in p.cmdline  # the test's own value wins
    assert "rcutorture.onoff_interval=200" in p.cmdline  # 0.8 s at HZ=250 (assumed)
    assert "rcutorture.shutdown_secs=60" in p.cmdline
    assert p.args == "duration=60"
    assert p.time_limit == t.timeout_s + 60
    p1000 = workload.plan(t, "arm64", "tcg", config_text="CONFIG_X=y\nCONFIG_HZ=1000\n")
    assert "rcutorture.onoff_interval=800" in p1000.cmdline
    assert p1000.record()["hz_source"] == "kernel .config"
    assert p1000.duration == t.duration.default  # type: ignore[union-attr]


def test_rcutorture_kernel_running_another_test_gets_torture_type_none() -> None:
    for name in ("smoke", "hotplug"):
        p = workload.plan(
            workloads.load_test(name), "x86_64", "tcg", build_record=_record(STRESS_X86)
        )
        assert "rcutorture.torture_type=none" in p.cmdline
    plain = workload.plan(
        workloads.load_test("smoke"), "x86_64", "tcg", build_record=_record(["base-x86_64"])
    )
    assert plain.cmdline == []


def test_kernel_without_the_tests_fragments_is_refused() -> None:
    with pytest.raises(UserError, match=r"needs Kconfig fragment.*kvm-x86_64") as exc:
        workload.plan(
            workloads.load_test("kvm-mmu-notifier"),
            "x86_64",
            "tcg",
            build_record=_record(["base-x86_64", "debug", "lockdep", "rcutorture", "mm-stress"]),
        )
    assert "kto run --test kvm-mmu-notifier" in str(exc.value)


def test_duration_overrides_and_args() -> None:
    d = workloads.Duration(30, arch={"sparc64": 10}, accel={"kvm": 120})
    assert d.for_run("x86_64", "tcg") == 30
    assert d.for_run("x86_64", "kvm") == 120
    assert d.for_run("sparc64", "kvm") == 10
    hp = workloads.load_test("hotplug")
    args = hp.render_args(12, {"seed": "1234", "mode": "sequential"})
    assert args == {"duration": "12", "mode": "sequential", "seed": "1234"}
    with pytest.raises(UserError, match="--arg"):
        hp.render_args(12, {"seed": "1; reboot"})
    with pytest.raises(UserError, match="has no duration"):
        workloads.load_test("smoke").duration_for("x86_64", "tcg", 10)


# ------------------------------------------------------------------------------ metrics


def _feed(mon: monitor.WorkloadMonitor, path: Path) -> list[str]:
    lines = path.read_text(errors="replace").splitlines()
    for line in lines:
        mon.feed(line)
    return lines


@pytest.mark.parametrize(
    ("log", "gps", "onoff", "pipe0"),
    [
        ("clean-x86-tcg-rcutorture-smp2.log", 1621, (15, 15, 15, 15), 3143849),
        ("clean-arm64-tcg-rcutorture-smp2.log", 1773, (22, 22, 23, 23), 1354467),
    ],
)
def test_rcutorture_metrics_from_real_consoles(
    log: str, gps: int, onoff: tuple[int, ...], pipe0: int
) -> None:
    mon = monitor.WorkloadMonitor(workloads.load_test("rcutorture-onoff"), duration=60)
    _feed(mon, GOLDEN / log)
    m = mon.metrics()["rcutorture"]
    assert m["grace_periods"] == gps
    assert m["grace_periods_per_s"] == round(gps / 60, 2)
    assert tuple(m["onoff"].values()) == onoff
    assert m["reader_pipe"][0] == pipe0 and m["reader_pipe_errors"] == 0
    assert m["end"] == "SUCCESS" and m["torture_type"] == "rcu"
    assert m["stats_lines"] >= 4


def test_result_lines_become_metrics() -> None:
    line = (
        '[ 12.3] <<KTO>> result hotplug status=FAIL reason="cpu did not come back online" '
        "cpu=1 cycles=40 cycles_per_s=25.50 mode=random seed=99"
    )
    name, fields = monitor.parse_result_line(line) or ("", {})
    assert name == "hotplug" and fields["reason"] == "cpu did not come back online"
    mon = monitor.WorkloadMonitor(workloads.load_test("hotplug"), duration=20)
    mon.feed(line)
    m = mon.metrics()["hotplug"]
    assert m["cycles"] == 40 and m["cycles_per_s"] == 25.5 and m["seed"] == 99
    assert monitor.parse_result_line("<<KTO>> test-end hotplug rc=0") is None


# ------------------------------------------------------------------------------ pass criteria


def _kernel_ended(**kw) -> ConsoleOutcome:
    o = ConsoleOutcome(boot_ok=True, test_started=True, qemu_exit=0)
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def _judge_console(test: str, lines: list[str], outcome: ConsoleOutcome):
    t = workloads.load_test(test)
    mon = monitor.WorkloadMonitor(t, duration=60)
    for line in lines:
        mon.feed(line)
    findings = [f.to_dict() for f in parse_text("\n".join(lines), t.criteria.forbidden)]
    return monitor.evaluate(t, judge(outcome, findings), outcome, mon)


def test_rcutorture_recorded_console_passes_when_the_kernel_ends_it() -> None:
    lines = (GOLDEN / "clean-x86-tcg-rcutorture-smp2.log").read_text().splitlines()
    v = _judge_console("rcutorture-onoff", lines, _kernel_ended())
    assert v.status is Status.PASS, v.reason


def test_rcutorture_without_end_line_is_fail() -> None:
    lines = (GOLDEN / "clean-arm64-tcg-rcutorture-smp2.log").read_text().splitlines()
    cut = [ln for ln in lines if "End of test" not in ln]
    v = _judge_console("rcutorture-onoff", cut, _kernel_ended())
    assert v.status is Status.FAIL
    assert v.title == "rcutorture: no End of test: SUCCESS line"


def test_rcutorture_failure_line_is_a_finding() -> None:
    lines = (GOLDEN / "clean-x86-tcg-rcutorture-smp2.log").read_text().splitlines()
    bad = [ln.replace("End of test: SUCCESS", "End of test: FAILURE") for ln in lines]
    v = _judge_console("rcutorture", bad, _kernel_ended())
    assert v.status is Status.FAIL and v.title and "End of test: FAILURE" in v.title


def test_rcutorture_killed_guest_stays_an_infra_or_hang_verdict() -> None:
    lines = (GOLDEN / "clean-x86-tcg-rcutorture-smp2.log").read_text().splitlines()[:200]
    v = _judge_console(
        "rcutorture", lines, _kernel_ended(killed="test did not finish", qemu_exit=None)
    )
    assert v.status is Status.ERROR


def test_mmu_notifier_line_in_a_mail_is_a_fail_finding() -> None:
    lines = (GOLDEN / "mail-qp-mmu-notifier.log").read_text(errors="replace").splitlines()
    lines += ["<<KTO>> result kvm-mmu-notifier status=PASS iterations=10"]
    v = _judge_console("kvm-mmu-notifier", lines, _kernel_ended(test_rc=0))
    assert v.status is Status.FAIL
    titles = [f["title"] for f in v.findings]
    assert "mmu_notifier: created two mmu_notifier's with invalidate_range_end()" in titles


def _result_outcome(rc: int) -> ConsoleOutcome:
    return _kernel_ended(test_rc=rc, poweroff_marker=True)


def test_hotplug_console_with_result_lines() -> None:
    clean = (GOLDEN / "clean-x86-tcg-hotplug-smp2.log").read_text().splitlines()
    ok = "<<KTO>> result hotplug status=PASS cycles=1000 cycles_per_s=25.5"
    assert _judge_console("hotplug", [*clean, ok], _result_outcome(0)).status is Status.PASS
    bad = '<<KTO>> result hotplug status=FAIL reason="cpu did not come back online" cpu=1'
    v = _judge_console("hotplug", [*clean, bad], _result_outcome(1))
    assert v.status is Status.FAIL
    assert v.title == "kto: hotplug: cpu did not come back online"
    v = _judge_console("hotplug", clean, _result_outcome(0))
    assert v.status is Status.ERROR and "printed no result line" in v.reason
    skip = '<<KTO>> result hotplug status=SKIP reason="no hotpluggable CPU besides cpu0"'
    v = _judge_console("hotplug", [*clean, skip], _result_outcome(0))
    assert v.status is Status.SKIP and "no hotpluggable CPU" in v.reason


def test_composed_test_kvm_skip_is_a_note_not_a_skip() -> None:
    lines = [
        "<<KTO>> result hotplug status=PASS cycles=10",
        '<<KTO>> result kvm-mmu-notifier status=SKIP reason="KVM unavailable in the guest"',
        "<<KTO>> result mm-churn status=PASS forks=100",
    ]
    v = _judge_console("stress-mm", lines, _result_outcome(0))
    assert v.status is Status.PASS and "kvm-mmu-notifier skipped" in v.reason
    lines[0] = '<<KTO>> result hotplug status=FAIL reason="cpu offline failed"'
    assert _judge_console("stress-mm", lines, _result_outcome(1)).status is Status.FAIL


def test_kernel_warning_beats_a_passing_result_line() -> None:
    mail = (GOLDEN / "mail-quoted-rcutorture.log").read_text(errors="replace").splitlines()
    v = _judge_console(
        "hotplug", [*mail, "<<KTO>> result hotplug status=PASS cycles=3"], _result_outcome(0)
    )
    assert v.status is Status.FAIL and v.title == "WARNING in __mmdrop"


@pytest.mark.parametrize(
    ("frags", "expected"),
    [(STRESS_X86, True), (["base-x86_64", "debug"], False)],
)
def test_a_command_boot_gets_the_fragments_kernel_parameters(
    tmp_path: Path, frags: list[str], expected: bool
) -> None:
    """`kto boot KERNEL -- CMD` has no workload, but its kernel's built-in rcutorture must
    still be told not to start (cmdline.yaml), or it runs beside every command."""
    from orchestrator.job.boot_stage import shell_argv
    from orchestrator.job.plan import Kernel, plan_job
    from orchestrator.records.spec import BootOptions, JobSpec

    image = tmp_path / "bzImage"
    image.write_bytes(b"not booted: only planned")
    spec = JobSpec(arch="x86_64", kernel=str(image), boot=BootOptions(accel="tcg"))
    argv, _port = shell_argv(plan_job(spec, None), Kernel(image, _record(frags)))
    append = argv[argv.index("-append") + 1]
    assert ("rcutorture.torture_type=none" in append.split()) is expected, append

"""Robust input: prefixes, caller ids, CRLF, NULs, binary garbage, quoting, streaming."""

from __future__ import annotations

from pathlib import Path

import parser_snippets as s

from orchestrator.parser import ConsoleParser, parse_file, parse_text

WARNING_TITLE = "WARNING in __mmdrop"


def _titles(text: str) -> list[str]:
    return [f.title for f in parse_text(text)]


def test_syslog_level_prefixes() -> None:
    text = "".join(f"<4>{line}\n" for line in s.X86_WARNING.splitlines())
    assert _titles(text) == [WARNING_TITLE]


def test_syslog_level_before_timestamp() -> None:
    text = "".join(f"<4>{line}\n" for line in s.stamp(s.X86_WARNING).splitlines())
    assert _titles(text) == [WARNING_TITLE]


def test_host_prefix_and_qemu_command_line() -> None:
    body = s.stamp(s.ARM64_WARNING)
    text = "# cmd: qemu-system-aarch64 -M virt -smp 2\n" + "".join(
        f"[  12.{i:03d}] {line}\n" for i, line in enumerate(body.splitlines())
    )
    findings = parse_text(text)
    assert [f.title for f in findings] == [WARNING_TITLE]
    assert findings[0].first_line == 3
    assert findings[0].report.startswith("------------[ cut here ]")


def test_crlf_and_nuls() -> None:
    text = s.stamp(s.X86_WARNING).replace("\n", "\r\n").replace("WARNING", "WAR\x00NING", 1)
    assert _titles(text) == [WARNING_TITLE]


def test_caller_ids_with_interleaved_tasks() -> None:
    """Two tasks print at once; each report keeps only its own task's lines."""
    warning = s.stamp(s.X86_WARNING, caller="T175").splitlines()
    noise = s.stamp(
        "\n".join(f" do_syscall_64+0x3b/0x90 noise {i}" for i in range(len(warning))), caller="T1"
    ).splitlines()
    mixed = [line for pair in zip(warning, noise, strict=True) for line in pair]
    findings = parse_text("\n".join(mixed) + "\n")
    assert [f.title for f in findings] == [WARNING_TITLE]
    assert "noise" not in findings[0].report
    assert findings[0].first_line == 3  # second line of the warning, interleaved


def test_cpu_caller_ids() -> None:
    assert _titles(s.stamp(s.ARM64_HUNG_TASK, caller="C1")) == ["INFO: task hung in rcu_sync_dtor"]


def test_second_report_ends_the_first_without_caller_ids() -> None:
    findings = parse_text(s.stamp(s.X86_WARNING + s.X86_KASAN))
    assert [(f.title, f.first_line) for f in findings] == [
        (WARNING_TITLE, 2),
        ("KASAN: use-after-free Read in __mmdrop", 23),
    ]
    assert findings[0].last_line == 21  # "---[ end trace ]---" completes it


def test_binary_garbage_between_reports(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    garbage = bytes(range(256)) * 40 + b"\xff\xfe\x00\x00" * 1000
    log.write_bytes(b"boot\n" + garbage + b"\n" + s.stamp(s.X86_WARNING).encode() + garbage + b"\n")
    assert [f.title for f in parse_file(log)] == [WARNING_TITLE]


def test_huge_line_without_newline_is_cut(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    with log.open("wb") as f:
        f.write(b"x" * (3 << 20) + b"\n")  # 3 MiB "line"
        f.write(s.stamp(s.X86_HUNG_TASK).encode())
    findings = parse_file(log)
    assert [(f.title, f.first_line) for f in findings] == [("INFO: task hung in rcu_sync_dtor", 2)]


def test_parse_file_matches_parse_text(tmp_path: Path) -> None:
    text = s.stamp(s.X86_WARNING + s.BAD_RSS + s.ARM64_KASAN)
    log = tmp_path / "console.log"
    log.write_text(text)
    assert [f.to_dict() for f in parse_file(log)] == [f.to_dict() for f in parse_text(text)]


def test_feed_returns_findings_as_they_complete() -> None:
    parser = ConsoleParser()
    lines = s.stamp(s.X86_WARNING + s.BAD_RSS).splitlines(keepends=True)
    completed_at = {}
    for i, line in enumerate(lines, 1):
        for finding in parser.feed(line):
            completed_at[finding.title] = i
    # The warning completes at its "end trace" line, the rss report when the next
    # report starts, the last one at finish().
    assert completed_at == {WARNING_TITLE: 21, "BUG: Bad rss-counter state": 23}
    assert [f.title for f in parser.finish()] == ["BUG: non-zero pgtables_bytes on freeing mm"]
    assert [f.first_line for f in parser.findings] == [2, 22, 23]


def test_mail_quoted_log_with_newlines() -> None:
    quoted = "".join(f"> {line}\n" for line in s.stamp(s.X86_WARNING).splitlines())
    text = "On Thu, Paul wrote:\n> But rcutorture is not happy:\n>\n" + quoted + "> Thanx\n"
    assert _titles(text) == [WARNING_TITLE]


def test_mail_quoted_log_with_lost_newlines() -> None:
    stamped = s.stamp(s.X86_WARNING + s.BAD_RSS).splitlines()
    text = "Paul wrote: > > But rcutorture is not happy: " + " ".join(f"> {x}" for x in stamped)
    assert _titles(text) == [
        WARNING_TITLE,
        "BUG: Bad rss-counter state",
        "BUG: non-zero pgtables_bytes on freeing mm",
    ]


def test_report_length_is_bounded() -> None:
    parser = ConsoleParser(max_report_lines=100)
    parser.feed("[    1.000000] INFO: task kworker/0:1:17 blocked for more than 120 seconds.\n")
    parser.feed("[    1.000001] Call Trace:\n")
    done = []
    for i in range(500):
        done += parser.feed(f"[    1.{i + 2:06d}]  filler_{i}+0x1/0x2\n")
    assert [f.title for f in done] == ["INFO: task hung in filler_0"]
    assert done[0].report.count("\n") == 100
    assert parser.finish() == []


def test_empty_and_clean_input() -> None:
    assert parse_text("") == []
    assert parse_text("\n\n\x00\x00\r\n") == []
    assert (
        parse_text("[    0.000000] Linux version 6.1.0\n[    1.0] Run /init as init process\n")
        == []
    )


def test_shuffled_and_truncated_reports_never_raise() -> None:
    """Scrambled report lines and random bytes: findings or not, never an exception."""
    import random

    rng = random.Random(5)
    pool = [
        line
        for name in dir(s)
        if name.isupper()
        for line in s.stamp(getattr(s, name), caller=rng.choice(["", "T1", "C0"])).splitlines()
    ]
    for _ in range(200):
        lines = rng.sample(pool, k=rng.randint(1, 60))
        lines = [x[: rng.randint(0, len(x))] if rng.random() < 0.2 else x for x in lines]
        lines.append(bytes(rng.randrange(256) for _ in range(40)).decode("latin-1"))
        for finding in parse_text("\n".join(lines)):
            assert finding.title and finding.kind

"""Finding kinds derived from titles (data table; first matching prefix wins)."""

from __future__ import annotations

# (title prefix, kind). Checked in order, so specific prefixes come first.
KIND_BY_TITLE_PREFIX: tuple[tuple[str, str], ...] = (
    ("KASAN:", "kasan"),
    ("KMSAN:", "kmsan"),
    ("KCSAN:", "kcsan"),
    ("KFENCE:", "kfence"),
    ("UBSAN:", "ubsan"),
    ("memory leak in", "memory_leak"),
    ("INFO: task hung", "hung_task"),
    ("INFO: task can't die", "hung_task"),
    ("INFO: rcu detected stall", "rcu_stall"),
    ("BUG: soft lockup", "soft_lockup"),
    ("BUG: hard lockup", "hard_lockup"),
    ("BUG: workqueue lockup", "soft_lockup"),
    ("possible deadlock in", "lockdep"),
    ("inconsistent lock state", "lockdep"),
    ("WARNING: locking bug", "lockdep"),
    ("WARNING: bad unlock balance", "lockdep"),
    ("BUG: bad unlock balance", "lockdep"),
    ("WARNING: held lock freed", "lockdep"),
    ("BUG: held lock freed", "lockdep"),
    ("WARNING: nested lock was not taken", "lockdep"),
    ("INFO: trying to register non-static key", "lockdep"),
    ("WARNING: suspicious RCU usage", "lockdep"),
    ("INFO: suspicious RCU usage", "lockdep"),
    ("BUG: still has locks held", "lockdep"),
    ("WARNING: still has locks held", "lockdep"),
    ("BUG: lock held when returning", "lockdep"),
    ("WARNING: lock held when returning", "lockdep"),
    ("BUG: Bad rss-counter state", "bad_rss"),
    ("BUG: non-zero pgtables_bytes", "bad_pgtables"),
    ("BUG: non-zero nr_ptes", "bad_pgtables"),
    ("BUG: non-zero nr_pmds", "bad_pgtables"),
    ("general protection fault", "gpf"),
    ("BUG: unable to handle kernel", "oops"),
    ("Internal error", "oops"),
    ("Unhandled fault", "oops"),
    ("Alignment trap", "oops"),
    ("stack segment fault", "oops"),
    ("divide error", "oops"),
    ("invalid opcode", "oops"),
    ("kernel panic", "panic"),
    ("PANIC:", "panic"),
    ("kernel stack overflow", "panic"),
    ("WARNING", "warning"),
    ("kernel BUG", "bug"),
    ("BUG", "bug"),
    ("unexpected kernel reboot", "reboot"),
    ("SYZFAIL", "tool_failure"),
    ("SYZFATAL", "tool_failure"),
    ("go runtime error", "tool_failure"),
    ("panic:", "tool_failure"),
)


def kind_of(title: str) -> str:
    for prefix, kind in KIND_BY_TITLE_PREFIX:
        if title.startswith(prefix):
            return kind
    return "bug"

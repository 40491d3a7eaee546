"""What a kernel report looks like: start markers and title formats (data only).

A report starts on a line containing one of the ``OopsType.header`` strings
(unless a suppression matches that line).  Its title is then made by the
``TitleFormat`` whose ``title`` regex matches earliest in the report text;
``fmt`` is filled with the regex groups (of ``report`` when given, else of
``title``) followed by the guilty frame(s) found by ``stack``.  ``{1}`` is the
first argument.

Placeholders in regexes: ``%PC%`` a bracketed address, ``%FUNC%`` a function
name followed by ``+`` or ``.`` (one group), ``%SRC%`` ``file.c:123`` (one group),
``%RIP%`` the faulting-instruction line of x86/arm64/powerpc/sparc64 and
``%CALLTRACE%`` a call-trace header.  ``STACK`` in ``StackSpec.parts`` means
"parse the stack trace from here".

The formats and their order reproduce syzkaller's Linux titles (the de-facto
dedup key of kernel crash reports); the mm/hotplug entries at the end of the
BUG: list are kto additions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STACK = "<stack>"


@dataclass(frozen=True)
class StackSpec:
    parts: tuple[str, ...]
    parts2: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    extractor: str = "first"  # "first" | "stall" | "hang"


@dataclass(frozen=True)
class TitleFormat:
    title: str
    fmt: str
    report: str | None = None
    alt: tuple[str, ...] = ()
    stack: StackSpec | None = None
    no_stack_trace: bool = False
    corrupted: bool = False


@dataclass(frozen=True)
class OopsType:
    header: str
    formats: tuple[TitleFormat, ...]
    suppressions: tuple[str, ...] = field(default=())


def _trace(*skip: str, extractor: str = "first") -> StackSpec:
    """Guilty frame from the first call trace."""
    return StackSpec(parts=("%CALLTRACE%", STACK), skip=skip, extractor=extractor)


def _rip_then_trace(*skip: str, extractor: str = "first") -> StackSpec:
    """Guilty frame from the faulting-instruction line, else the call trace."""
    return StackSpec(parts=("%RIP%", "%CALLTRACE%", STACK), skip=skip, extractor=extractor)


def _warning(*skip: str) -> StackSpec:
    # Newer kernels trap on WARN and print the RIP line first; older ones
    # (and powerpc's "--- interrupt:") just print a trace.
    return StackSpec(
        parts=("(?:%RIP%|--- interrupt: [0-9]+ at %FUNC%)", STACK),
        parts2=("%CALLTRACE%", STACK),
        skip=skip,
    )


_LOCK_AT = r"(?:.*\n)+?.*at: (?:%PC% +)?%FUNC%"
_KMSAN_STACK = ("(Local variable .* created at:|Uninit was created at:)",)

BUG = OopsType(
    "BUG:",
    (
        TitleFormat(
            "BUG: KASAN:",
            report=r"BUG: KASAN: ([a-z\-]+) in %FUNC%(?:.*\n)+?.*(Read|Write) "
            r"(?:of size|at addr) (?:[0-9a-f]+)",
            fmt="KASAN: {1} {3} in {4}",
            alt=("bad-access in {4}",),
            stack=StackSpec(
                parts=(r"BUG: KASAN: (?:[a-z\-]+) in %FUNC%", "%CALLTRACE%", STACK),
                skip=("kernel_fault", "tag_check", "mem_abort", "^el1_", "^el1h_"),
            ),
        ),
        TitleFormat(
            "BUG: KASAN:",
            report="BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in %FUNC%",
            fmt="KASAN: invalid-free in {2}",
            alt=("invalid-free in {2}",),
            stack=StackSpec(
                parts=(
                    "BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) "
                    "in %FUNC%",
                    "%CALLTRACE%",
                    STACK,
                ),
                skip=("slab_", "kfree", "vunmap", "vfree"),
            ),
        ),
        TitleFormat(
            r"BUG: KASAN: ([a-z\-]+) on address(?:.*\n)+?.*(Read|Write) of size ([0-9]+)",
            fmt="KASAN: {1} {2}",
        ),
        TitleFormat("BUG: KASAN: (.*)", fmt="KASAN: {1}", corrupted=True),
        TitleFormat(
            "BUG: KMSAN: kernel-usb-infoleak",
            report="BUG: KMSAN: kernel-usb-infoleak in %FUNC%",
            fmt="KMSAN: kernel-usb-infoleak in {2}",
            alt=("KMSAN origin in {3}",),
            stack=StackSpec(
                parts=(STACK, *_KMSAN_STACK, STACK),
                skip=(
                    "alloc_skb",
                    "usb_submit_urb",
                    "usb_start_wait_urb",
                    "usb_bulk_msg",
                    "usb_interrupt_msg",
                    "usb_control_msg",
                ),
            ),
            no_stack_trace=True,
        ),
        TitleFormat(
            "BUG: KMSAN:",
            report=r"BUG: KMSAN: ([a-z\-]+) in %FUNC%",
            fmt="KMSAN: {1} in {3}",
            alt=("bad-access in {3}",),
            stack=StackSpec(
                parts=(STACK, *_KMSAN_STACK, STACK),
                skip=(
                    "alloc_skb",
                    "netlink_ack",
                    "netlink_rcv_skb",
                    "_encrypt$",
                    "^(?:crypto|cipher|drbg|rng)_",
                ),
            ),
            no_stack_trace=True,
        ),
        TitleFormat(
            "BUG: KCSAN: data-race",
            report="BUG: KCSAN: (.*)",
            fmt="KCSAN: {1}",
            no_stack_trace=True,
        ),
        TitleFormat(
            "BUG: KCSAN:", report="BUG: KCSAN: (.*)", fmt="KCSAN: {1}", no_stack_trace=True
        ),
        TitleFormat(
            "BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in %FUNC%",
            fmt="KFENCE: {1} {2} in {4}",
            alt=("bad-access in {4}",),
            stack=StackSpec(parts=(r"BUG: KFENCE: (?:[a-z\- ]+) in %FUNC%", STACK)),
        ),
        TitleFormat(
            "BUG: KFENCE: invalid free in %FUNC%",
            fmt="KFENCE: invalid free in {2}",
            alt=("invalid-free in {2}",),
            no_stack_trace=True,
            stack=StackSpec(parts=(r"BUG: KFENCE: (?:[a-z\- ]+) in %FUNC%", STACK)),
        ),
        TitleFormat(
            "BUG: KFENCE: invalid (read|write) in %FUNC%",
            fmt="KFENCE: invalid {1} in {3}",
            alt=("bad-access in {3}",),
            stack=StackSpec(parts=(r"BUG: KFENCE: (?:[a-z\- ]+) in %FUNC%", STACK)),
        ),
        TitleFormat(
            "BUG: KFENCE: memory corruption in %FUNC%",
            fmt="KFENCE: memory corruption in {2}",
            no_stack_trace=True,
            stack=StackSpec(parts=(r"BUG: KFENCE: (?:[a-z\- ]+) in %FUNC%", STACK)),
        ),
        TitleFormat(
            "BUG: (?:unable to handle kernel paging request|unable to handle page fault for "
            "address|Unable to handle kernel data access)",
            fmt="BUG: unable to handle kernel paging request in {1}",
            alt=("bad-access in {1}",),
            stack=_rip_then_trace(),
        ),
        TitleFormat(
            "BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer "
            "dereference|Kernel NULL pointer dereference)",
            fmt="BUG: unable to handle kernel NULL pointer dereference in {1}",
            alt=("bad-access in {1}",),
            stack=_rip_then_trace(),
        ),
        # The second half of this header is a separate printk and often lost.
        TitleFormat(
            "BUG: (?:unable to handle kernel|Unable to handle kernel)",
            fmt="BUG: unable to handle kernel",
            corrupted=True,
        ),
        TitleFormat(
            "BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion"
            "|cpu recursion|bad magic|wrong owner|wrong CPU|trylock failure on UP)",
            fmt="BUG: {1} {2} in {3}",
            stack=_trace("spin_", "_lock", "_unlock"),
        ),
        TitleFormat(
            "BUG: soft lockup",
            fmt="BUG: soft lockup in {1}",
            alt=("stall in {1}",),
            stack=_rip_then_trace(extractor="stall"),
        ),
        TitleFormat(
            "BUG: .*still has locks held!",
            report=r"BUG: .*still has locks held!(?:.*\n)+?.*%PC% +%FUNC%",
            fmt="BUG: still has locks held in {1}",
        ),
        TitleFormat(
            "BUG: scheduling while atomic",
            fmt="BUG: scheduling while atomic in {1}",
            stack=_trace("schedule"),
        ),
        TitleFormat(
            "BUG: lock held when returning to user space",
            report="BUG: lock held when returning to user space(?:.*\\n)+?.*leaving the kernel "
            "with locks still held" + _LOCK_AT,
            fmt="BUG: lock held when returning to user space in {1}",
            no_stack_trace=True,
        ),
        TitleFormat(
            "BUG: bad unlock balance detected!",
            fmt="BUG: bad unlock balance in {1}",
            stack=StackSpec(parts=("%PC% +%FUNC%", "%CALLTRACE%", STACK)),
        ),
        TitleFormat(
            "BUG: held lock freed!",
            report=r"BUG: held lock freed!(?:.*\n)+?.*%PC% +%FUNC%",
            fmt="BUG: held lock freed in {1}",
        ),
        TitleFormat(
            "BUG: Bad rss-counter state", fmt="BUG: Bad rss-counter state", no_stack_trace=True
        ),
        TitleFormat(
            "BUG: non-zero nr_ptes on freeing mm",
            fmt="BUG: non-zero nr_ptes on freeing mm",
            no_stack_trace=True,
        ),
        TitleFormat(
            "BUG: non-zero nr_pmds on freeing mm",
            fmt="BUG: non-zero nr_pmds on freeing mm",
            no_stack_trace=True,
        ),
        # kto addition: the modern form of the two checks above (mm/pgtable accounting).
        TitleFormat(
            "BUG: non-zero pgtables_bytes on freeing mm",
            fmt="BUG: non-zero pgtables_bytes on freeing mm",
            no_stack_trace=True,
        ),
        TitleFormat(
            "BUG: Dentry .* still in use",
            report=r"BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of ([^\]]+)\]",
            fmt="BUG: Dentry still in use in {1}",
            alt=("BUG: Dentry still in use [{1} of {2}]",),
        ),
        TitleFormat(
            "BUG: Bad page (state|cache)",
            fmt="BUG: Bad page {1} in {2}",
            stack=StackSpec(
                parts=("page last allocated", STACK),
                skip=(
                    "(free|put|get|update|release)_page",
                    "free_unref",
                    "^_*folio",
                    "truncate_inode_pages",
                    "page_frag_free",
                    "alloc",
                    "vmap",
                    "page_owner",
                ),
            ),
        ),
        TitleFormat("BUG: Bad page map", fmt="BUG: Bad page map"),
        TitleFormat("BUG: workqueue lockup", fmt="BUG: workqueue lockup", no_stack_trace=True),
        TitleFormat(
            "BUG: sleeping function called from invalid context at (.*)",
            fmt="BUG: sleeping function called from invalid context in {2}",
            stack=_trace(),
        ),
        TitleFormat(
            r"BUG: using ([a-z_]+)\(\) in preemptible",
            fmt="BUG: using {1}() in preemptible code in {2}",
            stack=_trace(
                "dump_stack", "preemption", "preempt", "debug_", "processor_id", "this_cpu"
            ),
        ),
        TitleFormat(
            "BUG: workqueue leaked lock or atomic",
            report=r"BUG: workqueue leaked lock or atomic(?:.*\n)+?.*last function: "
            r"([a-zA-Z0-9_]+)\n",
            fmt="BUG: workqueue leaked lock or atomic in {1}",
            no_stack_trace=True,
        ),
        TitleFormat(
            "BUG: memory leak",
            fmt="memory leak in {1}",
            stack=StackSpec(
                parts=(r"backtrace(?: \(crc [0-9a-fA-F]*\))?:", STACK),
                skip=(
                    "kmemleak",
                    "mmap",
                    "kmem",
                    "slab",
                    "alloc",
                    "create_object",
                    "idr_get",
                    "list_lru_init",
                    "kasprintf",
                    "kvasprintf",
                    "pcpu_create",
                    "strdup",
                    "strndup",
                    "memdup",
                ),
            ),
        ),
        TitleFormat(
            "BUG: .*stack guard page was hit at",
            fmt="BUG: stack guard page was hit in {1}",
            alt=("stack-overflow in {1}",),
            stack=_rip_then_trace(extractor="stall"),
        ),
        TitleFormat(
            "BUG: Invalid wait context",
            fmt="WARNING: locking bug in {1}",
            stack=_trace("lock_sock", "release_sock"),
        ),
        TitleFormat(r"BUG:\s*(?:\n|$)", fmt="BUG: corrupted", corrupted=True),
    ),
    suppressions=(
        "ODEBUG:",
        "Boot_DEBUG:",
        "xlog_status:",
        "DEBUG:",
        "BUG: no syscalls can create resource",
    ),
)

WARNING = OopsType(
    "WARNING:",
    (
        TitleFormat(
            r"WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check|at)",
            fmt="WARNING: ODEBUG bug in {1}",
            stack=_warning(
                "debug_",
                "rcu",
                "hrtimer_",
                "timer_",
                "work_",
                "percpu_",
                "vunmap",
                "vfree",
                "__free_",
                "debug_check",
                "kobject_",
            ),
        ),
        TitleFormat(
            r"WARNING: .*mm/usercopy\.c.* (?:usercopy_warn|at)",
            fmt="WARNING: bad usercopy in {1}",
            stack=_warning("usercopy", "__check"),
        ),
        TitleFormat(
            r"WARNING: .*lib/kobject\.c.* (?:kobject_|at)",
            fmt="WARNING: kobject bug in {1}",
            stack=_warning("kobject_"),
        ),
        TitleFormat(
            r"WARNING: .*fs/proc/generic\.c.* (?:proc_register|at)",
            fmt="WARNING: proc registration bug in {1}",
            stack=_warning("proc_"),
        ),
        TitleFormat(
            r"WARNING: .*lib/refcount\.c.* (?:refcount_|at)",
            fmt="WARNING: refcount bug in {1}",
            stack=_warning("refcount", "kobject_"),
        ),
        TitleFormat(
            r"WARNING: .*kernel/locking/lockdep\.c.*lock_",
            fmt="WARNING: locking bug in {1}",
            stack=_warning("lock_sock", "release_sock"),
        ),
        TitleFormat(
            "WARNING: .*still has locks held!",
            report=r"WARNING: .*still has locks held!(?:.*\n)+?.*at: %FUNC%",
            fmt="WARNING: still has locks held in {1}",
        ),
        TitleFormat(
            "WARNING: Nested lock was not taken",
            fmt="WARNING: nested lock was not taken in {1}",
            stack=_warning(),
        ),
        TitleFormat(
            "WARNING: lock held when returning to user space",
            report="WARNING: lock held when returning to user space(?:.*\\n)+?.*leaving the "
            "kernel with locks still held" + _LOCK_AT,
            fmt="WARNING: lock held when returning to user space in {1}",
            no_stack_trace=True,
        ),
        TitleFormat(
            r"WARNING: .*mm/.*\.c.* k?.?malloc",
            fmt="WARNING: kmalloc bug in {1}",
            stack=_warning("kmalloc", "krealloc", "slab", "kmem"),
        ),
        TitleFormat(
            r"WARNING: .*mm/vmalloc.c.*__vmalloc_node",
            fmt="WARNING: zero-size vmalloc in {1}",
            stack=_warning(),
        ),
        TitleFormat(
            "WARNING: .* usb_submit_urb",
            fmt="WARNING in {1}/usb_submit_urb",
            stack=_warning(
                "usb_submit_urb",
                "usb_start_wait_urb",
                "usb_bulk_msg",
                "usb_interrupt_msg",
                "usb_control_msg",
            ),
        ),
        # Newer one-line form: "WARNING: kernel/fork.c:686 at 0x..., CPU#0: comm/175".
        TitleFormat(r"WARNING: %SRC% at 0x\d+, CPU#\d+", fmt="WARNING in {2}", stack=_warning()),
        TitleFormat("WARNING: .* at %SRC% %FUNC%", fmt="WARNING in {3}", stack=_warning()),
        TitleFormat("WARNING: %SRC% at %FUNC%", fmt="WARNING in {3}", stack=_warning()),
        TitleFormat(r"WARNING: \[.*\] %SRC% at %FUNC%.*", fmt="WARNING in {3}", stack=_warning()),
        TitleFormat(
            "WARNING: possible circular locking dependency detected",
            report=r"WARNING: possible circular locking dependency detected(?:.*\n)+?.*is "
            "trying to acquire lock",
            fmt="possible deadlock in {1}",
            stack=StackSpec(
                parts=("at: (?:%PC% +)?%FUNC%", "at: (?:%PC% +)?%FUNC%", STACK),
                skip=(
                    "process_one_work",
                    "flush_workqueue",
                    "drain_workqueue",
                    "destroy_workqueue",
                ),
            ),
        ),
        TitleFormat(
            "WARNING: possible irq lock inversion dependency detected",
            report="WARNING: possible irq lock inversion dependency detected(?:.*\\n)+?.*just "
            "changed the state of lock" + _LOCK_AT,
            fmt="possible deadlock in {1}",
        ),
        TitleFormat(
            "WARNING: .*-safe -> .*-unsafe lock order detected",
            fmt="possible deadlock in {1}",
            stack=StackSpec(parts=("which became (?:.*) at:", STACK)),
        ),
        TitleFormat(
            "WARNING: possible recursive locking detected",
            report="WARNING: possible recursive locking detected(?:.*\\n)+?.*is trying to "
            "acquire lock" + _LOCK_AT,
            fmt="possible deadlock in {1}",
        ),
        TitleFormat(
            "WARNING: inconsistent lock state",
            report="WARNING: inconsistent lock state(?:.*\\n)+?.*takes" + _LOCK_AT,
            fmt="inconsistent lock state in {2}",
            stack=_trace(),
        ),
        TitleFormat(
            "WARNING: suspicious RCU usage",
            report=r"WARNING: suspicious RCU usage(?:.*\n)+?.*?%SRC%",
            fmt="WARNING: suspicious RCU usage in {2}",
            stack=_trace("rcu", "kmem", "slab"),
        ),
        TitleFormat(
            "WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value",
            fmt="WARNING: kernel stack regs has bad '{1}' value",
            no_stack_trace=True,
        ),
        TitleFormat(
            "WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value",
            fmt="WARNING: kernel stack frame pointer has bad value",
            no_stack_trace=True,
        ),
        TitleFormat(
            "WARNING: bad unlock balance detected!",
            fmt="WARNING: bad unlock balance in {1}",
            stack=StackSpec(parts=("%PC% +%FUNC%", "%CALLTRACE%", STACK)),
        ),
        TitleFormat(
            "WARNING: held lock freed!",
            report=r"WARNING: held lock freed!(?:.*\n)+?.*at:(?: %PC%)? +%FUNC%",
            fmt="WARNING: held lock freed in {1}",
        ),
        TitleFormat(
            "WARNING: kernel stack regs .* has bad 'bp' value",
            fmt="WARNING: kernel stack regs has bad value",
            no_stack_trace=True,
        ),
        TitleFormat(
            "WARNING: kernel stack frame pointer .* has bad value",
            fmt="WARNING: kernel stack regs has bad value",
            no_stack_trace=True,
        ),
        TitleFormat(r"WARNING:\s*(?:\n|$)", fmt="WARNING: corrupted", corrupted=True),
    ),
    suppressions=(
        "WARNING: /etc/ssh/moduli does not exist, using fixed modulus",
        "WARNING: workqueue cpumask: online intersect > possible intersect",
        "WARNING: [Tt]he mand mount option",
        r"WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1",
        "WARNING: Unprivileged eBPF is enabled with eIBRS",
        r"WARNING: fbcon: Driver '(.*)' missed to adjust virtual screen size",
        "WARNING: See https.* for mitigation options.",
        "WARNING: kernel not compiled with CPU_SRSO",
        r"EXT4-[Ff][Ss](?: \(.*\))?:",
        "(?i)warning: .* uses (deprecated v2 capabilities|wireless extensions)",
        r"XFS \(\w+\): WARNING",
    ),
)

_INFO_LOCK = r" \](?:.*\n)+?.*"

INFO = OopsType(
    "INFO:",
    (
        TitleFormat(
            "INFO: possible circular locking dependency detected",
            report="INFO: possible circular locking dependency detected"
            + _INFO_LOCK
            + r"is trying to acquire lock(?:.*\n)+?.*at: %PC% +%FUNC%",
            fmt="possible deadlock in {1}",
        ),
        TitleFormat(
            "INFO: possible irq lock inversion dependency detected",
            report="INFO: possible irq lock inversion dependency detected"
            + _INFO_LOCK
            + r"just changed the state of lock(?:.*\n)+?.*at: %PC% +%FUNC%",
            fmt="possible deadlock in {1}",
        ),
        TitleFormat(
            "INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
            report="INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected"
            + _INFO_LOCK
            + r"is trying to acquire(?:.*\n)+?.*at: %PC% +%FUNC%",
            fmt="possible deadlock in {1}",
        ),
        TitleFormat(
            "INFO: possible recursive locking detected",
            report="INFO: possible recursive locking detected"
            + _INFO_LOCK
            + r"is trying to acquire lock(?:.*\n)+?.*at: %PC% +%FUNC%",
            fmt="possible deadlock in {1}",
        ),
        TitleFormat(
            "INFO: inconsistent lock state",
            report="INFO: inconsistent lock state"
            + _INFO_LOCK
            + r"takes(?:.*\n)+?.*at: %PC% +%FUNC%",
            fmt="inconsistent lock state in {1}",
        ),
        TitleFormat(
            "INFO: rcu_(?:preempt|sched|bh) (?:self-)?detected(?: expedited)? stall",
            fmt="INFO: rcu detected stall in {1}",
            alt=("stall in {1}",),
            stack=StackSpec(
                parts=("apic_timer_interrupt", "%RIP%", STACK),
                parts2=("(?:apic_timer_interrupt|Exception stack|el1h_64_irq)", STACK),
                skip=("apic_timer_interrupt", "rcu"),
                extractor="stall",
            ),
        ),
        TitleFormat(
            "INFO: trying to register non-static key",
            fmt="INFO: trying to register non-static key in {1}",
            stack=_trace("stack", "lock", "IRQ"),
        ),
        TitleFormat(
            "INFO: suspicious RCU usage",
            report=r"INFO: suspicious RCU usage(?:.*\n)+?.*?%SRC%",
            fmt="INFO: suspicious RCU usage in {2}",
            stack=_trace("rcu", "kmem", "slab"),
        ),
        TitleFormat(
            # A garbage task name may even contain a line break.
            r"INFO: task .*(?:\n.*)? blocked (?:in I/O wait )?for more than [0-9]+ seconds",
            fmt="INFO: task hung in {1}",
            alt=("hang in {1}",),
            stack=_trace(extractor="hang"),
        ),
        TitleFormat(
            "INFO: task .* can't die for more than .* seconds",
            fmt="INFO: task can't die in {1}",
            alt=("hang in {1}",),
            stack=_trace("schedule"),
        ),
        # Old-style KASAN reports that lost their header.
        TitleFormat("INFO: (Freed|Allocated) in (.*)", fmt="INFO: {1} in {2}", corrupted=True),
        TitleFormat(r"INFO:\s*(?:\n|$)", fmt="INFO: corrupted", corrupted=True),
    ),
    suppressions=(
        "INFO: lockdep is turned off",
        "INFO: Stall ended before state dump start",
        "INFO: NMI handler",
        "INFO: recovery required on readonly filesystem",
        "(handler|interrupt).*took too long",
        "INFO: sys_.* is not present in /proc/kallsyms",
        "INFO: no syscalls can create resource",
        "rmt_storage:INFO:",
        "_INFO:",
    ),
)

_PANIC_FORMATS = (
    TitleFormat(
        "Kernel panic - not syncing: stack-protector:",
        report="Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: %FUNC%",
        fmt="kernel panic: stack is corrupted in {1}",
        no_stack_trace=True,
    ),
    TitleFormat(
        "Kernel panic - not syncing: stack-protector:",
        report="Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: "
        "[a-f0-9]+",
        fmt="kernel panic: stack is corrupted in {1}",
        stack=_trace("stack_chk"),
    ),
    TitleFormat(
        "Kernel panic - not syncing: corrupted stack end",
        report="Kernel panic - not syncing: corrupted stack end detected inside scheduler",
        fmt="kernel panic: corrupted stack end in {1}",
        alt=("stack-overflow in {1}",),
        stack=_trace("schedule", "retint_kernel", extractor="stall"),
    ),
    TitleFormat(
        "Kernel panic - not syncing: kernel stack overflow",
        fmt="kernel stack overflow in {1}",
        alt=("stack-overflow in {1}",),
        stack=_trace("bad_stack", extractor="stall"),
    ),
    TitleFormat(
        "Kernel panic - not syncing: Attempted to kill init!",
        fmt="kernel panic: Attempted to kill init!",
    ),
    TitleFormat(
        "Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error -[0-9]+",
        fmt="kernel panic: Couldn't open N_TTY ldisc",
    ),
    # These panics follow another report; alone they mean its header was lost.
    TitleFormat(
        "Kernel panic - not syncing: Fatal exception",
        fmt="kernel panic: Fatal exception",
        corrupted=True,
    ),
    TitleFormat(
        "Kernel panic - not syncing: panic_on_warn set",
        fmt="kernel panic: panic_on_warn set",
        corrupted=True,
    ),
    TitleFormat(
        "Kernel panic - not syncing: hung_task: blocked tasks",
        fmt="kernel panic: hung_task: blocked tasks",
        corrupted=True,
    ),
    TitleFormat("Kernel panic - not syncing: (.*)", fmt="kernel panic: {1}"),
)


def _rip_only(fmt: str, title: str) -> TitleFormat:
    return TitleFormat(title, fmt=fmt, stack=StackSpec(parts=("%RIP%",)))


OOPS_TYPES: tuple[OopsType, ...] = (
    BUG,
    WARNING,
    INFO,
    OopsType(
        "Unable to handle kernel",
        (
            TitleFormat(
                "Unable to handle kernel (paging request|NULL pointer dereference|access to "
                "user memory)",
                fmt="BUG: unable to handle kernel {1} in {2}",
                alt=("bad-access in {2}",),
                stack=_rip_then_trace(),
            ),
        ),
    ),
    OopsType(
        "general protection fault",
        (
            TitleFormat(
                "general protection fault.*:",
                fmt="general protection fault in {1}",
                alt=("bad-access in {1}",),
                stack=_rip_then_trace(),
            ),
        ),
        suppressions=(r"general protection fault .* error:\d+ in ",),
    ),
    OopsType(
        "stack segment: ",
        (
            TitleFormat(
                "stack segment: ", fmt="stack segment fault in {1}", stack=_rip_then_trace()
            ),
        ),
    ),
    OopsType("Kernel panic", _PANIC_FORMATS),
    OopsType(
        "PANIC: double fault", (_rip_only("PANIC: double fault in {1}", "PANIC: double fault"),)
    ),
    OopsType(
        "rust_kernel: panicked",
        (
            TitleFormat(
                "rust_kernel: panicked",
                report=r"rust_kernel: panicked at [^\n]*?\n(.+?)\n",
                fmt="{1} in {2}",
                stack=_trace(r"__rustc::rust_begin_unwind"),
            ),
        ),
    ),
    OopsType(
        "kernel BUG",
        (
            TitleFormat(
                "kernel BUG at mm/usercopy.c",
                fmt="BUG: bad usercopy in {1}",
                stack=_trace("usercopy", "__check"),
            ),
            TitleFormat(
                "kernel BUG at lib/list_debug.c",
                fmt="BUG: corrupted list in {1}",
                alt=("bad-access in {1}",),
                stack=_trace(),
            ),
            TitleFormat(
                "kernel BUG at (.*)", fmt="kernel BUG in {2}", stack=_rip_then_trace("^skb_")
            ),
        ),
    ),
    OopsType("Kernel BUG", (TitleFormat("Kernel BUG (.*)", fmt="kernel BUG {1}"),)),
    OopsType(
        "BUG kmalloc-",
        (TitleFormat("BUG kmalloc-.*: Object already free", fmt="BUG: Object already free"),),
    ),
    OopsType("divide error:", (_rip_only("divide error in {1}", "divide error: "),)),
    OopsType("divide_error:", (_rip_only("divide error in {1}", "divide_error: "),)),
    OopsType("invalid opcode:", (_rip_only("invalid opcode in {1}", "invalid opcode: "),)),
    OopsType(
        "UBSAN:",
        (
            TitleFormat(
                "UBSAN:",
                report="UBSAN: Undefined behaviour in",
                fmt="UBSAN: undefined-behaviour in {1}",
                stack=_trace("ubsan", "overflow"),
            ),
            TitleFormat(
                "UBSAN: array-index-out-of-bounds in",
                fmt="UBSAN: array-index-out-of-bounds in {1}",
                alt=("bad-access in {1}",),
                stack=_trace("ubsan", "overflow"),
            ),
            TitleFormat(
                "UBSAN:",
                report="UBSAN: (.*?) in",
                fmt="UBSAN: {1} in {2}",
                stack=_trace("ubsan", "overflow"),
            ),
        ),
    ),
    OopsType(
        "Booting the kernel.",
        (TitleFormat("^Booting the kernel", fmt="unexpected kernel reboot", no_stack_trace=True),),
        suppressions=("Parsing ELF|Decompressing Linux|Unknown parameter '",),
    ),
    OopsType(
        "unregister_netdevice: waiting for",
        (
            TitleFormat(
                "unregister_netdevice: waiting for (?:.*) to become free",
                fmt="unregister_netdevice: waiting for DEV to become free",
                no_stack_trace=True,
            ),
        ),
    ),
    OopsType(
        "VFS: Close: file count is 0",
        (
            TitleFormat(
                "VFS: Close: file count is 0",
                fmt="VFS: Close: file count is zero (use-after-free)",
                no_stack_trace=True,
            ),
        ),
    ),
    OopsType(
        "VFS: Busy inodes after unmount",
        (
            TitleFormat(
                "VFS: Busy inodes after unmount",
                fmt="VFS: Busy inodes after unmount (use-after-free)",
                no_stack_trace=True,
            ),
        ),
    ),
    OopsType(
        "Internal error:",
        (
            TitleFormat(
                "Internal error:",
                fmt="Internal error in {1}",
                alt=("bad-access in {1}",),
                stack=_rip_then_trace(),
            ),
        ),
    ),
    OopsType(
        "Unhandled fault:",
        (
            TitleFormat(
                "Unhandled fault:",
                fmt="Unhandled fault in {1}",
                alt=("bad-access in {1}",),
                stack=_rip_then_trace(),
            ),
        ),
    ),
    OopsType(
        "Alignment trap:",
        (TitleFormat("Alignment trap:", fmt="Alignment trap in {1}", stack=_rip_then_trace()),),
    ),
    OopsType(
        "trusty: panic",
        (
            TitleFormat(
                "trusty: panic.* ASSERT FAILED",
                report=r"trusty: panic \(.*?\):(?: DEBUG)? ASSERT FAILED at \(.*?\): (.+)",
                fmt="trusty: ASSERT FAILED: {1}",
                no_stack_trace=True,
            ),
            TitleFormat(
                "trusty: panic.* ASSERT FAILED.*: *(.*)",
                fmt="trusty: ASSERT FAILED: {1}",
                corrupted=True,
            ),
            TitleFormat(
                "trusty: panic",
                report=r"trusty: panic \(.*?\): (.+)",
                fmt="trusty: panic: {1}",
                no_stack_trace=True,
            ),
        ),
    ),
    OopsType(
        "fatal error:",
        (TitleFormat("fatal error:", fmt="go runtime error", no_stack_trace=True),),
        suppressions=("ALSA", "fatal error: cannot create timer"),
    ),
    # kto addition: NMI watchdog hard lockups (not titled by syzkaller).
    OopsType(
        "Watchdog detected hard LOCKUP",
        (
            TitleFormat(
                "Watchdog detected hard LOCKUP",
                fmt="BUG: hard lockup in {1}",
                stack=_rip_then_trace(extractor="stall"),
            ),
        ),
    ),
    # Messages printed by syzkaller's own tools and Go programs.
    OopsType("SYZFAIL:", (TitleFormat("SYZFAIL:(.*)", fmt="SYZFAIL:{1}", no_stack_trace=True),)),
    OopsType(
        "SYZFATAL:",
        (
            TitleFormat(
                "SYZFATAL:(.*)()", fmt="SYZFATAL:{1}", alt=("SYZFATAL{2}",), no_stack_trace=True
            ),
        ),
    ),
    OopsType(
        "panic:",
        (
            TitleFormat(
                "panic: Sentry detected .* stuck task",
                fmt="panic: Sentry detected stuck tasks",
                no_stack_trace=True,
            ),
            TitleFormat("panic:(.*)", fmt="panic:{1}", no_stack_trace=True),
        ),
        suppressions=("_panic:", "xlog_status:", r"ddb\.onpanic:", "evtlog_status:"),
    ),
)

# These start markers may appear inside another report without starting a new one.
REPORT_START_IGNORES: tuple[str, ...] = (
    "invalid opcode: 0000",
    "Kernel panic - not syncing",
    "unregister_netdevice: waiting for",
    "PANIC: double fault",
    "Internal error:",
)

# Informational messages that carry a stack trace: seen inside a report, they
# mean later lines may belong to something else.
INFO_WITH_STACK: tuple[str, ...] = (
    "vmalloc: allocation failure:",
    "FAULT_INJECTION: forcing a failure",
    "FAULT_FLAG_ALLOW_RETRY missing",
)

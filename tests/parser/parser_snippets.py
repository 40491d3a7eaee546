# ruff: noqa: E501  (console lines are as long as the kernel prints them)
"""Small realistic console snippets (x86_64, arm64, sparc64 formats) for unit tests."""

from __future__ import annotations


def stamp(body: str, start: float = 100.0, caller: str = "") -> str:
    """Prefix each line with a kernel timestamp (and a caller id, if given)."""
    out = []
    for i, line in enumerate(body.strip("\n").split("\n")):
        cid = f"[{caller:>6}]" if caller else ""
        out.append(f"[{start + i * 0.000123:12.6f}]{cid} {line}")
    return "\n".join(out) + "\n"


X86_WARNING = """\
------------[ cut here ]------------
WARNING: CPU: 0 PID: 175 at kernel/fork.c:686 __mmdrop+0x9f/0xb0
Modules linked in:
CPU: 0 PID: 175 Comm: torture_onoff Tainted: G        W          6.1.0 #23
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.13.0-1ubuntu1.1 04/01/2014
RIP: 0010:__mmdrop+0x9f/0xb0
Code: fb 20 75 e6 48 8b 45 68 48 85 c0 0f 85 1e 48 ad 00 48 8b 3d 93 e0 c3 01 5b 48 89 ee <0f> 0b
RSP: 0018:ffff944c40623d68 EFLAGS: 00010246
RAX: ffff8e84c2339c00 RBX: ffff8e84df5572e0 RCX: 00000000fffffffa
CR2: 0000000000000000 CR3: 00000000029ec000 CR4: 00000000000006f0
Call Trace:
 <TASK>
 ? takedown_cpu+0xd0/0xd0
 finish_cpu+0x2e/0x40
 cpuhp_invoke_callback+0xf6/0x3f0
 _cpu_down+0xdf/0x2a0
 cpu_down+0x2a/0x50
 kthread+0xf9/0x130
 ret_from_fork+0x22/0x30
 </TASK>
---[ end trace 0000000000000000 ]---
"""

ARM64_WARNING = """\
------------[ cut here ]------------
WARNING: CPU: 1 PID: 17 at kernel/fork.c:686 __mmdrop+0x10c/0x130
Modules linked in:
CPU: 1 PID: 17 Comm: cpuhp/1 Not tainted 6.1.0 #1
Hardware name: linux,dummy-virt (DT)
pstate: 60400005 (nZCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)
pc : __mmdrop+0x10c/0x130
lr : finish_cpu+0x5c/0x80
sp : ffff80000a4dbd20
x29: ffff80000a4dbd20 x28: 0000000000000000 x27: 0000000000000000
Call trace:
 __mmdrop+0x10c/0x130
 finish_cpu+0x5c/0x80
 cpuhp_invoke_callback+0x150/0x5a0
 cpuhp_thread_fun+0xc8/0x1a0
 smpboot_thread_fn+0x218/0x240
 kthread+0x10c/0x120
 ret_from_fork+0x10/0x20
---[ end trace 0000000000000000 ]---
"""

SPARC64_WARNING = """\
------------[ cut here ]------------
WARNING: CPU: 0 PID: 175 at kernel/fork.c:686 __mmdrop+0x9c/0xc0
Modules linked in:
CPU: 0 PID: 175 Comm: torture_onoff Not tainted 6.1.0 #1
Call Trace:
 [000000000046b5c8] __warn+0xa8/0x120
 [000000000046b6cc] warn_slowpath_fmt+0x8c/0xc0
 [0000000000467a3c] __mmdrop+0x9c/0xc0
 [000000000047d0f4] finish_cpu+0x34/0x60
 [000000000047bc28] cpuhp_invoke_callback+0x108/0x4a0
 [00000000004a39c8] kthread+0xe8/0x120
 [00000000004060e4] ret_from_fork+0x1c/0x2c
 [0000000000000000] 0x0
---[ end trace 0000000000000000 ]---
"""

X86_NULL_DEREF = """\
BUG: kernel NULL pointer dereference, address: 0000000000000008
#PF: supervisor read access in kernel mode
#PF: error_code(0x0000) - not-present page
PGD 0 P4D 0
Oops: 0000 [#1] PREEMPT SMP NOPTI
CPU: 1 PID: 42 Comm: kworker/1:1 Not tainted 6.1.0 #1
RIP: 0010:__mmdrop+0x14/0x80
Code: 00 00 00 0f 1f 44 00 00 55 48 89 fd 53 48 8b 47 08 <48> 8b 58 08
RSP: 0018:ffffc900001f7e28 EFLAGS: 00010246
Call Trace:
 <TASK>
 finish_cpu+0x2e/0x40
 cpuhp_invoke_callback+0xf6/0x3f0
 kthread+0xf9/0x130
 ret_from_fork+0x22/0x30
 </TASK>
---[ end trace 0000000000000000 ]---
"""

ARM64_NULL_DEREF = """\
Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008
Mem abort info:
  ESR = 0x0000000096000005
  EC = 0x25: DABT (current EL), IL = 32 bits
Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP
Modules linked in:
CPU: 1 PID: 42 Comm: kworker/1:1 Not tainted 6.1.0 #1
pstate: 60400005 (nZCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)
pc : __mmdrop+0x14/0x80
lr : finish_cpu+0x5c/0x80
Call trace:
 __mmdrop+0x14/0x80
 finish_cpu+0x5c/0x80
 cpuhp_invoke_callback+0x150/0x5a0
 kthread+0x10c/0x120
 ret_from_fork+0x10/0x20
Code: f9400408 f9400508 (f9400500) 52800000
---[ end trace 0000000000000000 ]---
"""

SPARC64_NULL_DEREF = """\
Unable to handle kernel NULL pointer dereference
tsk->{mm,active_mm}->context = 0000000000000000
tsk->{mm,active_mm}->pgd = fff000007e4d8000
swapper/0(1): Oops [#1]
CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0 #1
TSTATE: 0000004411001606 TPC: 00000000004b2f34 TNPC: 00000000004b2f38 Y: 00000000    Not tainted
TPC: <__mmdrop+0x14/0x80>
g0: 0000000000000000 g1: 0000000000000000 g2: 0000000000000000 g3: 0000000000000000
I7: <finish_cpu+0x34/0x60>
Call Trace:
 [000000000047d0f4] finish_cpu+0x34/0x60
 [000000000047bc28] cpuhp_invoke_callback+0x108/0x4a0
 [00000000004060e4] ret_from_fork+0x1c/0x2c
Disabling lock debugging due to kernel taint
Caller[000000000047d0f4]: finish_cpu+0x34/0x60
"""

X86_HUNG_TASK = """\
INFO: task cpuhp/1:17 blocked for more than 122 seconds.
      Not tainted 6.1.0 #1
"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
task:cpuhp/1         state:D stack:0     pid:17    ppid:2      flags:0x00004000
Call Trace:
 <TASK>
 __schedule+0x2ee/0x880
 schedule+0x5a/0xd0
 percpu_rwsem_wait+0x110/0x140
 __percpu_down_read+0x5e/0x80
 cpus_read_lock+0x9c/0xa0
 rcu_barrier+0x2a/0x2c0
 rcu_sync_dtor+0x2b/0x60
 percpu_free_rwsem+0x22/0x40
 __mmdrop+0x6e/0x150
 finish_cpu+0x2e/0x40
 cpuhp_invoke_callback+0xf6/0x3f0
 kthread+0xf9/0x130
 ret_from_fork+0x22/0x30
 </TASK>
"""

ARM64_HUNG_TASK = """\
INFO: task cpuhp/1:17 blocked for more than 122 seconds.
      Not tainted 6.1.0 #1
"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
task:cpuhp/1         state:D stack:0     pid:17    ppid:2      flags:0x00000008
Call trace:
 __switch_to+0xf0/0x170
 __schedule+0x2e8/0x7a0
 schedule+0x5c/0xc0
 percpu_rwsem_wait+0xe4/0x110
 __percpu_down_read+0x60/0x90
 cpus_read_lock+0x7c/0x80
 rcu_barrier+0x34/0x2a0
 rcu_sync_dtor+0x30/0x60
 percpu_free_rwsem+0x20/0x40
 __mmdrop+0x78/0x130
 finish_cpu+0x5c/0x80
 kthread+0x10c/0x120
 ret_from_fork+0x10/0x20
"""

SPARC64_HUNG_TASK = """\
INFO: task cpuhp/1:17 blocked for more than 122 seconds.
      Not tainted 6.1.0 #1
"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
task:cpuhp/1         state:D stack:0     pid:17    ppid:2      flags:0x00000000
Call Trace:
 [0000000000a9b2a4] schedule+0x44/0xe0
 [00000000004d7b1c] percpu_rwsem_wait+0xdc/0x120
 [00000000004d7c48] __percpu_down_read+0x48/0x80
 [000000000046a2e8] cpus_read_lock+0x68/0x80
 [00000000004e3a10] rcu_barrier+0x30/0x280
 [00000000004e0c94] rcu_sync_dtor+0x34/0x60
 [0000000000467a3c] __mmdrop+0x7c/0xc0
 [000000000047d0f4] finish_cpu+0x34/0x60
 [00000000004a39c8] kthread+0xe8/0x120
 [00000000004060e4] ret_from_fork+0x1c/0x2c
"""

X86_SOFT_LOCKUP = """\
watchdog: BUG: soft lockup - CPU#1 stuck for 23s! [stress:95]
Modules linked in:
CPU: 1 PID: 95 Comm: stress Not tainted 6.1.0 #1
RIP: 0010:mn_hlist_invalidate_range_start+0x30/0x1c0
Code: 41 56 41 55 41 54 55 53 48 83 ec 10 48 8b 47 08 <48> 85 c0
RSP: 0018:ffffc900003d7c58 EFLAGS: 00000246
Call Trace:
 <TASK>
 __mmu_notifier_invalidate_range_start+0x54/0x90
 unmap_vmas+0x140/0x150
 exit_mmap+0xb5/0x2a0
 __mmput+0x3e/0x130
 do_exit+0x30e/0xb30
 do_group_exit+0x2d/0x90
 __x64_sys_exit_group+0x14/0x20
 do_syscall_64+0x3b/0x90
 entry_SYSCALL_64_after_hwframe+0x63/0xcd
 </TASK>
"""

ARM64_SOFT_LOCKUP = """\
watchdog: BUG: soft lockup - CPU#1 stuck for 23s! [stress:95]
Modules linked in:
CPU: 1 PID: 95 Comm: stress Not tainted 6.1.0 #1
pstate: 80400005 (Nzcv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)
pc : mn_hlist_invalidate_range_start+0x30/0x1c0
lr : __mmu_notifier_invalidate_range_start+0x54/0x90
Call trace:
 mn_hlist_invalidate_range_start+0x30/0x1c0
 __mmu_notifier_invalidate_range_start+0x54/0x90
 unmap_vmas+0x140/0x150
 exit_mmap+0xb5/0x2a0
 __mmput+0x3e/0x130
 do_exit+0x30e/0xb30
 do_group_exit+0x2d/0x90
 __arm64_sys_exit_group+0x18/0x20
 invoke_syscall+0x48/0x114
 el0_svc_common.constprop.0+0x44/0xec
 do_el0_svc+0x2c/0xd0
 el0_svc+0x2c/0x84
"""

SPARC64_SOFT_LOCKUP = """\
watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [stress:95]
Modules linked in:
CPU: 0 PID: 95 Comm: stress Not tainted 6.1.0 #1
TSTATE: 0000000080001601 TPC: 0000000000512a30 TNPC: 0000000000512a34 Y: 00000000    Not tainted
TPC: <mn_hlist_invalidate_range_start+0x30/0x1c0>
g0: 0000000000000000 g1: 0000000000000000 g2: 0000000000000000 g3: 0000000000000000
Call Trace:
 [0000000000512b84] __mmu_notifier_invalidate_range_start+0x44/0x80
 [00000000004f2f10] unmap_vmas+0x110/0x140
 [00000000004fb6e8] exit_mmap+0xa8/0x260
 [0000000000465a80] __mmput+0x20/0x100
 [000000000046d1c4] do_exit+0x2e4/0xa40
 [000000000046d9b8] do_group_exit+0x38/0xa0
 [000000000046da3c] sys_exit_group+0x1c/0x20
 [0000000000406274] linux_sparc_syscall+0x34/0x44
"""

X86_RCU_STALL = """\
rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
rcu: \t1-....: (5249 ticks this GP) idle=c2c/1/0x4000000000000000 softirq=2716/2716 fqs=2514
\t(detected by 0, t=10502 jiffies, g=2185, q=160 ncpus=2)
NMI backtrace for cpu 1
CPU: 1 PID: 95 Comm: stress Not tainted 6.1.0 #1
Call Trace:
 <IRQ>
 dump_stack_lvl+0x49/0x63
 nmi_cpu_backtrace.cold+0x30/0x70
 rcu_dump_cpu_stacks+0x106/0x14d
 rcu_sched_clock_irq.cold+0x19a/0x3c3
 update_process_times+0x62/0x90
 tick_sched_timer+0x74/0x80
 __hrtimer_run_queues+0x110/0x280
 hrtimer_interrupt+0x101/0x220
 __sysvec_apic_timer_interrupt+0x5a/0x110
 sysvec_apic_timer_interrupt+0x8d/0xb0
 </IRQ>
 <TASK>
 asm_sysvec_apic_timer_interrupt+0x16/0x20
RIP: 0010:mn_hlist_invalidate_range_start+0x30/0x1c0
Code: 41 56 41 55 41 54 55 53 48 83 ec 10 48 8b 47 08 <48> 85 c0
RSP: 0018:ffffc900003d7c58 EFLAGS: 00000246
 __mmu_notifier_invalidate_range_start+0x54/0x90
 unmap_vmas+0x140/0x150
 exit_mmap+0xb5/0x2a0
 __mmput+0x3e/0x130
 do_exit+0x30e/0xb30
 do_group_exit+0x2d/0x90
 __x64_sys_exit_group+0x14/0x20
 do_syscall_64+0x3b/0x90
 entry_SYSCALL_64_after_hwframe+0x63/0xcd
 </TASK>
"""

ARM64_RCU_STALL = """\
rcu: INFO: rcu_preempt self-detected stall on CPU
rcu: \t1-....: (5249 ticks this GP) idle=c2c/1/0x4000000000000002 softirq=2716/2716 fqs=2514
\t(t=5250 jiffies g=2185 q=160 ncpus=2)
Task dump for CPU 1:
task:stress          state:R  running task     stack:0     pid:95    ppid:94     flags:0x00000002
CPU: 1 PID: 95 Comm: stress Not tainted 6.1.0 #1
pstate: 80400005 (Nzcv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)
pc : mn_hlist_invalidate_range_start+0x30/0x1c0
lr : __mmu_notifier_invalidate_range_start+0x54/0x90
Call trace:
 dump_backtrace+0xe4/0x140
 show_stack+0x20/0x30
 sched_show_task+0x158/0x180
 dump_cpu_task+0x48/0x5c
 rcu_dump_cpu_stacks+0xf4/0x160
 rcu_sched_clock_irq+0x9a0/0xc40
 update_process_times+0x68/0xa0
 tick_sched_timer+0x80/0xd0
 __hrtimer_run_queues+0x13c/0x2e0
 hrtimer_interrupt+0xf0/0x230
 arch_timer_handler_phys+0x3c/0x50
 handle_percpu_devid_irq+0x90/0x160
 generic_handle_domain_irq+0x34/0x50
 gic_handle_irq+0x4c/0xe0
 call_on_irq_stack+0x2c/0x5c
 do_interrupt_handler+0x80/0x84
 el1_interrupt+0x34/0x70
 el1h_64_irq_handler+0x18/0x24
 el1h_64_irq+0x64/0x68
 mn_hlist_invalidate_range_start+0x30/0x1c0
 __mmu_notifier_invalidate_range_start+0x54/0x90
 unmap_vmas+0x140/0x150
 exit_mmap+0xb5/0x2a0
 __mmput+0x3e/0x130
 do_exit+0x30e/0xb30
 do_group_exit+0x2d/0x90
 __arm64_sys_exit_group+0x18/0x20
 invoke_syscall+0x48/0x114
 el0_svc_common.constprop.0+0x44/0xec
"""

X86_KASAN = """\
==================================================================
BUG: KASAN: use-after-free in __mmdrop+0x4c/0x150
Read of size 8 at addr ffff888006b0c2c8 by task cpuhp/1/17

CPU: 1 PID: 17 Comm: cpuhp/1 Not tainted 6.1.0 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x49/0x63
 print_report+0x171/0x4a8
 kasan_report+0xb1/0x140
 __mmdrop+0x4c/0x150
 finish_cpu+0x2e/0x40
 kthread+0xf9/0x130
 ret_from_fork+0x22/0x30
 </TASK>

Allocated by task 95:
 kasan_save_stack+0x22/0x50
 __kasan_slab_alloc+0x6e/0x80
 kmem_cache_alloc+0x151/0x2e0
 mm_alloc+0x1c/0x60

Freed by task 96:
 kasan_save_stack+0x22/0x50
 kmem_cache_free+0xd5/0x2f0
 __mmdrop+0x110/0x150

==================================================================
"""

ARM64_KASAN = """\
==================================================================
BUG: KASAN: slab-out-of-bounds in mn_hlist_invalidate_range_start+0x30/0x1c0
Write of size 8 at addr ffff000006b0c2c8 by task stress/95

CPU: 1 PID: 95 Comm: stress Not tainted 6.1.0 #1
Call trace:
 dump_backtrace+0xe4/0x140
 show_stack+0x20/0x30
 dump_stack_lvl+0x64/0x80
 print_report+0x2d0/0x5c0
 kasan_report+0xb0/0x100
 __asan_store8+0x98/0xc0
 mn_hlist_invalidate_range_start+0x30/0x1c0
 __mmu_notifier_invalidate_range_start+0x54/0x90
 unmap_vmas+0x140/0x150

Allocated by task 95:
 kasan_save_stack+0x2c/0x60
 __kmalloc+0x98/0x1d0
 mmu_notifier_register+0x40/0x90

The buggy address belongs to the object at ffff000006b0c280
==================================================================
"""

X86_LOCKDEP = """\
======================================================
WARNING: possible circular locking dependency detected
6.1.0 #1 Not tainted
------------------------------------------------------
cpuhp/1/17 is trying to acquire lock:
ffffffff82a5e1d0 (cpu_hotplug_lock){++++}-{0:0}, at: rcu_barrier+0x2a/0x2c0

but task is already holding lock:
ffffffff82a5e0a8 (cpuhp_state-down){+.+.}-{0:0}, at: cpuhp_thread_fun+0x8a/0x220

which lock already depends on the new lock.

the existing dependency chain (in reverse order) is:

-> #1 (cpuhp_state-down){+.+.}-{0:0}:
       lock_acquire+0xd3/0x2f0
       cpuhp_thread_fun+0x9e/0x220
       smpboot_thread_fn+0x1c4/0x270

stack backtrace:
CPU: 1 PID: 17 Comm: cpuhp/1 Not tainted 6.1.0 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x49/0x63
 check_noncircular+0xfe/0x110
 __lock_acquire+0x1216/0x1e70
 lock_acquire+0xd3/0x2f0
 cpus_read_lock+0x3b/0xd0
 rcu_barrier+0x2a/0x2c0
 rcu_sync_dtor+0x2b/0x60
 __mmdrop+0x6e/0x150
 finish_cpu+0x2e/0x40
 </TASK>
"""

ARM64_LOCKDEP = """\
============================================
WARNING: possible recursive locking detected
6.1.0 #1 Not tainted
--------------------------------------------
cpuhp/1/17 is trying to acquire lock:
ffff80000a1e2f30 (cpu_hotplug_lock){++++}-{0:0}, at: rcu_barrier+0x34/0x2a0

but task is already holding lock:
ffff80000a1e2f30 (cpu_hotplug_lock){++++}-{0:0}, at: _cpu_down+0x5c/0x2f0

other info that might help us debug this:
stack backtrace:
CPU: 1 PID: 17 Comm: cpuhp/1 Not tainted 6.1.0 #1
Call trace:
 dump_backtrace+0xe4/0x140
 __lock_acquire+0x1a4c/0x1f00
 lock_acquire+0x1e0/0x2f0
 cpus_read_lock+0x5c/0x80
 rcu_barrier+0x34/0x2a0
"""

X86_GPF = """\
general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN
KASAN: null-ptr-deref in range [0x0000000000000008-0x000000000000000f]
CPU: 0 PID: 95 Comm: stress Not tainted 6.1.0 #1
RIP: 0010:__mmdrop+0x4c/0x150
Code: 48 89 fa 48 c1 ea 03 80 3c 02 00 <0f> 85 e4 00 00 00
Call Trace:
 <TASK>
 finish_cpu+0x2e/0x40
 </TASK>
"""

X86_PANIC = """\
Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b
CPU: 0 PID: 1 Comm: init Not tainted 6.1.0 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x49/0x63
 panic+0x11c/0x2f0
 do_exit.cold+0x15/0x15
 </TASK>
---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b ]---
"""

X86_MEMLEAK = """\
BUG: memory leak
unreferenced object 0xffff888006b0c2c0 (size 64):
  comm "stress", pid 95, jiffies 4294937295 (age 13.240s)
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace:
    [<ffffffff8133e2ab>] kmalloc_trace+0x26/0x60
    [<ffffffff81234567>] mmu_notifier_register+0x35/0x80
    [<ffffffff81234667>] kvm_create_vm+0x2f5/0x7a0
"""

X86_KCSAN = """\
==================================================================
BUG: KCSAN: data-race in __mmdrop / finish_cpu

write to 0xffff888006b0c2c8 of 8 bytes by task 17 on cpu 1:
 __mmdrop+0x4c/0x150
 finish_cpu+0x2e/0x40

read to 0xffff888006b0c2c8 of 8 bytes by task 95 on cpu 0:
 finish_cpu+0x2e/0x40
==================================================================
"""

X86_UBSAN = """\
================================================================================
UBSAN: array-index-out-of-bounds in mm/mmu_notifier.c:123:5
index 4 is out of range for type 'struct mmu_notifier *[4]'
CPU: 0 PID: 95 Comm: stress Not tainted 6.1.0 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x49/0x63
 __ubsan_handle_out_of_bounds.cold+0x44/0x49
 mn_hlist_invalidate_range_start+0x1b0/0x1c0
 __mmu_notifier_invalidate_range_start+0x54/0x90
 </TASK>
================================================================================
"""

ARM64_KFENCE = """\
==================================================================
BUG: KFENCE: use-after-free read in __mmdrop+0x4c/0x150

Use-after-free read at 0x00000000b0c2c8e1 (in kfence-#12):
 __mmdrop+0x4c/0x150
 finish_cpu+0x5c/0x80
 kthread+0x10c/0x120

kfence-#12: 0x00000000a0b1c2d3-0x00000000e5f6a7b8, size=64, cache=kmalloc-64
==================================================================
"""

ARM64_KMSAN = """\
=====================================================
BUG: KMSAN: uninit-value in __mmdrop+0x4c/0x150
 __mmdrop+0x4c/0x150
 finish_cpu+0x5c/0x80
 kthread+0x10c/0x120

Uninit was created at:
 slab_post_alloc_hook+0x11c/0x2a0
 kmem_cache_alloc+0x1f4/0x3a0
 mm_alloc+0x2c/0x90
=====================================================
"""

BAD_RSS = """\
BUG: Bad rss-counter state mm:00000000bccc5a55 type:MM_ANONPAGES val:1
BUG: non-zero pgtables_bytes on freeing mm: 24576
"""

X86_HARD_LOCKUP = """\
NMI watchdog: Watchdog detected hard LOCKUP on cpu 1
Modules linked in:
CPU: 1 PID: 95 Comm: stress Not tainted 6.1.0 #1
RIP: 0010:native_queued_spin_lock_slowpath+0x62/0x1f0
Code: 6e f0 0f ba 2f 08 0f 92 c0 0f b6 c0 c1 e0 08 89 c2 8b 07 <30> e4
Call Trace:
 <TASK>
 _raw_spin_lock+0x2a/0x40
 mmu_notifier_register+0x35/0x80
 kvm_create_vm+0x2f5/0x7a0
 kvm_dev_ioctl+0xa4/0x6a0
 __x64_sys_ioctl+0x8a/0xc0
 do_syscall_64+0x3b/0x90
 </TASK>
"""

/* kto KVM mmu-notifier storm: qemu-kvm's pattern in one process.
 *
 *   kvm duration=S name=NAME
 *
 * Two VMs (like qemu's scratch VM + real VM) each register an mmu notifier on this process's
 * mm, with a 2 MiB memslot on anonymous memory (THP-aligned, MADV_HUGEPAGE where available)
 * and one vCPU looping over tiny guest code that stores to guest RAM and then exits to us
 * (x86: an OUT to a port; arm64: a store outside every memslot, an MMIO exit). Meanwhile
 * the memory behind the memslots is churned: madvise(DONTNEED), mprotect RO->RW, fork with
 * a child writing to it (COW), munmap + mmap(MAP_FIXED) -- each fires
 * invalidate_range_start/end on both notifiers, and the next KVM_RUN faults the page back.
 *
 * The vCPU is never re-initialised: each KVM_RUN resumes the loop after the previous exit
 * (on arm64, re-initialising a vCPU whose last exit was MMIO makes the next KVM_RUN complete
 * the stale MMIO and skip an instruction).
 *
 * No /dev/kvm: a SKIP result with the reason. Prints one result line (guest_protocol RESULT).
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOT_SIZE (2UL << 20)
#define CODE_GPA 0x1000
#define DATA_GPA 0x2000
#define MMIO_GPA 0x10000000UL /* outside every memslot */

extern const unsigned char guest_start[], guest_end[];

#if defined(__x86_64__)
/* 16-bit real mode: loop { al++; [0x2000] = al; out 0x3f8, al } */
__asm__(".pushsection .rodata\n"
	".globl guest_start\n"
	".globl guest_end\n"
	".hidden guest_start\n"
	".hidden guest_end\n"
	".code16\n"
	"guest_start:\n"
	"	mov $0x3f8, %dx\n"
	"1:	inc %al\n"
	"	mov %al, 0x2000\n"
	"	out %al, (%dx)\n"
	"	jmp 1b\n"
	"guest_end:\n"
	".code64\n"
	".popsection\n");
#define EXPECTED_EXIT KVM_EXIT_IO
#elif defined(__aarch64__)
/* EL1, MMU off: loop { x1++; [x2] = x1; [x0] = x1 (MMIO exit) }. The labels (here and
 * for x86) are global: GOT relocations against local labels become .rodata+addend, and the linker then gives
 * both labels the same GOT slot (guest_end - guest_start == 0, no guest code copied). */
__asm__(".pushsection .rodata\n"
	".globl guest_start\n"
	".globl guest_end\n"
	".hidden guest_start\n"
	".hidden guest_end\n"
	"guest_start:\n"
	"1:	add x1, x1, #1\n"
	"	str x1, [x2]\n"
	"	str x1, [x0]\n"
	"	b 1b\n"
	"guest_end:\n"
	".popsection\n");
#define EXPECTED_EXIT KVM_EXIT_MMIO
#else
#error "kvm.c supports x86_64 and arm64"
#endif

struct vm {
	int fd, vcpu;
	struct kvm_run *run;
	unsigned char *mem;
	long exits;
};

static const char *name = "kvm-mmu-notifier";
static int kvm_fd, run_size, thp, want_thp = 1;
static volatile sig_atomic_t stuck; /* the watchdog fired: a KVM_RUN that never exits */
#define RUN_WATCHDOG_S 30

static void on_alarm(int sig)
{
	(void)sig;
	stuck = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what, int err)
{
	printf("%s: %s: %s\n", name, what, strerror(err));
	printf("<<KTO>> result %s status=FAIL reason=\"%s failed\" errno=%d\n", name, what, err);
	exit(1);
}

static void fill(unsigned char *mem)
{
	memcpy(mem + CODE_GPA, guest_start, guest_end - guest_start);
}

static unsigned char *map_slot(unsigned char *at)
{
	unsigned char *p;

	if (at) {
		p = mmap(at, SLOT_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	} else { /* 2 MiB aligned, so THP can back the whole slot */
		unsigned char *raw = mmap(NULL, 2 * SLOT_SIZE, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (raw == MAP_FAILED)
			fail("mmap", errno);
		p = (unsigned char *)(((uintptr_t)raw + SLOT_SIZE - 1) & ~(SLOT_SIZE - 1));
	}
	if (p == MAP_FAILED)
		fail("mmap(MAP_FIXED)", errno);
	if (want_thp && madvise(p, SLOT_SIZE, MADV_HUGEPAGE) == 0)
		thp = 1;
	fill(p);
	return p;
}

#if defined(__aarch64__)
static void set_reg(int vcpu, uint64_t id, uint64_t value)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&value };

	if (ioctl(vcpu, KVM_SET_ONE_REG, &reg) < 0)
		fail("KVM_SET_ONE_REG", errno);
}
static uint64_t get_reg(int vcpu, uint64_t id)
{
	uint64_t value = 0;
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&value };

	ioctl(vcpu, KVM_GET_ONE_REG, &reg);
	return value;
}
#define CORE_REG(field) \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(field))
#endif

static void setup_vcpu(struct vm *vm)
{
#if defined(__x86_64__)
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = CODE_GPA, .rflags = 2 };

	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sregs) < 0)
		fail("KVM_GET_SREGS", errno);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vm->vcpu, KVM_SET_SREGS, &sregs) < 0)
		fail("KVM_SET_SREGS", errno);
	if (ioctl(vm->vcpu, KVM_SET_REGS, &regs) < 0)
		fail("KVM_SET_REGS", errno);
#else
	struct kvm_vcpu_init init;

	if (ioctl(vm->fd, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		fail("KVM_ARM_PREFERRED_TARGET", errno);
	if (ioctl(vm->vcpu, KVM_ARM_VCPU_INIT, &init) < 0)
		fail("KVM_ARM_VCPU_INIT", errno);
	set_reg(vm->vcpu, CORE_REG(regs.pc), CODE_GPA);
	set_reg(vm->vcpu, CORE_REG(regs.regs[0]), MMIO_GPA);
	set_reg(vm->vcpu, CORE_REG(regs.regs[2]), DATA_GPA);
#endif
}

static void create_vm(struct vm *vm)
{
	struct kvm_userspace_memory_region region = { .slot = 0, .memory_size = SLOT_SIZE };

	vm->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		fail("KVM_CREATE_VM", errno);
	vm->mem = map_slot(NULL);
	region.userspace_addr = (uintptr_t)vm->mem;
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		fail("KVM_SET_USER_MEMORY_REGION", errno);
	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0)
		fail("KVM_CREATE_VCPU", errno);
	vm->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED)
		fail("mmap(vcpu)", errno);
	setup_vcpu(vm);
}

static void run_vcpu(struct vm *vm)
{
	alarm(RUN_WATCHDOG_S);
	while (ioctl(vm->vcpu, KVM_RUN, 0) < 0) {
		if (errno != EINTR && errno != EAGAIN)
			fail("KVM_RUN", errno);
		if (stuck) {
#if defined(__aarch64__)
			printf("%s: stuck vCPU: pc=0x%llx pstate=0x%llx x1=0x%llx elr=0x%llx "
			       "esr=0x%llx far=0x%llx\n", name,
			       (unsigned long long)get_reg(vm->vcpu, CORE_REG(regs.pc)),
			       (unsigned long long)get_reg(vm->vcpu, CORE_REG(regs.pstate)),
			       (unsigned long long)get_reg(vm->vcpu, CORE_REG(regs.regs[1])),
			       (unsigned long long)get_reg(vm->vcpu, CORE_REG(elr_el1)),
			       (unsigned long long)get_reg(vm->vcpu, ARM64_SYS_REG(3, 0, 5, 2, 0)),
			       (unsigned long long)get_reg(vm->vcpu, ARM64_SYS_REG(3, 0, 6, 0, 0)));
#endif
			printf("<<KTO>> result %s status=FAIL reason=\"vCPU made no exit within "
			       "%d s\" exits=%ld\n", name, RUN_WATCHDOG_S, vm->exits);
			exit(1);
		}
	}
	alarm(0);
	if (vm->run->exit_reason != EXPECTED_EXIT) {
		printf("%s: unexpected KVM exit %u (expected %u)\n", name, vm->run->exit_reason,
		       EXPECTED_EXIT);
		printf("<<KTO>> result %s status=FAIL reason=\"unexpected KVM exit\" exit=%u\n", name,
		       vm->run->exit_reason);
		exit(1);
	}
	vm->exits++;
}

static long forks;

static void churn(struct vm *vm, long i)
{
	pid_t pid;
	int status;

	switch (i % 4) {
	case 0:
		if (madvise(vm->mem, SLOT_SIZE, MADV_DONTNEED) < 0)
			fail("madvise(MADV_DONTNEED)", errno);
		fill(vm->mem);
		break;
	case 1:
		if (mprotect(vm->mem, SLOT_SIZE, PROT_READ) < 0 ||
		    mprotect(vm->mem, SLOT_SIZE, PROT_READ | PROT_WRITE) < 0)
			fail("mprotect", errno);
		break;
	case 2: /* COW: the child writes, then the parent's next write copies */
		pid = fork();
		if (pid < 0)
			fail("fork", errno);
		if (pid == 0) {
			memset(vm->mem + DATA_GPA, 0x5a, 4096);
			_exit(0);
		}
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
			printf("<<KTO>> result %s status=FAIL reason=\"forked child died\" "
			       "status=%d\n", name, status);
			exit(1);
		}
		forks++;
		vm->mem[DATA_GPA + 8] ^= 1;
		break;
	case 3:
		if (munmap(vm->mem, SLOT_SIZE) < 0)
			fail("munmap", errno);
		map_slot(vm->mem);
		break;
	}
}

int main(int argc, char **argv)
{
	struct vm vms[2];
	double duration = 20, start, elapsed;
	long iterations = 0;
	int i, api;
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART: EINTR from KVM_RUN */

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++) {
		char *v = strchr(argv[i], '=');

		if (!v)
			continue;
		*v++ = 0;
		if (!strcmp(argv[i], "duration"))
			duration = atof(v);
		else if (!strcmp(argv[i], "name"))
			name = v;
		else if (!strcmp(argv[i], "thp"))
			want_thp = atoi(v);
	}
	sigaction(SIGALRM, &sa, NULL);
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		printf("<<KTO>> result %s status=SKIP reason=\"KVM unavailable in the guest: "
		       "/dev/kvm: %s\"\n", name, strerror(errno));
		return 0;
	}
	api = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION)
		fail("KVM_GET_API_VERSION", api < 0 ? errno : EINVAL);
	run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < 0)
		fail("KVM_GET_VCPU_MMAP_SIZE", errno);
	memset(vms, 0, sizeof(vms));
	create_vm(&vms[0]);
	create_vm(&vms[1]);
	for (i = 0; i < 2; i++)
		run_vcpu(&vms[i]);
	printf("%s: two VMs running (api %d, thp %s), churning for %.0f s\n", name, api,
	       thp ? "advised" : "unavailable", duration);
	start = now();
	while ((elapsed = now() - start) < duration) {
		for (i = 0; i < 2; i++) {
			churn(&vms[i], iterations);
			run_vcpu(&vms[i]);
			run_vcpu(&vms[i]);
		}
		iterations++;
	}
	printf("<<KTO>> result %s status=PASS iterations=%ld iterations_per_s=%.1f exits=%ld "
	       "exits_per_s=%.1f forks=%ld vms=2 thp=%d duration_s=%.1f\n",
	       name, iterations, iterations / elapsed, vms[0].exits + vms[1].exits,
	       (vms[0].exits + vms[1].exits) / elapsed, forks, thp, elapsed);
	return 0;
}

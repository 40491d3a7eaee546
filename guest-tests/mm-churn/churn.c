/* kto mm-lifecycle churn: short-lived mm's created and torn down on every CPU.
 *
 *   churn duration=S threads=N name=NAME
 *
 * N worker threads (default: 2 per configured CPU), each re-pinned to the next CPU every
 * round so they keep landing on CPUs that a parallel hotplug loop is offlining. Each round
 * a worker forks: the child maps and touches anonymous memory, sometimes starts a thread
 * that touches it too (a second user of the mm), then either execs busybox `true` (a new
 * mm replaces the old one) or exits; the parent reaps it. So mm_users/mm_count, lazy-TLB
 * active_mm references and mmdrop run on CPUs that come and go (seeds 001, 003, 004).
 * A child killed by a signal or exiting non-zero is a FAIL; fork running out of memory is
 * counted (and is a FAIL if nothing else ever succeeds). Prints one result line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_MAP (256 * 1024)

static const char *name = "mm-churn";
static double duration = 20;
static int ncpus;
static atomic_long forks, execs, threads_started, fork_errors, repins;
static atomic_int failed;
static char fail_reason[128];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *toucher(void *arg)
{
	volatile char *p = arg;
	int i;

	for (i = 0; i < CHILD_MAP; i += 4096)
		p[i]++;
	return NULL;
}

static void child(long round)
{
	char *p = mmap(NULL, CHILD_MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t t;
	int i;

	if (p == MAP_FAILED)
		_exit(2);
	for (i = 0; i < CHILD_MAP; i += 4096)
		p[i] = (char)i;
	if (round % 3 == 0 && pthread_create(&t, NULL, toucher, p) == 0)
		pthread_join(t, NULL);
	if (round % 4 == 0) {
		execl("/bin/busybox", "true", (char *)NULL);
		_exit(3);
	}
	munmap(p, CHILD_MAP);
	_exit(0);
}

static void set_fail(const char *reason)
{
	if (!atomic_exchange(&failed, 1))
		snprintf(fail_reason, sizeof(fail_reason), "%s", reason);
}

static void *worker(void *arg)
{
	long id = (long)arg, round = 0;
	double end = now() + duration;

	while (now() < end && !atomic_load(&failed)) {
		cpu_set_t set;
		pid_t pid;
		int status;

		CPU_ZERO(&set);
		CPU_SET((id + round) % ncpus, &set);
		if (sched_setaffinity(0, sizeof(set), &set) == 0) /* EINVAL: that CPU is offline */
			atomic_fetch_add(&repins, 1);
		pid = fork();
		if (pid < 0) {
			atomic_fetch_add(&fork_errors, 1);
			usleep(1000);
			continue;
		}
		if (pid == 0)
			child(round);
		if (waitpid(pid, &status, 0) < 0) {
			set_fail("waitpid failed");
			break;
		}
		atomic_fetch_add(&forks, 1);
		if (round % 4 == 0)
			atomic_fetch_add(&execs, 1);
		if (round % 3 == 0)
			atomic_fetch_add(&threads_started, 1);
		if (WIFSIGNALED(status)) {
			char why[64];

			snprintf(why, sizeof(why), "child killed by signal %d", WTERMSIG(status));
			set_fail(why);
		} else if (WEXITSTATUS(status)) {
			char why[64];

			snprintf(why, sizeof(why), "child exited with status %d", WEXITSTATUS(status));
			set_fail(why);
		}
		round++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t tids[256];
	int i, nthreads = 0;
	double start, elapsed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++) {
		char *v = strchr(argv[i], '=');

		if (!v)
			continue;
		*v++ = 0;
		if (!strcmp(argv[i], "duration"))
			duration = atof(v);
		else if (!strcmp(argv[i], "threads"))
			nthreads = atoi(v);
		else if (!strcmp(argv[i], "name"))
			name = v;
	}
	ncpus = sysconf(_SC_NPROCESSORS_CONF);
	if (ncpus < 1)
		ncpus = 1;
	if (nthreads <= 0)
		nthreads = 2 * ncpus;
	if (nthreads > 256)
		nthreads = 256;
	printf("%s: %d threads over %d CPUs for %.0f s\n", name, nthreads, ncpus, duration);
	start = now();
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&tids[i], NULL, worker, (void *)(long)i)) {
			set_fail("pthread_create failed");
			nthreads = i;
			break;
		}
	for (i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	elapsed = now() - start;
	if (!failed && forks == 0)
		set_fail("no fork succeeded");
	printf("<<KTO>> result %s status=%s", name, failed ? "FAIL" : "PASS");
	if (failed)
		printf(" reason=\"%s\"", fail_reason);
	printf(" threads=%d cpus=%d forks=%ld forks_per_s=%.1f execs=%ld child_threads=%ld "
	       "fork_errors=%ld repins=%ld duration_s=%.1f\n",
	       nthreads, ncpus, (long)forks, forks / elapsed, (long)execs, (long)threads_started,
	       (long)fork_errors, (long)repins, elapsed);
	return failed ? 1 : 0;
}

/* kto CPU hotplug loop: offline/online CPUs through sysfs for a duration.
 *
 *   hotplug duration=S mode=sequential|random|all-but-one seed=N name=NAME trace=0|1
 *
 * random uses its own xorshift generator seeded with `seed` (chosen and printed when not
 * given), so the same seed replays the same sequence of CPU operations. cpu0 is never
 * touched (x86_64 has no cpu0/online without BOOTPARAM_HOTPLUG_CPU0). An offline that the
 * kernel refuses with EBUSY is retried; an online that fails, or a CPU that is not online
 * at the end, is a FAIL. Prints one result line (orchestrator/guest/protocol.py RESULT).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 64
#define RETRIES 20

static const char *name = "hotplug";
static int trace;
static int cpus[MAX_CPUS], ncpus;
static long ops, offline_fail, online_fail, busy_retries;
static uint64_t rng_state;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static int online_path(int cpu, char *buf, size_t len)
{
	return snprintf(buf, len, "/sys/devices/system/cpu/cpu%d/online", cpu);
}

static int is_online(int cpu)
{
	char path[96], c = '1';
	int fd;

	online_path(cpu, path, sizeof(path));
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 1;
	if (read(fd, &c, 1) != 1)
		c = '?';
	close(fd);
	return c == '1';
}

/* 0 on success, else the errno of the last attempt */
static int set_online(int cpu, int on)
{
	char path[96];
	int attempt, err = 0;

	online_path(cpu, path, sizeof(path));
	for (attempt = 0; attempt < RETRIES; attempt++) {
		int fd = open(path, O_WRONLY);

		if (fd < 0)
			return errno;
		err = write(fd, on ? "1" : "0", 1) == 1 ? 0 : errno;
		close(fd);
		if (!err)
			break;
		if (err != EBUSY && err != EAGAIN)
			break;
		busy_retries++;
		usleep(10000);
	}
	ops++;
	if (trace)
		printf("%s: op %ld cpu%d %s%s%s\n", name, ops, cpu, on ? "on" : "off",
		       err ? " error " : "", err ? strerror(err) : "");
	return err;
}

static void find_cpus(void)
{
	char path[96];
	int cpu;

	for (cpu = 1; cpu < MAX_CPUS && ncpus < MAX_CPUS; cpu++) {
		online_path(cpu, path, sizeof(path));
		if (access(path, W_OK) == 0)
			cpus[ncpus++] = cpu;
	}
}

static int cycle(int cpu)
{
	int err = set_online(cpu, 0);

	if (err && err != EBUSY) {
		offline_fail++;
		printf("%s: cpu%d offline failed: %s\n", name, cpu, strerror(err));
	}
	err = set_online(cpu, 1);
	if (err) {
		online_fail++;
		printf("%s: cpu%d online failed: %s\n", name, cpu, strerror(err));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = "sequential";
	double duration = 20, start, elapsed;
	unsigned long long seed = 0;
	long cycles = 0;
	int i, bad = -1, have_seed = 0;

	for (i = 1; i < argc; i++) {
		char *v = strchr(argv[i], '=');

		if (!v)
			continue;
		*v++ = 0;
		if (!strcmp(argv[i], "duration"))
			duration = atof(v);
		else if (!strcmp(argv[i], "mode"))
			mode = v;
		else if (!strcmp(argv[i], "seed") && *v)
			seed = strtoull(v, NULL, 0), have_seed = 1;
		else if (!strcmp(argv[i], "name"))
			name = v;
		else if (!strcmp(argv[i], "trace"))
			trace = atoi(v);
	}
	if (strcmp(mode, "sequential") && strcmp(mode, "random") && strcmp(mode, "all-but-one")) {
		printf("<<KTO>> result %s status=FAIL reason=\"unknown mode %s\"\n", name, mode);
		return 1;
	}
	if (!have_seed)
		seed = ((unsigned long long)time(NULL) << 16) ^ (unsigned long long)getpid();
	rng_state = seed ? seed : 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	find_cpus();
	if (!ncpus) {
		printf("<<KTO>> result %s status=SKIP reason=\"no hotpluggable CPU besides cpu0\"\n",
		       name);
		return 0;
	}
	printf("%s: mode=%s seed=%llu cpus=%d duration=%.0fs (replay: --arg seed=%llu --arg mode=%s)\n",
	       name, mode, seed, ncpus + 1, duration, seed, mode);
	start = now();
	while (now() - start < duration && bad < 0) {
		if (!strcmp(mode, "sequential")) {
			for (i = 0; i < ncpus && bad < 0; i++, cycles++)
				if (cycle(cpus[i]))
					bad = cpus[i];
		} else if (!strcmp(mode, "random")) {
			int cpu = cpus[rng() % ncpus];

			if (cycle(cpu))
				bad = cpu;
			cycles++;
		} else { /* all-but-one: everything but cpu0 down, then everything up */
			for (i = 0; i < ncpus; i++) {
				int err = set_online(cpus[i], 0);

				if (err && err != EBUSY) {
					offline_fail++;
					printf("%s: cpu%d offline failed: %s\n", name, cpus[i],
					       strerror(err));
				}
			}
			for (i = 0; i < ncpus; i++, cycles++)
				if (set_online(cpus[i], 1)) {
					online_fail++;
					bad = cpus[i];
				}
		}
	}
	elapsed = now() - start;
	for (i = 0; i < ncpus; i++) { /* leave every CPU online; one that stays down is a FAIL */
		if (!is_online(cpus[i]))
			set_online(cpus[i], 1);
		if (!is_online(cpus[i]) && bad < 0)
			bad = cpus[i];
	}
	printf("<<KTO>> result %s status=%s", name, bad >= 0 || offline_fail ? "FAIL" : "PASS");
	if (bad >= 0)
		printf(" reason=\"cpu did not come back online\" cpu=%d", bad);
	else if (offline_fail)
		printf(" reason=\"cpu offline failed\"");
	printf(" mode=%s seed=%llu cpus=%d cycles=%ld cycles_per_s=%.2f ops=%ld offline_failures=%ld "
	       "online_failures=%ld busy_retries=%ld duration_s=%.1f\n",
	       mode, seed, ncpus + 1, cycles, elapsed > 0 ? cycles / elapsed : 0.0, ops,
	       offline_fail, online_fail, busy_retries, elapsed);
	return bad >= 0 || offline_fail ? 1 : 0;
}

/* kto smoke helper: proves a static binary built by the arch's cross gcc runs in the guest,
 * and that the kernel reports the machine it was built for. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#if defined(__x86_64__)
#define KTO_ARCH "x86_64"
#define UNAME_MACHINE "x86_64"
#elif defined(__aarch64__)
#define KTO_ARCH "arm64"
#define UNAME_MACHINE "aarch64"
#elif defined(__sparc__) && defined(__arch64__)
#define KTO_ARCH "sparc64"
#define UNAME_MACHINE "sparc64"
#else
#error "unknown arch: add it here"
#endif

int main(void)
{
	struct utsname u;

	if (uname(&u) != 0) {
		perror("kto-hello: uname");
		return 1;
	}
	if (strcmp(u.machine, UNAME_MACHINE) != 0) {
		printf("kto-hello: " KTO_ARCH " built, but the kernel says %s\n", u.machine);
		return 1;
	}
	printf("kto-hello: " KTO_ARCH " pid=%d ok\n", (int)getpid());
	return 0;
}

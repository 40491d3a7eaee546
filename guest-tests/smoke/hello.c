/* kto smoke helper: proves a static binary built by the arch's cross gcc runs in the guest,
 * and that the kernel reports the machine it was built for.
 *
 * KTO_ARCH (the profile's name) and KTO_UNAME_MACHINE (its target.uname_machine) come from
 * the arch profile: kto compiles every guest helper with them (guest/initramfs.py
 * helper_defines), so a new arch needs no code here. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#if !defined(KTO_ARCH) || !defined(KTO_UNAME_MACHINE)
#error "build with -DKTO_ARCH=\"<arch>\" -DKTO_UNAME_MACHINE=\"<uname -m>\" (kto passes them)"
#endif

int main(void)
{
	struct utsname u;

	if (uname(&u) != 0) {
		perror("kto-hello: uname");
		return 1;
	}
	if (strcmp(u.machine, KTO_UNAME_MACHINE) != 0) {
		printf("kto-hello: " KTO_ARCH " built, but the kernel says %s (expected %s)\n",
		       u.machine, KTO_UNAME_MACHINE);
		return 1;
	}
	printf("kto-hello: " KTO_ARCH " pid=%d ok\n", (int)getpid());
	return 0;
}

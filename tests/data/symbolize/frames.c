/* A tiny program whose stack has the shapes kernel traces have: a frame with a function
 * inlined at the call site, and a call to a noreturn function as the last instruction (its
 * return address is past the end of the caller). Built by tests/symbolize with -g -O2 for
 * every kto arch; the markers name the lines the decoder must report.
 */
#include <stdlib.h>

volatile int sink;

__attribute__((noinline)) int callee(int x)
{
	sink = x; /* CALLEE_BODY */
	return x + sink;
}

static inline __attribute__((always_inline)) int helper(int x)
{
	return callee(x) * 3; /* HELPER_CALL */
}

__attribute__((noinline)) int outer(int x)
{
	int r = helper(x); /* OUTER_CALL */

	sink = r;
	return r;
}

__attribute__((noinline, noreturn)) void die(void)
{
	abort();
}

__attribute__((noinline)) void last_call(int x)
{
	sink = x;
	die(); /* NORETURN_CALL */
}

int main(int argc, char **argv)
{
	(void)argv;
	if (argc > 5)
		last_call(argc);
	return outer(argc);
}

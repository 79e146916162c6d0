// SPDX-License-Identifier: GPL-2.0
/*
 * usdt_target.c: a program with USDT probes for runtime/tests/usdt.rs,
 * built at test time with `gcc -O2 usdt_target.c usdt_sema.c` against
 * <sys/sdt.h> (Debian: systemtap-sdt-dev).
 *
 * PROBES (provider skelgen)
 *   zero    no arguments.
 *   one     one argument: an int, -42 (signed, 4 bytes, in a register).
 *           Two call sites, so two .note.stapsdt notes: one attach covers
 *           both.
 *   three   three arguments: an unsigned short 65000 in memory (on the
 *           stack), the constant 7, a long long 1 << 40 in a register.
 *   seven   one argument: the constant -7.
 *   sema    one argument: the long 1234567890123; guarded by the semaphore
 *           skelgen_sema_semaphore (usdt_sema.c), so it only fires while a
 *           probe is attached and the kernel has bumped the semaphore.
 *
 * PROTOCOL
 *   Reads one command per line on stdin and answers one line on stdout:
 *     zero | one | one2 | three | seven | sema
 *                              fire that probe (one2: the second call
 *                              site of `one`), answer "ok"
 *     semaphore                answer the semaphore's value
 *   and exits at end of input.
 */
#include <stdio.h>
#include <string.h>
#include <sys/sdt.h>

extern unsigned short skelgen_sema_semaphore;
void fire_sema(long value);

static volatile int int_value = -42;
static volatile unsigned short short_value = 65000;
static volatile int calls;

/* The empty asm statements keep a value in a register (or, for "+m", in
 * memory) so that the probes' argument kinds do not depend on the
 * optimiser's mood; `calls` keeps the two `one` sites from being folded.
 */
__attribute__((noinline)) static void fire_one(void)
{
	int v = int_value;

	__asm__ volatile("" : "+r"(v));
	DTRACE_PROBE1(skelgen, one, v);
	calls += 1;
}

__attribute__((noinline)) static void fire_one_again(void)
{
	int v = int_value;

	__asm__ volatile("" : "+r"(v));
	DTRACE_PROBE1(skelgen, one, v);
	calls += 2;
}

__attribute__((noinline)) static void fire_three(void)
{
	unsigned short s = short_value;
	long long big = 1LL << 40;

	__asm__ volatile("" : "+m"(s));
	__asm__ volatile("" : "+r"(big));
	DTRACE_PROBE3(skelgen, three, s, 7, big);
}

int main(void)
{
	char line[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = 0;
		if (!strcmp(line, "zero")) {
			DTRACE_PROBE(skelgen, zero);
		} else if (!strcmp(line, "one")) {
			fire_one();
		} else if (!strcmp(line, "one2")) {
			fire_one_again();
		} else if (!strcmp(line, "three")) {
			fire_three();
		} else if (!strcmp(line, "seven")) {
			DTRACE_PROBE1(skelgen, seven, -7);
		} else if (!strcmp(line, "sema")) {
			fire_sema(1234567890123L);
		} else if (!strcmp(line, "semaphore")) {
			printf("%u\n", (unsigned)skelgen_sema_semaphore);
			continue;
		} else {
			printf("unknown command %s\n", line);
			continue;
		}
		printf("ok\n");
	}
	return 0;
}

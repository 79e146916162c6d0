// SPDX-License-Identifier: GPL-2.0
/*
 * usdt_sema.c: the semaphore-guarded probe skelgen:sema of usdt_target.c.
 * A file of its own because _SDT_HAS_SEMAPHORES makes every probe of a
 * translation unit reference a semaphore.
 */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

__extension__ unsigned short skelgen_sema_semaphore
	__attribute__((unused)) __attribute__((section(".probes")));

__attribute__((noinline)) void fire_sema(long value)
{
	if (skelgen_sema_semaphore)
		DTRACE_PROBE1(skelgen, sema, value);
}

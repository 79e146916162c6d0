// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * bpf_time.c: how long a process spends inside bpf() and perf_event_open().
 *
 * libbpf (system or vendored), libbpf-rs, aya and skelgen-runtime all make
 * these two syscalls through libc's variadic syscall(). Linked into an
 * executable, this definition of syscall() wins over libc's for every caller
 * in that executable (the static libbpf inside libbpf-rs included), so the
 * time spent in the kernel's BPF work can be counted exactly, per call, with
 * no tracer attached: wall time minus this is the library's own time.
 *
 * Every other syscall number is forwarded untouched. The counters are plain
 * globals: the benchmarks that read them are single-threaded.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

typedef long (*syscall_fn)(long, ...);

static syscall_fn real_syscall;

uint64_t bench_bpf_ns;
uint64_t bench_bpf_calls;
uint64_t bench_perf_open_ns;
uint64_t bench_perf_open_calls;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

long syscall(long number, ...)
{
	va_list ap;
	long a[6];
	uint64_t start;
	long ret;
	int i;

	/* Like glibc's own syscall(): always six argument registers. */
	va_start(ap, number);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);

	if (!real_syscall) {
		real_syscall = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
		if (!real_syscall) {
			errno = ENOSYS;
			return -1;
		}
	}
	if (number != SYS_bpf && number != SYS_perf_event_open)
		return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);

	start = now_ns();
	ret = real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (number == SYS_bpf) {
		bench_bpf_ns += now_ns() - start;
		bench_bpf_calls++;
	} else {
		bench_perf_open_ns += now_ns() - start;
		bench_perf_open_calls++;
	}
	return ret;
}

/* Nanoseconds spent in bpf() + perf_event_open() so far, and the call count. */
uint64_t bench_kernel_ns(void)
{
	return bench_bpf_ns + bench_perf_open_ns;
}

/*
 * CPU time of the calling thread: the consumption rows report it beside wall
 * time, because on a shared machine the consumer (which never sleeps: every
 * sample is in the buffer before its clock starts) can be descheduled, and
 * that time belongs to nobody's consumer.
 */
uint64_t bench_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t bench_kernel_calls(void)
{
	return bench_bpf_calls + bench_perf_open_calls;
}

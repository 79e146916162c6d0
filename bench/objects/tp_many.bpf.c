// SPDX-License-Identifier: GPL-2.0
/*
 * tp_many.bpf.c: a tracepoint-heavy benchmark object, as tools that watch
 * many syscalls are. Sixteen tracepoint programs on cheap syscalls' entry
 * events, each counting into its own slot of one array, so that a skeleton's
 * attach makes sixteen perf-event links and its destroy closes them: the row
 * that shows what destroying many tracepoint links costs (the kernel waits
 * for RCU grace periods when a tracepoint's last perf event goes away).
 *
 * Loads and attaches on 6.18 (tracefs needed: the bench mounts it).
 *
 * Build (from bench/objects): ./build.sh
 */
#include "vmlinux-lite.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline int hit(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

#define TP(n, syscall)                                      \
	SEC("tracepoint/syscalls/sys_enter_" #syscall)      \
	int enter_##syscall(void *ctx)                      \
	{                                                   \
		return hit(n);                              \
	}

TP(0, getppid)
TP(1, getpid)
TP(2, gettid)
TP(3, getuid)
TP(4, geteuid)
TP(5, getgid)
TP(6, getegid)
TP(7, getpgrp)
TP(8, sched_yield)
TP(9, umask)
TP(10, getpgid)
TP(11, getsid)
TP(12, getpriority)
TP(13, getrlimit)
TP(14, times)
TP(15, sysinfo)

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * demo.bpf.c: counts getppid() calls per process, for the builder-demo
 * example. Only UAPI and libbpf headers: the Builder's default flags
 * (-target bpf plus the host's system include dirs) are enough.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);   /* tgid */
	__type(value, __u64); /* calls */
} calls SEC(".maps");

/* Set before load to count one process only; 0 counts all. */
const volatile __u32 target_tgid = 0;

__u64 total = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *n;

	if (target_tgid && tgid != target_tgid)
		return 0;
	__sync_fetch_and_add(&total, 1);
	n = bpf_map_lookup_elem(&calls, &tgid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls, &tgid, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

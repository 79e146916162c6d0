// A libbpf-tools-style program on a full vmlinux.h (generated from the
// running kernel at test time), to measure what embedding keeps of an
// object whose DWARF describes the kernel types it reads.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
const volatile int targ_tgid = 0;
struct event { int pid; int ppid; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 16); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, u32); __type(value, u64); } counts SEC(".maps");
SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) return 0;
	e->pid = BPF_CORE_READ(task, tgid);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	u32 k = e->pid; u64 one = 1;
	bpf_ringbuf_submit(e, 0);
	bpf_map_update_elem(&counts, &k, &one, 0);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * runqlat.bpf.c: run-queue latency, as libbpf-tools' runqlat: the time from
 * a task's wakeup (or preemption) to its running on a CPU, into a log2
 * histogram.
 *
 * Two families of the same three programs: tp_btf (typed arguments, cheaper)
 * and raw_tp (for kernels without BTF-enabled tracepoints). User space loads
 * one family (set_autoload).
 */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define TASK_RUNNING 0
#define MAX_SLOTS 26
#define MAX_ENTRIES 10240

struct task_struct {
	unsigned int __state;
	int pid;
} __attribute__((preserve_access_index));

/* Before Linux 5.14 the field was `long state`. */
struct task_struct___pre_5_14 {
	long state;
} __attribute__((preserve_access_index));

/* Set before load: histogram in milliseconds instead of microseconds. */
const volatile bool targ_ms = false;

/* log2 histogram of latencies: hist[i] counts latencies in [2^i, 2^(i+1)),
 * hist[0] also 0; the last slot takes everything above. */
__u32 hist[MAX_SLOTS] = {};

/* Thread id -> when it was put on a run queue (ns). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

static __always_inline unsigned int log2_floor(__u64 v)
{
	unsigned int r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre_5_14 *)t, state);
}

static __always_inline int enqueue(struct task_struct *t)
{
	__u32 pid = BPF_CORE_READ(t, pid);
	__u64 ts;

	if (!pid)	/* the idle task */
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
	return 0;
}

static __always_inline int switched(struct task_struct *prev, struct task_struct *next)
{
	__u32 pid;
	__u64 *tsp, delta;
	unsigned int slot;

	/* Preempted while runnable: it waits on the run queue from now. */
	if (task_state(prev) == TASK_RUNNING)
		enqueue(prev);

	pid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&start, &pid);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, &pid);
	delta /= targ_ms ? 1000000 : 1000;
	slot = log2_floor(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&hist[slot], 1);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	return enqueue(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct *p)
{
	return enqueue(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(prev, next);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
	return enqueue(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
	return enqueue(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(prev, next);
}

char LICENSE[] SEC("license") = "GPL";

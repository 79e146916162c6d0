// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * execsnoop.bpf.c: one event per execve(), as libbpf-tools' execsnoop.
 *
 * sys_enter_execve collects the file name and arguments into a per-thread
 * slot of `execs` (an event is too big for the 512-byte BPF stack);
 * sys_exit_execve adds the return value and the new comm and sends the used
 * part of the event to user space: over the `events` ring buffer, or, when
 * user space switched `events` to a perf event array before load (kernels
 * without ring buffers; --perf-buffer), with bpf_perf_event_output. The
 * `use_ringbuf` constant picks the helper; the verifier drops the other
 * branch, so neither helper ever meets the wrong map type.
 */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "execsnoop.h"

struct task_struct {
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_enter {
	long id;
	unsigned long args[6];
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_exit {
	long id;
	long ret;
} __attribute__((preserve_access_index));

/* Set before load. */
const volatile __u32 targ_uid = INVALID_UID;	/* only this uid's execs */
const volatile bool ignore_failed = true;	/* drop execs that failed */
const volatile bool use_ringbuf = true;		/* else perf event output */

static const struct event empty_event = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);	/* thread id */
	__type(value, struct event);
} execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Keeps struct event in the object's BTF for the skeleton's types. */
struct event *unused_event __attribute__((unused));

SEC("tracepoint/syscalls/sys_enter_execve")
int handle_execve_enter(struct trace_event_raw_sys_enter *ctx)
{
	const char **argv = (const char **)ctx->args[1];
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct task_struct *task;
	struct event *e;
	unsigned int size;
	const char *arg;
	long n;
	int i;

	if (targ_uid != INVALID_UID && uid != targ_uid)
		return 0;
	if (bpf_map_update_elem(&execs, &tid, &empty_event, BPF_NOEXIST))
		return 0;
	e = bpf_map_lookup_elem(&execs, &tid);
	if (!e)
		return 0;

	e->pid = id >> 32;
	e->uid = uid;
	task = (struct task_struct *)bpf_get_current_task();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);

	/* The file name stands first, as in libbpf-tools (argv[0] may differ). */
	n = bpf_probe_read_user_str(e->args, ARG_SIZE, (const char *)ctx->args[0]);
	if (n < 0)
		return 0;
	size = n;
	e->args_count = 1;
	for (i = 1; i < MAX_ARGS; i++) {
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			goto done;
		if (size > ARGS_BUF_SIZE - ARG_SIZE)
			break;
		n = bpf_probe_read_user_str(&e->args[size], ARG_SIZE, arg);
		if (n < 0)
			goto done;
		size += n;
		e->args_count++;
	}
	/* Out of room: count one more so that user space prints "...". */
	if (!bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) && arg)
		e->args_count++;
done:
	e->args_size = size;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int handle_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event *e;
	unsigned int len;
	long ret;

	e = bpf_map_lookup_elem(&execs, &tid);
	if (!e)
		return 0;
	ret = BPF_CORE_READ(ctx, ret);
	if (ignore_failed && ret < 0)
		goto cleanup;
	e->retval = ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	len = offsetof(struct event, args) + e->args_size;
	if (len > sizeof(*e))
		goto cleanup;
	if (use_ringbuf)
		bpf_ringbuf_output(&events, e, len, 0);
	else
		bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, len);
cleanup:
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

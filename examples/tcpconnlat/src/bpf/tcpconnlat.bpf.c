// SPDX-License-Identifier: GPL-2.0
/*
 * tcpconnlat.bpf.c: TCP active-connect latency, as libbpf-tools' tcpconnlat.
 *
 * tcp_v{4,6}_connect() stamps the socket with the time, the caller's comm
 * and tgid; when tcp_rcv_state_process() then sees the socket still in
 * SYN_SENT (the SYN-ACK has arrived), the time since the stamp is the
 * connect latency: one event over the perf buffer, and the stamp goes. The
 * tcp_destroy_sock tracepoint drops stamps of sockets that never got there.
 *
 * Two families do the same: fentry programs (BPF trampolines) and kprobes;
 * user space loads one of them (fentry first). Filters are read-only
 * constants set before load.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tcpconnlat.h"

#define AF_INET 2
#define TCP_SYN_SENT 2

/* x86-64 kprobe register frame with the uapi names bpf_tracing.h uses. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};

/* The socket fields read here; CO-RE places them in the running kernel's
 * struct sock_common (inside anonymous unions there). */
struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__u32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	__u32 skc_daddr;
	__u32 skc_rcv_saddr;
	__u16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk {
	const void *skaddr;
} __attribute__((preserve_access_index));

const volatile __u64 targ_min_us = 0;	/* report only connects this slow */
const volatile __u32 targ_tgid = 0;	/* only this process (0: all) */

/* What the connect left for the SYN-ACK to find. */
struct stamp {
	char comm[TASK_COMM_LEN];
	__u64 ts;
	__u32 tgid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);	/* the struct sock's address */
	__type(value, struct stamp);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

static __always_inline int on_connect(struct sock *sk)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 key = (__u64)sk;
	struct stamp s = {};

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	bpf_get_current_comm(s.comm, sizeof(s.comm));
	s.tgid = tgid;
	s.ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &key, &s, BPF_ANY);
	return 0;
}

static __always_inline int on_state_process(void *ctx, struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct event ev = {};
	struct stamp *s;
	__u64 now;

	if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_SYN_SENT)
		return 0;
	s = bpf_map_lookup_elem(&start, &key);
	if (!s)
		return 0;
	now = bpf_ktime_get_ns();
	if (now < s->ts)
		goto done;
	ev.delta_us = (now - s->ts) / 1000;
	if (targ_min_us && ev.delta_us < targ_min_us)
		goto done;
	__builtin_memcpy(ev.comm, s->comm, sizeof(ev.comm));
	ev.ts_us = now / 1000;
	ev.tgid = s->tgid;
	ev.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev.dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	ev.af = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (ev.af == AF_INET) {
		ev.saddr_v4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		ev.daddr_v4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&ev.saddr_v6, sk,
				   __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&ev.daddr_v6, sk,
				   __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	}
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &ev, sizeof(ev));
done:
	bpf_map_delete_elem(&start, &key);
	return 0;
}

SEC("fentry/tcp_v4_connect")
int BPF_PROG(fentry_tcp_v4_connect, struct sock *sk)
{
	return on_connect(sk);
}

SEC("fentry/tcp_v6_connect")
int BPF_PROG(fentry_tcp_v6_connect, struct sock *sk)
{
	return on_connect(sk);
}

SEC("fentry/tcp_rcv_state_process")
int BPF_PROG(fentry_tcp_rcv_state_process, struct sock *sk)
{
	return on_state_process(ctx, sk);
}

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(tcp_v4_connect, struct sock *sk)
{
	return on_connect(sk);
}

SEC("kprobe/tcp_v6_connect")
int BPF_KPROBE(tcp_v6_connect, struct sock *sk)
{
	return on_connect(sk);
}

SEC("kprobe/tcp_rcv_state_process")
int BPF_KPROBE(tcp_rcv_state_process, struct sock *sk)
{
	return on_state_process(ctx, sk);
}

SEC("tracepoint/tcp/tcp_destroy_sock")
int tcp_destroy_sock(struct trace_event_raw_tcp_event_sk *ctx)
{
	__u64 key = (__u64)ctx->skaddr;

	bpf_map_delete_elem(&start, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * tcpconnect.bpf.c: active TCP connections, as libbpf-tools' tcpconnect.
 *
 * The kprobe on tcp_v{4,6}_connect() remembers the socket per thread; the
 * kretprobe, if the connect was started (return 0), reads the addresses and
 * ports the kernel chose and either sends an event over the perf buffer or
 * counts the flow (count mode). Filters (pid, uid, destination ports) are
 * read-only constants set before load.
 */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tcpconnect.h"

#define AF_INET 2
#define AF_INET6 10

/* x86-64 register frame of a kprobe, with the uapi <asm/ptrace.h> names
 * that bpf_tracing.h uses outside the kernel (same layout as the kernel's). */
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};

/* The kernel's socket fields used here; CO-RE finds them inside the
 * anonymous unions of the running kernel's struct sock_common. */
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
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

const volatile int filter_ports[MAX_PORTS] = {};
const volatile int filter_ports_len = 0;
const volatile __u32 filter_uid = (__u32)-1;
const volatile __u32 filter_pid = 0;
const volatile bool do_count = false;
const volatile bool source_port = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct sock *);
} sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct ipv4_flow_key);
	__type(value, __u64);
} ipv4_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct ipv6_flow_key);
	__type(value, __u64);
} ipv6_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

/* Keep the event type in BTF for the skeleton. */
struct event _event_type = {};

/* Whether a destination port (network order) is filtered out. */
static __always_inline bool port_filtered(__u16 port)
{
	if (filter_ports_len == 0)
		return false;
	for (int i = 0; i < MAX_PORTS; i++) {
		if (i >= filter_ports_len)
			break;
		if (port == filter_ports[i])
			return false;
	}
	return true;
}

static __always_inline int on_enter(struct sock *sk)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = pid_tgid;

	if (filter_pid && (pid_tgid >> 32) != filter_pid)
		return 0;
	if (filter_uid != (__u32)-1 && (__u32)bpf_get_current_uid_gid() != filter_uid)
		return 0;
	bpf_map_update_elem(&sockets, &tid, &sk, BPF_ANY);
	return 0;
}

static __always_inline void count_flow(struct sock *sk, int af, __u16 sport, __u16 dport)
{
	__u64 one = 1, *val;

	if (af == AF_INET) {
		struct ipv4_flow_key key = {};

		BPF_CORE_READ_INTO(&key.saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO(&key.daddr, sk, __sk_common.skc_daddr);
		key.sport = sport;
		key.dport = dport;
		val = bpf_map_lookup_elem(&ipv4_count, &key);
		if (val)
			__atomic_add_fetch(val, 1, __ATOMIC_RELAXED);
		else
			bpf_map_update_elem(&ipv4_count, &key, &one, BPF_NOEXIST);
	} else {
		struct ipv6_flow_key key = {};

		BPF_CORE_READ_INTO(&key.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&key.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
		key.sport = sport;
		key.dport = dport;
		val = bpf_map_lookup_elem(&ipv6_count, &key);
		if (val)
			__atomic_add_fetch(val, 1, __ATOMIC_RELAXED);
		else
			bpf_map_update_elem(&ipv6_count, &key, &one, BPF_NOEXIST);
	}
}

static __always_inline void send_event(struct pt_regs *ctx, struct sock *sk, int af,
				       __u16 sport, __u16 dport)
{
	struct event event = {};

	event.af = af;
	event.pid = bpf_get_current_pid_tgid() >> 32;
	event.uid = bpf_get_current_uid_gid();
	event.ts_us = bpf_ktime_get_ns() / 1000;
	if (af == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)event.saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)event.daddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&event.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&event.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	}
	event.sport = sport;
	event.dport = dport;
	bpf_get_current_comm(event.task, sizeof(event.task));
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &event, sizeof(event));
}

static __always_inline int on_return(struct pt_regs *ctx, int ret, int af)
{
	__u32 tid = bpf_get_current_pid_tgid();
	struct sock **skpp, *sk;
	__u16 sport = 0, dport = 0;

	skpp = bpf_map_lookup_elem(&sockets, &tid);
	if (!skpp)
		return 0;
	if (ret != 0)
		goto out;
	sk = *skpp;
	if (source_port)
		BPF_CORE_READ_INTO(&sport, sk, __sk_common.skc_num);
	BPF_CORE_READ_INTO(&dport, sk, __sk_common.skc_dport);
	if (port_filtered(dport))
		goto out;
	if (do_count)
		count_flow(sk, af, sport, dport);
	else
		send_event(ctx, sk, af, sport, dport);
out:
	bpf_map_delete_elem(&sockets, &tid);
	return 0;
}

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(tcp_v4_connect, struct sock *sk)
{
	return on_enter(sk);
}

SEC("kretprobe/tcp_v4_connect")
int BPF_KRETPROBE(tcp_v4_connect_ret, int ret)
{
	return on_return(ctx, ret, AF_INET);
}

SEC("kprobe/tcp_v6_connect")
int BPF_KPROBE(tcp_v6_connect, struct sock *sk)
{
	return on_enter(sk);
}

SEC("kretprobe/tcp_v6_connect")
int BPF_KRETPROBE(tcp_v6_connect_ret, int ret)
{
	return on_return(ctx, ret, AF_INET6);
}

char LICENSE[] SEC("license") = "GPL";

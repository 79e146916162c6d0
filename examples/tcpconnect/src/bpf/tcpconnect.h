/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Shared by tcpconnect.bpf.c and (through the skeleton's BTF types) main.rs. */
#ifndef TCPCONNECT_H
#define TCPCONNECT_H

#define MAX_PORTS 64
#define MAX_ENTRIES 8192
#define TASK_COMM_LEN 16

/* Count mode keys: addresses and ports in network order but sport, which is
 * the host-order local port (skc_num). */
struct ipv4_flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
};

struct ipv6_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
};

/* One successful connect(): v4 addresses in the first 4 bytes of saddr and
 * daddr. */
struct event {
	__u8 saddr[16];
	__u8 daddr[16];
	char task[TASK_COMM_LEN];
	__u64 ts_us;
	__u32 af;
	__u32 pid;
	__u32 uid;
	__u16 sport;
	__u16 dport;
};

#endif

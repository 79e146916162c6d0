/* SPDX-License-Identifier: GPL-2.0 OR MIT */
#ifndef TCPCONNLAT_H
#define TCPCONNLAT_H

#define TASK_COMM_LEN 16

/* One connection, sent when the SYN-ACK arrives (layout read by main.rs:
 * saddr 0, daddr 16, comm 32, delta_us 48, ts_us 56, tgid 64, af 68,
 * lport 72, dport 74 in network order; 80 bytes). */
struct event {
	union {
		__u32 saddr_v4;
		__u8 saddr_v6[16];
	};
	union {
		__u32 daddr_v4;
		__u8 daddr_v6[16];
	};
	char comm[TASK_COMM_LEN];
	__u64 delta_us;
	__u64 ts_us;
	__u32 tgid;
	int af;
	__u16 lport;
	__u16 dport;
};

#endif

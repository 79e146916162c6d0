// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * xdpcount.bpf.c: counts the packets and bytes an interface receives, in a
 * per-CPU array (no atomics: each CPU owns its slot), and passes them on.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct datarec {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct datarec);
} counts SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = 0;
	struct datarec *rec;

	rec = bpf_map_lookup_elem(&counts, &key);
	if (rec) {
		rec->packets++;
		rec->bytes += data_end - data;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

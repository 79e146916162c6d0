// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * harness.c: the libbpf (C) side of the skelgen benchmarks, against the
 * system libbpf. Built by bench/build.rs with bpf_time.c (time inside bpf()).
 *
 *   harness load OBJ ITERS
 *       ITERS x (bpf_object__open_mem, bpf_object__load, bpf_program__attach
 *       of every program libbpf can auto-attach, bpf_object__close); one line
 *       per iteration:
 *       ok OPEN_NS LOAD_NS ATTACH_NS DESTROY_NS KERNEL_NS_OPEN_LOAD KERNEL_NS_ALL LINKS
 *       (KERNEL_NS_*: time inside bpf() and perf_event_open()).
 *   harness btf ITERS NAME...
 *       ITERS x btf__load_vmlinux_btf, then btf__find_by_name_kind(NAME,
 *       STRUCT) for every NAME; one line per iteration: ok PARSE_NS LOOKUP_NS FOUND
 *   harness perfbuf OBJ SAMPLES ROUNDS
 *       like ringbuf (below) with the perfbuf fixture and perf_buffer__poll
 *       (one buffer per CPU, each big enough for every sample).
 *   harness ringbuf OBJ SAMPLES ROUNDS
 *       loads the ringbuf_flood object with its ring sized for SAMPLES,
 *       then per round: BPF_PROG_TEST_RUN repeat SAMPLES (the producer), and
 *       ring_buffer__poll until every sample is consumed (timed); one line
 *       per round: ok SAMPLES CONSUME_NS CONSUME_CPU_NS (thread CPU time)
 *
 * Errors: "error PHASE: message" on stdout, exit status 2.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

uint64_t bench_kernel_ns(void);
uint64_t bench_thread_cpu_ns(void);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int fail(const char *phase, int err)
{
	if (err < 0)
		err = -err;
	printf("error %s: %s (errno %d)\n", phase, strerror(err), err);
	fflush(stdout);
	exit(2);
}

static void *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		fail("read object", errno);
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		fail("read object", errno);
	buf = malloc(n ? n : 1);
	if (!buf || fread(buf, 1, n, f) != (size_t)n)
		fail("read object", EIO);
	fclose(f);
	*len = n;
	return buf;
}

/* The object name bpftool and skelgen use: file name up to the first '.'. */
static char *object_name(const char *path)
{
	const char *base = strrchr(path, '/');
	char *name = strdup(base ? base + 1 : path);
	char *dot = strchr(name, '.');

	if (dot)
		*dot = '\0';
	return name;
}

#define MAX_LINKS 64

static int cmd_load(const char *path, int iters)
{
	size_t len;
	void *bytes = read_file(path, &len);
	char *name = object_name(path);
	int i;

	for (i = 0; i < iters; i++) {
		LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
		struct bpf_link *links[MAX_LINKS];
		struct bpf_object *obj;
		struct bpf_program *prog;
		uint64_t t0, t1, t2, t3, t4, k0, k_load, k_all;
		int nlinks = 0, err, j;

		k0 = bench_kernel_ns();
		t0 = now_ns();
		obj = bpf_object__open_mem(bytes, len, &opts);
		if (!obj)
			fail("open", errno);
		t1 = now_ns();
		err = bpf_object__load(obj);
		if (err)
			fail("load", err);
		t2 = now_ns();
		k_load = bench_kernel_ns() - k0;
		bpf_object__for_each_program(prog, obj) {
			struct bpf_link *link;

			if (!bpf_program__autoload(prog))
				continue;
			link = bpf_program__attach(prog);
			if (!link) {
				/* No auto-attach for this section: skeletons skip it too. */
				if (errno == EOPNOTSUPP)
					continue;
				fail("attach", errno);
			}
			if (nlinks == MAX_LINKS)
				fail("attach", E2BIG);
			links[nlinks++] = link;
		}
		t3 = now_ns();
		for (j = 0; j < nlinks; j++)
			bpf_link__destroy(links[j]);
		bpf_object__close(obj);
		t4 = now_ns();
		k_all = bench_kernel_ns() - k0;
		printf("ok %llu %llu %llu %llu %llu %llu %d\n",
		       (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
		       (unsigned long long)(t3 - t2), (unsigned long long)(t4 - t3),
		       (unsigned long long)k_load, (unsigned long long)k_all, nlinks);
	}
	free(name);
	free(bytes);
	return 0;
}

static int cmd_btf(int iters, int nnames, char **names)
{
	int i, j;

	for (i = 0; i < iters; i++) {
		uint64_t t0, t1, t2;
		struct btf *btf;
		int found = 0;

		t0 = now_ns();
		btf = btf__load_vmlinux_btf();
		if (!btf)
			fail("btf__load_vmlinux_btf", errno);
		t1 = now_ns();
		for (j = 0; j < nnames; j++)
			if (btf__find_by_name_kind(btf, names[j], BTF_KIND_STRUCT) > 0)
				found++;
		t2 = now_ns();
		btf__free(btf);
		printf("ok %llu %llu %d\n", (unsigned long long)(t1 - t0),
		       (unsigned long long)(t2 - t1), found);
	}
	return 0;
}

struct flood_event {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t cpu;
	uint32_t magic;
};

struct consumed {
	uint64_t count;
	uint64_t seq_sum;
};

static int on_sample(void *ctx, void *data, size_t size)
{
	struct consumed *c = ctx;
	const struct flood_event *e = data;

	if (size < sizeof(*e))
		return -EINVAL;
	c->count++;
	c->seq_sum += e->seq;
	return 0;
}

/* Ring bytes for `samples` records of 8 + 24 bytes: a power of two above. */
static uint32_t ring_size(uint64_t samples)
{
	uint64_t need = samples * 32 + 4096, size = 4096;

	while (size < need)
		size <<= 1;
	return (uint32_t)size;
}

static int cmd_ringbuf(const char *path, uint64_t samples, int rounds)
{
	size_t len;
	void *bytes = read_file(path, &len);
	char *name = object_name(path);
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
	struct bpf_object *obj;
	struct bpf_map *rb_map;
	struct bpf_program *prog;
	struct ring_buffer *rb;
	struct consumed c = { 0 };
	unsigned char pkt[64] = { 0 };
	int err, i;

	obj = bpf_object__open_mem(bytes, len, &opts);
	if (!obj)
		fail("open", errno);
	rb_map = bpf_object__find_map_by_name(obj, "rb");
	prog = bpf_object__find_program_by_name(obj, "flood");
	if (!rb_map || !prog)
		fail("find rb/flood", ENOENT);
	err = bpf_map__set_max_entries(rb_map, ring_size(samples));
	if (err)
		fail("set_max_entries", err);
	err = bpf_object__load(obj);
	if (err)
		fail("load", err);
	rb = ring_buffer__new(bpf_map__fd(rb_map), on_sample, &c, NULL);
	if (!rb)
		fail("ring_buffer__new", errno);
	for (i = 0; i < rounds; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt,
			    .data_size_in = sizeof(pkt), .repeat = (int)samples);
		uint64_t t0, t1, c0, c1;

		err = bpf_prog_test_run_opts(bpf_program__fd(prog), &run);
		if (err)
			fail("test_run", err);
		c.count = 0;
		c0 = bench_thread_cpu_ns();
		t0 = now_ns();
		while (c.count < samples) {
			err = ring_buffer__poll(rb, 1000);
			if (err < 0)
				fail("ring_buffer__poll", err);
			if (err == 0)
				fail("ring_buffer__poll timed out", ETIMEDOUT);
		}
		t1 = now_ns();
		c1 = bench_thread_cpu_ns();
		printf("ok %llu %llu %llu\n", (unsigned long long)c.count,
		       (unsigned long long)(t1 - t0), (unsigned long long)(c1 - c0));
	}
	ring_buffer__free(rb);
	bpf_object__close(obj);
	free(name);
	free(bytes);
	return 0;
}

struct perf_sample {
	uint64_t seq;
	uint32_t cpu;
	uint32_t magic;
};

struct perf_consumed {
	uint64_t count, seq_sum, lost;
};

static void on_perf_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct perf_consumed *c = ctx;
	const struct perf_sample *e = data;

	(void)cpu;
	if (size < sizeof(*e))
		return;
	c->count++;
	c->seq_sum += e->seq;
}

static void on_perf_lost(void *ctx, int cpu, __u64 n)
{
	struct perf_consumed *c = ctx;

	(void)cpu;
	c->lost += n;
}

/* Pages per CPU for `samples` 32-byte records on one CPU: a power of two above. */
static size_t perf_pages(uint64_t samples)
{
	uint64_t need = (samples * 32 + 4095) / 4096 + 1, pages = 1;

	while (pages < need)
		pages <<= 1;
	return (size_t)pages;
}

static int cmd_perfbuf(const char *path, uint64_t samples, int rounds)
{
	size_t len;
	void *bytes = read_file(path, &len);
	char *name = object_name(path);
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
	struct bpf_object *obj;
	struct bpf_map *map;
	struct bpf_program *prog;
	struct perf_buffer *pb;
	struct perf_consumed c = { 0 };
	unsigned char pkt[64] = { 0 };
	int err, i;

	obj = bpf_object__open_mem(bytes, len, &opts);
	if (!obj)
		fail("open", errno);
	map = bpf_object__find_map_by_name(obj, "events");
	prog = bpf_object__find_program_by_name(obj, "perf_emit");
	if (!map || !prog)
		fail("find events/perf_emit", ENOENT);
	err = bpf_object__load(obj);
	if (err)
		fail("load", err);
	pb = perf_buffer__new(bpf_map__fd(map), perf_pages(samples), on_perf_sample,
			      on_perf_lost, &c, NULL);
	if (!pb)
		fail("perf_buffer__new", errno);
	for (i = 0; i < rounds; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt,
			    .data_size_in = sizeof(pkt), .repeat = (int)samples);
		uint64_t t0, t1, c0, c1;

		err = bpf_prog_test_run_opts(bpf_program__fd(prog), &run);
		if (err)
			fail("test_run", err);
		c.count = 0;
		c0 = bench_thread_cpu_ns();
		t0 = now_ns();
		while (c.count + c.lost < samples) {
			err = perf_buffer__poll(pb, 1000);
			if (err < 0)
				fail("perf_buffer__poll", err);
			if (err == 0 && c.lost == 0)
				fail("perf_buffer__poll timed out", ETIMEDOUT);
		}
		t1 = now_ns();
		c1 = bench_thread_cpu_ns();
		if (c.lost)
			fail("perf buffer too small: samples lost", ENOSPC);
		printf("ok %llu %llu %llu\n", (unsigned long long)c.count,
		       (unsigned long long)(t1 - t0), (unsigned long long)(c1 - c0));
	}
	perf_buffer__free(pb);
	bpf_object__close(obj);
	free(name);
	free(bytes);
	return 0;
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

int main(int argc, char **argv)
{
	libbpf_set_print(silent);
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "load"))
		return cmd_load(argv[2], atoi(argv[3]));
	if (argc >= 3 && !strcmp(argv[1], "btf"))
		return cmd_btf(atoi(argv[2]), argc - 3, argv + 3);
	if (argc == 5 && !strcmp(argv[1], "ringbuf"))
		return cmd_ringbuf(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "perfbuf"))
		return cmd_perfbuf(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));
	fprintf(stderr,
		"usage: harness load OBJ ITERS | btf ITERS NAME... | ringbuf OBJ SAMPLES ROUNDS"
		" | perfbuf OBJ SAMPLES ROUNDS\n");
	return 1;
}

// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * vfsstat.bpf.c: counts VFS operations, as libbpf-tools' vfsstat.
 *
 * Three families of programs count into the same .bss array; user space
 * loads one family (set_autoload) and falls back to the next on error:
 *
 *   fentry_*  fentry/vfs_*    cheapest; needs BPF trampolines
 *   kprobe_*  kprobe/vfs_*    needs CONFIG_KPROBES
 *   tp_*      syscalls:sys_enter_*   always there with tracefs, but counts
 *             system calls, not VFS calls: readv, io_uring, sendfile, page
 *             faults and in-kernel users of vfs_read are not seen, and a
 *             "create" is a creat() or an open with O_CREAT (even if the
 *             file already existed).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

enum stat_types {
	S_READ,
	S_WRITE,
	S_FSYNC,
	S_OPEN,
	S_CREATE,
	S_UNLINK,
	S_MKDIR,
	S_RMDIR,
	S_MAXSTAT,
};

/* Cumulative counts since load; user space prints differences. */
__u64 stats[S_MAXSTAT] = {};

/* Record of every syscalls:sys_enter_* tracepoint (kernel-internal layout,
 * relocated against the running kernel). */
struct trace_event_raw_sys_enter {
	long id;
	unsigned long args[6];
} __attribute__((preserve_access_index));

#define O_CREAT 0100	/* octal, as in <asm-generic/fcntl.h> */
#define AT_REMOVEDIR 0x200

static __always_inline int inc(int key)
{
	__atomic_add_fetch(&stats[key], 1, __ATOMIC_RELAXED);
	return 0;
}

/* ---- fentry ---- */

SEC("fentry/vfs_read")
int BPF_PROG(fentry_vfs_read) { return inc(S_READ); }

SEC("fentry/vfs_write")
int BPF_PROG(fentry_vfs_write) { return inc(S_WRITE); }

SEC("fentry/vfs_fsync")
int BPF_PROG(fentry_vfs_fsync) { return inc(S_FSYNC); }

SEC("fentry/vfs_open")
int BPF_PROG(fentry_vfs_open) { return inc(S_OPEN); }

SEC("fentry/vfs_create")
int BPF_PROG(fentry_vfs_create) { return inc(S_CREATE); }

SEC("fentry/vfs_unlink")
int BPF_PROG(fentry_vfs_unlink) { return inc(S_UNLINK); }

SEC("fentry/vfs_mkdir")
int BPF_PROG(fentry_vfs_mkdir) { return inc(S_MKDIR); }

SEC("fentry/vfs_rmdir")
int BPF_PROG(fentry_vfs_rmdir) { return inc(S_RMDIR); }

/* ---- kprobe ---- */

SEC("kprobe/vfs_read")
int BPF_KPROBE(kprobe_vfs_read) { return inc(S_READ); }

SEC("kprobe/vfs_write")
int BPF_KPROBE(kprobe_vfs_write) { return inc(S_WRITE); }

SEC("kprobe/vfs_fsync")
int BPF_KPROBE(kprobe_vfs_fsync) { return inc(S_FSYNC); }

SEC("kprobe/vfs_open")
int BPF_KPROBE(kprobe_vfs_open) { return inc(S_OPEN); }

SEC("kprobe/vfs_create")
int BPF_KPROBE(kprobe_vfs_create) { return inc(S_CREATE); }

SEC("kprobe/vfs_unlink")
int BPF_KPROBE(kprobe_vfs_unlink) { return inc(S_UNLINK); }

SEC("kprobe/vfs_mkdir")
int BPF_KPROBE(kprobe_vfs_mkdir) { return inc(S_MKDIR); }

SEC("kprobe/vfs_rmdir")
int BPF_KPROBE(kprobe_vfs_rmdir) { return inc(S_RMDIR); }

/* ---- syscall tracepoints ---- */

SEC("tracepoint/syscalls/sys_enter_read")
int tp_read(void *ctx) { return inc(S_READ); }

SEC("tracepoint/syscalls/sys_enter_pread64")
int tp_pread64(void *ctx) { return inc(S_READ); }

SEC("tracepoint/syscalls/sys_enter_write")
int tp_write(void *ctx) { return inc(S_WRITE); }

SEC("tracepoint/syscalls/sys_enter_pwrite64")
int tp_pwrite64(void *ctx) { return inc(S_WRITE); }

SEC("tracepoint/syscalls/sys_enter_fsync")
int tp_fsync(void *ctx) { return inc(S_FSYNC); }

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int tp_fdatasync(void *ctx) { return inc(S_FSYNC); }

static __always_inline int count_open(unsigned long flags)
{
	inc(S_OPEN);
	if (flags & O_CREAT)
		inc(S_CREATE);
	return 0;
}

/* open(path, flags, mode) */
SEC("tracepoint/syscalls/sys_enter_open")
int tp_open(struct trace_event_raw_sys_enter *ctx)
{
	return count_open(ctx->args[1]);
}

/* openat(dfd, path, flags, mode) */
SEC("tracepoint/syscalls/sys_enter_openat")
int tp_openat(struct trace_event_raw_sys_enter *ctx)
{
	return count_open(ctx->args[2]);
}

/* openat2(dfd, path, struct open_how *how, size): flags are how->flags. */
SEC("tracepoint/syscalls/sys_enter_openat2")
int tp_openat2(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = 0;

	bpf_probe_read_user(&flags, sizeof(flags), (void *)ctx->args[2]);
	return count_open(flags);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int tp_creat(void *ctx)
{
	inc(S_OPEN);
	return inc(S_CREATE);
}

SEC("tracepoint/syscalls/sys_enter_unlink")
int tp_unlink(void *ctx) { return inc(S_UNLINK); }

/* unlinkat(dfd, path, flags): AT_REMOVEDIR makes it an rmdir. */
SEC("tracepoint/syscalls/sys_enter_unlinkat")
int tp_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	return inc(ctx->args[2] & AT_REMOVEDIR ? S_RMDIR : S_UNLINK);
}

SEC("tracepoint/syscalls/sys_enter_mkdir")
int tp_mkdir(void *ctx) { return inc(S_MKDIR); }

SEC("tracepoint/syscalls/sys_enter_mkdirat")
int tp_mkdirat(void *ctx) { return inc(S_MKDIR); }

SEC("tracepoint/syscalls/sys_enter_rmdir")
int tp_rmdir(void *ctx) { return inc(S_RMDIR); }

char LICENSE[] SEC("license") = "GPL";

/* SPDX-License-Identifier: GPL-2.0 OR MIT */
#ifndef __EXECSNOOP_H
#define __EXECSNOOP_H

#define TASK_COMM_LEN 16
#define MAX_ARGS 20		/* file name + 19 more */
#define ARG_SIZE 128		/* per argument, with its NUL */
#define ARGS_BUF_SIZE (MAX_ARGS * ARG_SIZE)
#define INVALID_UID ((__u32)-1)

/* What user space gets: the header and the first args_size bytes of args. */
struct event {
	__s32 pid;
	__s32 ppid;
	__u32 uid;
	__s32 retval;
	__s32 args_count;	/* > arguments in args: some were cut */
	__u32 args_size;
	char comm[TASK_COMM_LEN];
	char args[ARGS_BUF_SIZE];	/* NUL-separated */
};

#endif /* __EXECSNOOP_H */

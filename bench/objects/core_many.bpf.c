// SPDX-License-Identifier: GPL-2.0
/*
 * core_many.bpf.c: a CO-RE benchmark object. One raw_tp program reads one
 * field from each of 57 distinct kernel structs (BPF_CORE_READ through a
 * local declaration with preserve_access_index and a ___b flavor) and takes
 * each struct's size (bpf_core_type_size): 114 CO-RE relocations over
 * 57 types, so that relocation cost is dominated by looking up and matching
 * many kernel types rather than by one hot type.
 *
 * The fields were picked from the kernel 6.18 BTF (the first plain integer
 * member after the first one); a field a later kernel drops only poisons its
 * instruction, as it would in a real tool. Loads on 6.18 (the program is
 * never attached: the benchmark only loads it).
 *
 * Build (from bench/objects): ./build.sh
 */
#include "vmlinux-lite.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* struct NAME___b { TYPE FIELD; }, relocated against the kernel's NAME. */
#define T(name, type, field)                                             \
	struct name##___b {                                              \
		type field;                                              \
	} __attribute__((preserve_access_index));

T(task_struct, unsigned int, __state)
T(vm_area_struct, unsigned int, vm_lock_seq)
T(file, unsigned int, f_mode)
T(inode, __u16, i_opflags)
T(dentry, __u64, d_time)
T(super_block, __u32, s_dev)
T(vfsmount, int, mnt_flags)
T(mount, __u32, mnt_fsnotify_mask)
T(pid_namespace, unsigned int, pid_allocated)
T(net, unsigned int, dev_base_seq)
T(net_device, unsigned int, real_num_tx_queues)
T(sk_buff, __u64, _nfct)
T(sock, int, sk_rx_dst_ifindex)
T(socket, __u64, flags)
T(files_struct, _Bool, resize_in_progress)
T(fs_struct, int, umask)
T(signal_struct, int, nr_threads)
T(rq, unsigned int, nr_running)
T(cfs_rq, unsigned int, nr_queued)
T(sched_entity, __u64, deadline)
T(page, __u64, memcg_data)
T(address_space, unsigned int, gfp_mask)
T(bio, __u16, bi_flags)
T(request_queue, __u64, queue_flags)
T(block_device, __u64, bd_nr_sectors)
T(gendisk, int, first_minor)
T(kiocb, __s64, ki_pos)
T(iov_iter, _Bool, nofault)
T(pipe_inode_info, unsigned int, max_usage)
T(seq_file, __u64, size)
T(cgroup, __u64, flags)
T(css_set, int, nr_tasks)
T(cgroup_subsys_state, int, id)
T(kernfs_node, unsigned int, hash)
T(user_namespace, int, level)
T(ipc_namespace, int, used_sems)
T(mnt_namespace, __u64, seq_origin)
T(tcp_sock, __u32, max_window)
T(inet_sock, __u64, inet_flags)
T(udp_sock, __u64, udp_flags)
T(sk_buff_head, __u32, qlen)
T(napi_struct, __u64, state)
T(netdev_queue, __u64, tx_maxrate)
T(Qdisc, unsigned int, flags)
T(bpf_prog, __u32, len)
T(bpf_map, __u32, excl)
T(bpf_prog_aux, __u32, used_map_cnt)
T(perf_event, __u64, group_index)
T(hrtimer, __u8, state)
T(timer_list, __u64, expires)
T(workqueue_struct, int, work_color)
T(task_group, int, idle)
T(linux_binprm, __u64, vma_pages)
T(irq_desc, unsigned int, status_use_accessors)
T(module, unsigned int, num_syms)
T(device, __u64, coherent_dma_mask)
T(pci_dev, unsigned int, devfn)

__u64 sum = 0;
__u64 sizes = 0;

/* One field read and one type size per struct. */
#define R(name, field)                                                   \
	do {                                                             \
		acc += (__u64)BPF_CORE_READ((struct name##___b *)p, field); \
		sz += bpf_core_type_size(struct name##___b);             \
	} while (0)

SEC("raw_tp/sys_enter")
int read_many(void *ctx)
{
	void *p = (void *)bpf_get_current_task();
	__u64 acc = 0, sz = 0;

	R(task_struct, __state);
	R(vm_area_struct, vm_lock_seq);
	R(file, f_mode);
	R(inode, i_opflags);
	R(dentry, d_time);
	R(super_block, s_dev);
	R(vfsmount, mnt_flags);
	R(mount, mnt_fsnotify_mask);
	R(pid_namespace, pid_allocated);
	R(net, dev_base_seq);
	R(net_device, real_num_tx_queues);
	R(sk_buff, _nfct);
	R(sock, sk_rx_dst_ifindex);
	R(socket, flags);
	R(files_struct, resize_in_progress);
	R(fs_struct, umask);
	R(signal_struct, nr_threads);
	R(rq, nr_running);
	R(cfs_rq, nr_queued);
	R(sched_entity, deadline);
	R(page, memcg_data);
	R(address_space, gfp_mask);
	R(bio, bi_flags);
	R(request_queue, queue_flags);
	R(block_device, bd_nr_sectors);
	R(gendisk, first_minor);
	R(kiocb, ki_pos);
	R(iov_iter, nofault);
	R(pipe_inode_info, max_usage);
	R(seq_file, size);
	R(cgroup, flags);
	R(css_set, nr_tasks);
	R(cgroup_subsys_state, id);
	R(kernfs_node, hash);
	R(user_namespace, level);
	R(ipc_namespace, used_sems);
	R(mnt_namespace, seq_origin);
	R(tcp_sock, max_window);
	R(inet_sock, inet_flags);
	R(udp_sock, udp_flags);
	R(sk_buff_head, qlen);
	R(napi_struct, state);
	R(netdev_queue, tx_maxrate);
	R(Qdisc, flags);
	R(bpf_prog, len);
	R(bpf_map, excl);
	R(bpf_prog_aux, used_map_cnt);
	R(perf_event, group_index);
	R(hrtimer, state);
	R(timer_list, expires);
	R(workqueue_struct, work_color);
	R(task_group, idle);
	R(linux_binprm, vma_pages);
	R(irq_desc, status_use_accessors);
	R(module, num_syms);
	R(device, coherent_dma_mask);
	R(pci_dev, devfn);
	sum = acc;
	sizes = sz;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

/* bpf_trace (test_pid_naming_audit.py): BPF_PROG_LOAD of a kprobe program calling
   bpf_probe_read_user (attached, it reads the memory of whatever process runs when it
   fires, systrace's included: no ptrace check, so no Landlock scope), BPF_MAP_CREATE and
   BPF_MAP_GET_NEXT_ID (the maps of the machine); prints "NAME ok" or "NAME ERRNO". */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static void report(const char *n, long r) { if (r < 0) printf("%s %s\n", n, strerrorname_np(errno)); else printf("%s ok\n", n); }
int main(void) {
    struct bpf_insn prog[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 1, .src_reg = 10}, /* r1 = fp - 8 (dst) */
        {.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 1, .imm = -8},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 2, .imm = 8},  /* size */
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 3, .imm = 0x400000},  /* any user address */
        {.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_probe_read_user},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    char license[] = "GPL", log[4096];
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_KPROBE;
    a.insns = (unsigned long)prog;
    a.insn_cnt = sizeof prog / sizeof prog[0];
    a.license = (unsigned long)license;
    a.log_buf = (unsigned long)log; a.log_size = sizeof log; a.log_level = 1;
    report("prog_load_kprobe_read_user", syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a));
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY; a.key_size = 4; a.value_size = 8; a.max_entries = 1;
    report("map_create", syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a));
    memset(&a, 0, sizeof a);
    a.start_id = 0;
    report("map_get_next_id", syscall(SYS_bpf, BPF_MAP_GET_NEXT_ID, &a, sizeof a));
    return 0;
}

//! The SQL worker's system-call filter (seccomp-bpf), installed before it
//! reads any SQL. It assumes the worst: a hostile query found a memory bug
//! in DuckDB and runs code of its own in the worker. Refused then, with
//! `EPERM`: other processes' memory (`ptrace`, `process_vm_*`), signals to
//! other processes (`kill`, and `tgkill` outside the worker), the network
//! (sockets), other programs (`execve`), new processes (`fork`, and
//! `clone` without `CLONE_THREAD`: DuckDB's threads stay allowed) and
//! leaving the process group that the deadline kills (`setsid`,
//! `setpgid`). `clone3` answers `ENOSYS`, so that glibc creates threads
//! with `clone`, whose flags the filter can read. A call from another ABI
//! than the worker's own ends the process.
//!
//! A deny-list, not an allow-list: what DuckDB and glibc call changes with
//! their versions, and a call this list misses is still bounded by the
//! rest (an empty environment, no inherited descriptors, no new
//! privileges, a host that is not dumpable). Files are not filtered here:
//! see docs/threat-model.md.

/// `AUDIT_ARCH_*` of the worker's own ABI (linux/audit.h).
#[cfg(target_arch = "x86_64")]
const ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const ARCH: u32 = 0xC000_00B7;

/// x32 system calls on x86_64 carry this bit; they would bypass the numbers below.
const X32_BIT: u32 = 0x4000_0000;
const CLONE_THREAD: u32 = 0x0001_0000;

/// Refused outright.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kill,
    libc::SYS_tkill,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal,
    libc::SYS_pidfd_getfd,
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_setsid,
    libc::SYS_setpgid,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_fork,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_vfork,
];

/// Other architectures run the worker without the filter.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(super) fn install() -> std::io::Result<()> {
    Ok(())
}

/// Installs the filter on this thread and every thread and process it
/// starts afterwards. `no_new_privs` must be set first.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) fn install() -> std::io::Result<()> {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    let program = program(pid);
    let filters: Vec<libc::sock_filter> =
        program.iter().map(|&(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k }).collect();
    let fprog = libc::sock_fprog { len: filters.len() as u16, filter: filters.as_ptr() as *mut libc::sock_filter };
    // SAFETY: the program outlives the call, which copies it into the kernel.
    if unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog as *const libc::sock_fprog) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Classic BPF: (code, jump if true, jump if false, constant).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
type Instruction = (u16, u8, u8, u32);

/// The filter for a worker of process id `pid` (`tgkill` may target only it).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn program(pid: u32) -> Vec<Instruction> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    // Offsets into `struct seccomp_data`: nr, arch, then the arguments
    // (the low 32 bits of the first at 16, little-endian).
    const NR: u32 = 0;
    const ARCH_AT: u32 = 4;
    const ARG0_LOW: u32 = 16;
    let allow = libc::SECCOMP_RET_ALLOW;
    let eperm = libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA);
    let enosys = libc::SECCOMP_RET_ERRNO | (libc::ENOSYS as u32 & libc::SECCOMP_RET_DATA);

    // Targets of the forward jumps, resolved once the program is laid out.
    #[derive(Clone, Copy, PartialEq)]
    enum To {
        Next,
        Allow,
        Deny,
        NoSys,
        CloneFlags,
        TgkillPid,
    }
    let mut code: Vec<(u16, To, To, u32, Option<To>)> = vec![
        (LD_W_ABS, To::Next, To::Next, ARCH_AT, None),
        (JEQ, To::Next, To::Deny, ARCH, None),
        (LD_W_ABS, To::Next, To::Next, NR, None),
        (JGE, To::Deny, To::Next, X32_BIT, None),
    ];
    for &nr in DENIED {
        code.push((JEQ, To::Deny, To::Next, nr as u32, None));
    }
    code.push((JEQ, To::NoSys, To::Next, libc::SYS_clone3 as u32, None));
    code.push((JEQ, To::CloneFlags, To::Next, libc::SYS_clone as u32, None));
    code.push((JEQ, To::TgkillPid, To::Next, libc::SYS_tgkill as u32, None));
    code.push((RET, To::Next, To::Next, allow, None));
    code.push((LD_W_ABS, To::Next, To::Next, ARG0_LOW, Some(To::CloneFlags)));
    code.push((JSET, To::Allow, To::Deny, CLONE_THREAD, None));
    code.push((LD_W_ABS, To::Next, To::Next, ARG0_LOW, Some(To::TgkillPid)));
    code.push((JEQ, To::Allow, To::Deny, pid, None));
    code.push((RET, To::Next, To::Next, allow, Some(To::Allow)));
    code.push((RET, To::Next, To::Next, eperm, Some(To::Deny)));
    code.push((RET, To::Next, To::Next, enosys, Some(To::NoSys)));

    let at = |label: To| code.iter().position(|c| c.4 == Some(label)).expect("every label is placed");
    let jump = |from: usize, to: To| -> u8 {
        match to {
            To::Next => 0,
            label => u8::try_from(at(label) - from - 1).expect("the filter's jumps fit in a byte"),
        }
    };
    // The architecture check ends the process instead of returning EPERM.
    let mut program: Vec<Instruction> =
        code.iter().enumerate().map(|(i, &(op, jt, jf, k, _))| (op, jump(i, jt), jump(i, jf), k)).collect();
    program.insert(2, (RET, 0, 0, libc::SECCOMP_RET_KILL_PROCESS));
    // Instruction 1 (the arch check) jumps over the kill when the arch matches.
    program[1] = (JEQ, 1, 0, ARCH);
    program
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;

    /// Runs the filter on one call as the kernel would: what it returns.
    fn verdict(program: &[Instruction], nr: u32, arch: u32, arg0: u32) -> u32 {
        let data = |offset: u32| match offset {
            0 => nr,
            4 => arch,
            16 => arg0,
            other => panic!("load at {other}"),
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let (op, jt, jf, k) = program[pc];
            pc += 1;
            match op as u32 {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => acc = data(k),
                c if c == libc::BPF_RET | libc::BPF_K => return k,
                c => {
                    let taken = match c & 0xf0 {
                        x if x == libc::BPF_JEQ => acc == k,
                        x if x == libc::BPF_JGE => acc >= k,
                        x if x == libc::BPF_JSET => acc & k != 0,
                        other => panic!("opcode {other:#x}"),
                    };
                    pc += usize::from(if taken { jt } else { jf });
                }
            }
        }
    }

    #[test]
    fn refuses_what_reaches_past_the_worker_and_allows_threads() {
        let program = program(4242);
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let run = |nr: libc::c_long, arg0: u32| verdict(&program, nr as u32, ARCH, arg0);
        for &nr in DENIED {
            assert_eq!(run(nr, 0), eperm, "syscall {nr}");
        }
        assert_eq!(run(libc::SYS_read, 0), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(libc::SYS_openat, 0), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(libc::SYS_clone3, 0), libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(run(libc::SYS_clone, CLONE_THREAD | 0x3d0f00), libc::SECCOMP_RET_ALLOW, "a thread");
        assert_eq!(run(libc::SYS_clone, 0x11), eperm, "a process (SIGCHLD)");
        assert_eq!(run(libc::SYS_tgkill, 4242), libc::SECCOMP_RET_ALLOW, "raise() in the worker");
        assert_eq!(run(libc::SYS_tgkill, 1), eperm, "a signal to another process");
        assert_eq!(verdict(&program, X32_BIT | 39, ARCH, 0), eperm, "an x32 call");
        assert_eq!(verdict(&program, 0, 0x4000_0003, 0), libc::SECCOMP_RET_KILL_PROCESS, "another ABI");
    }
}

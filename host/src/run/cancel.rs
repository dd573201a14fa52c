//! Stopping a run at a safe point on SIGTERM or SIGINT.
//!
//! A signal only records itself in a [`Cancel`] flag; the driver looks at the
//! flag at its safe points: before it starts a step, and after a step has
//! computed but before its write and commit begin (every step computing at
//! once checks it on its own). A step that is computing when the
//! signal arrives is abandoned once it returns: it has committed nothing, so
//! at most it leaves unreferenced data files, never a visible change. A write
//! and commit that has begun always finishes (the metadata-pointer swap is
//! atomic anyway), and the run stops after it.
//!
//! A **second** signal exits at once (with the code of that signal) when no
//! write or commit is in flight: the user (or a supervisor) asked twice and
//! nothing can be left half-visible. While a commit is in flight it is only
//! noted, and the run still stops right after the commit. Kubernetes sends
//! SIGTERM once and then SIGKILL after `terminationGracePeriodSeconds`, so a
//! pod never relies on the second signal.
//!
//! The handler does nothing but atomic operations, `write(2)` and `_exit(2)`,
//! which are async-signal-safe.

use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use crate::exit::ExitCode;

/// The signals a run stops on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): exit 130.
    Interrupt,
    /// SIGTERM (Kubernetes, systemd, `kill`): exit 143.
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    pub fn exit_code(self) -> ExitCode {
        match self {
            Signal::Interrupt => ExitCode::Interrupted,
            Signal::Terminate => ExitCode::Terminated,
        }
    }

    fn bits(self) -> u32 {
        match self {
            Signal::Interrupt => INTERRUPT,
            Signal::Terminate => TERMINATE,
        }
    }
}

// Layout of the state word: the first signal received (two bits), and above
// them how many writes/commits are in flight (steps may commit at once,
// `schedule`).
const INTERRUPT: u32 = 0b01;
const TERMINATE: u32 = 0b10;
const SIGNAL_BITS: u32 = 0b11;
const ONE_COMMIT: u32 = 0b100;

/// The cancellation flag of a run. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    state: Arc<AtomicU32>,
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop at its next safe point, as if `signal` had been
    /// received. The first request wins.
    pub fn request(&self, signal: Signal) {
        let _ = self.state.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |state| {
            (state & SIGNAL_BITS == 0).then_some(state | signal.bits())
        });
    }

    /// The signal that asked the run to stop, if any.
    pub fn requested(&self) -> Option<Signal> {
        decode(self.state.load(Ordering::SeqCst))
    }

    /// Whether a write/commit is in flight.
    pub fn committing(&self) -> bool {
        self.state.load(Ordering::SeqCst) >= ONE_COMMIT
    }

    /// The last safe point before a step's write and commit: fails with the
    /// signal if one was received; otherwise counts a commit as in flight
    /// until the guard drops. Checking and marking are one atomic step, so a signal
    /// handler never sees "no commit" after the commit has begun.
    pub fn begin_commit(&self) -> Result<CommitGuard<'_>, Signal> {
        self.state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |state| {
                (state & SIGNAL_BITS == 0).then_some(state + ONE_COMMIT)
            })
            .map(|_| CommitGuard { cancel: self })
            .map_err(|state| decode(state).expect("a signal was recorded"))
    }

    /// Routes SIGTERM and SIGINT of this process to this flag (see the module
    /// docs for what a first and a second signal do). Call once, from `main`.
    #[cfg(unix)]
    pub fn install_signal_handlers(&self) -> std::io::Result<()> {
        // Leaked on purpose: the handler may run at any time until exit.
        let state = Arc::into_raw(Arc::clone(&self.state)) as *mut AtomicU32;
        // A previous flag (a second call) stays leaked: the handler may be using it.
        HANDLER_STATE.store(state, Ordering::SeqCst);
        for signum in [libc::SIGTERM, libc::SIGINT] {
            // SAFETY: a zeroed sigaction is valid; the handler is async-signal-safe.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signum, &action, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}

/// Marks a write/commit as in flight while it lives.
#[derive(Debug)]
pub struct CommitGuard<'a> {
    cancel: &'a Cancel,
}

impl Drop for CommitGuard<'_> {
    fn drop(&mut self) {
        self.cancel.state.fetch_sub(ONE_COMMIT, Ordering::SeqCst);
    }
}

fn decode(state: u32) -> Option<Signal> {
    match state & SIGNAL_BITS {
        INTERRUPT => Some(Signal::Interrupt),
        TERMINATE => Some(Signal::Terminate),
        _ => None,
    }
}

static HANDLER_STATE: AtomicPtr<AtomicU32> = AtomicPtr::new(std::ptr::null_mut());

#[cfg(unix)]
extern "C" fn on_signal(signum: libc::c_int) {
    let signal = match signum {
        libc::SIGINT => Signal::Interrupt,
        libc::SIGTERM => Signal::Terminate,
        _ => return,
    };
    let pointer = HANDLER_STATE.load(Ordering::SeqCst);
    if pointer.is_null() {
        return;
    }
    // SAFETY: set from a leaked `Arc`, so it is never freed.
    let state = unsafe { &*pointer };
    let mut current = state.load(Ordering::SeqCst);
    loop {
        if current & SIGNAL_BITS == 0 {
            match state.compare_exchange(current, current | signal.bits(), Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    write_stderr(match signal {
                        Signal::Interrupt => b"floe-host: SIGINT received: stopping at the next safe point (a commit in progress finishes); send it again to stop at once\n",
                        Signal::Terminate => b"floe-host: SIGTERM received: stopping at the next safe point (a commit in progress finishes); send it again to stop at once\n",
                    });
                    return;
                }
                Err(actual) => current = actual,
            }
        } else if current >= ONE_COMMIT {
            write_stderr(b"floe-host: a commit is in flight: stopping right after it\n");
            return;
        } else {
            write_stderr(match signal {
                Signal::Interrupt => b"floe-host: second signal (SIGINT) and no commit in flight: stopped at once; nothing of the current step is visible; rerun to finish\n",
                Signal::Terminate => b"floe-host: second signal (SIGTERM) and no commit in flight: stopped at once; nothing of the current step is visible; rerun to finish\n",
            });
            // SAFETY: `_exit` is async-signal-safe and skips atexit handlers.
            unsafe { libc::_exit(signal.exit_code().code()) };
        }
    }
}

#[cfg(unix)]
fn write_stderr(message: &[u8]) {
    // SAFETY: write(2) on fd 2 with a valid buffer; async-signal-safe.
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
    }
}

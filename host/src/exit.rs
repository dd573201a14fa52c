//! Process exit codes. They are a stable contract: Kubernetes `podFailurePolicy`
//! and orchestrators act on them, so never renumber.

/// Every way a `floe-host` process can end, with its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything ran and committed.
    Success = 0,
    /// A step failed at run time (I/O, catalog, SQL). Retrying may help.
    StepFailed = 1,
    /// Bad configuration or usage. Fail fast: retrying cannot help.
    Config = 2,
    /// A plugin broke its sandbox or contract (trap, limit, malformed output).
    PluginViolation = 3,
    /// The data was refused: a source with no data rows, an output that
    /// would remove more of a table than `max_shrink` allows, input a plugin
    /// calls invalid, or a corrupt table file. Retrying the same data cannot
    /// help; fix the data or the step's guard.
    DataRefused = 4,
    /// Interrupted by SIGINT.
    Interrupted = 130,
    /// Terminated by SIGTERM.
    Terminated = 143,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

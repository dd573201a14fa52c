//! Failpoints: named places where a test makes the process stop or fail on
//! purpose, to prove what a crash or an I/O error at exactly that point
//! leaves behind (`FLOE_FAILPOINT=<name>:abort`, `<name>:error` or
//! `<name>:panic`), or where it waits (`<name>:sleep-<ms>`), to lose a race.
//! Several points: separated by commas. Debug builds only: in a release build `hit` is always `Ok`.

/// Stops the process (`abort`: as a `kill -9` would, with no cleanup) or
/// returns an error (`error`) if `FLOE_FAILPOINT` names this point.
pub fn hit(name: &str) -> std::io::Result<()> {
    if cfg!(debug_assertions)
        && let Ok(spec) = std::env::var("FLOE_FAILPOINT")
        && let Some(action) =
            spec.split(',').find_map(|point| point.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
    {
        match action {
            "abort" => {
                eprintln!("failpoint {name}: aborting");
                std::process::abort();
            }
            "error" => return Err(std::io::Error::other(format!("failpoint {name}: injected error"))),
            "panic" => panic!("failpoint {name}: injected panic"),
            // Holds the process here, for a race a test must win or lose.
            sleep if sleep.starts_with("sleep-") => {
                if let Ok(ms) = sleep["sleep-".len()..].parse() {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

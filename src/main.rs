//! The `audithound` binary: parse the command line, hand over to the library, map the outcome to
//! an exit code (0 clean, 1 findings at or above `--fail-on`, 2 error).

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// polars allocates and frees large buffers for every query; with glibc's allocator those pages
/// went back to the kernel and were faulted in and zeroed again (a fifth of a run in `perf`).
/// mimalloc reuses them: 22.5 -> 19.3 s on the 10M-event JSON-lines export.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3); the -sys crate does not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc hands freed pages back to the kernel 10 ms after they are freed; polars frees and
/// reallocates its buffers from one query to the next, so nearly every query faulted in fresh
/// zeroed (huge) pages. Measured on the 10M-event JSON-lines export with `perf stat`: 121,559
/// page faults and 8.4 s sys at 1 s delay, 19,935 at 5 s, 2,130 and 3.8 s sys at 30 s (the same as
/// never purging), wall 17.9 -> 14.6 s. The price is peak RSS: 1.8 -> 2.0 GB there, 16.6 -> 18.7 GB
/// at 100M events. `MIMALLOC_PURGE_DELAY=0` in the environment makes the opposite trade
/// (docs/performance.md).
fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return; // an operator's own setting wins
    }
    // SAFETY: sets one allocator option by its documented index; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 30_000) }
}

fn main() -> ExitCode {
    keep_freed_pages();
    let args = cli::Args::parse();
    // A panic is a bug, never a verdict: it must not leave exit code 0 or 1 for a scheduler to
    // misread, so it is mapped to 2 like any other error (the default hook has printed it).
    let result = match std::panic::catch_unwind(|| cli::run(args)) {
        Ok(result) => result,
        Err(_) => {
            eprintln!(
                "audithound: error: internal error (panic); please report it with the message above"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("audithound: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

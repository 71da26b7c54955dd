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

fn main() -> ExitCode {
    audithound::memory::keep_freed_pages();
    audithound::memory::prefer_small_pages();
    // SAFETY: mimalloc is the global allocator (`GLOBAL` above).
    unsafe { audithound::memory::keep_frame_apart() };
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
            let text = format!("{err:#}");
            eprintln!(
                "audithound: error: {}",
                audithound::report::terminal::safe(&text)
            );
            ExitCode::from(2)
        }
    }
}

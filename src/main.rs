//! The `audithound` binary: parse the command line, hand over to the library, map the outcome to
//! an exit code (0 clean, 1 findings at or above `--fail-on`, 2 error).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
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

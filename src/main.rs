//! The `stiffx` binary: parse → validated config → pipeline → exit code.
//! Exit codes: 0 success, 2 bad input (unknown names, invalid values, unreadable config, data file or
//! checkpoint, backend not compiled in or unable to start here), 1 failure while computing
//! (divergence, solver, I/O), 130/143 stopped by SIGINT/SIGTERM with the state saved (`--resume`).

use std::process::ExitCode;

use clap::Parser;
use stiffx::cli::{Cli, Command};
use stiffx::error::Error;

fn exit_code(e: &Error) -> ExitCode {
    match e {
        Error::Unknown { .. }
        | Error::Invalid { .. }
        | Error::Config { .. }
        | Error::Data { .. }
        | Error::Checkpoint { .. }
        | Error::BackendNotCompiled { .. }
        | Error::BackendUnavailable { .. }
        | Error::Unsupported(_)
        | Error::Occupied { .. } => ExitCode::from(2),
        Error::Interrupted { signal, .. } => ExitCode::from(stiffx::interrupt::exit_code(signal)),
        Error::Incomplete { .. } => ExitCode::from(3),
        _ => ExitCode::from(1),
    }
}

fn main() -> ExitCode {
    stiffx::interrupt::default_sigpipe();
    stiffx::resources::keep_freed_memory();
    stiffx::resources::one_malloc_arena();
    let cli = Cli::parse();
    match cli.max_memory.as_deref().map(stiffx::resources::parse_size).transpose() {
        Ok(limit) => stiffx::resources::set_max_memory(limit),
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code(&e);
        }
    }
    // Commands that train stop cleanly on SIGINT/SIGTERM, their state saved (`stiffx::interrupt`).
    if matches!(cli.command, Command::Run(_) | Command::RunJob(_) | Command::Sweep(_) | Command::Compare(_)) {
        stiffx::interrupt::install();
    }
    let result = match cli.command {
        Command::List => {
            for l in stiffx::plugins::registry::list() {
                println!("{:<10} {:<18} {}", l.kind, l.name, l.description);
            }
            // Mechanism files run as systems with `--system FILE` or `[system] type = "mechanism"`.
            for (path, summary) in stiffx::plugins::mechanism::shipped(std::path::Path::new("mechanisms")) {
                println!("{:<10} {path:<18} {summary}", "mechanism");
            }
            Ok(())
        }
        Command::Run(a) => stiffx::commands::run::run(&a),
        Command::Eval(a) => stiffx::commands::eval::eval(&a),
        Command::Bench(a) => stiffx::commands::bench::bench(&a),
        Command::Sweep(a) => stiffx::commands::sweep::sweep(&a),
        Command::Diagnose(a) => stiffx::commands::sweep::diagnose(&a),
        Command::Compare(a) => stiffx::commands::sweep::compare(&a),
        Command::Inspect(a) => stiffx::commands::inspect::inspect(&a),
        Command::Export(a) => stiffx::commands::export::export(&a),
        Command::Identify(a) if a.data.is_some() => stiffx::commands::identify_data::identify_data(&a),
        Command::Identify(a) => stiffx::commands::identify::identify(&a),
        Command::Jobs(a) => stiffx::commands::jobs::jobs(&a),
        Command::RunJob(a) => stiffx::commands::jobs::run_job(&a),
        Command::Collect(a) => stiffx::commands::jobs::collect(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            exit_code(&e)
        }
    }
}

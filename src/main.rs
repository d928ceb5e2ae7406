//! The command line: parse, start logging, dispatch; errors printed once with their causes.

use std::process::ExitCode;

use clap::Parser;

use postfix_dogstatsd::cli::{Cli, Command};
use postfix_dogstatsd::config::{self, DatadogEnv, Source};
use postfix_dogstatsd::{check, daemon, error_chain, logging};

/// Exit codes: 0 fine, 1 a collection failed (check) or the daemon could not run, 2 bad command
/// line (clap), 78 bad config (EX_CONFIG, which systemd shows as "configuration error").
const EXIT_FAILED: u8 = 1;
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    postfix_dogstatsd::tune_allocator();
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_format, cli.log_level.as_deref()) {
        eprintln!("postfix-dogstatsd: {}", error_chain(&e));
        return ExitCode::from(2);
    }
    let source = match cli.config {
        Some(path) => Source::Explicit(path),
        None => Source::Default,
    };
    let env = DatadogEnv::from_process();
    match cli.command.unwrap_or(Command::Run) {
        Command::Validate => match config::load(&source, &env) {
            Ok(config) => {
                let mut text = format!(
                    "{}: valid: {} instance{}, sending to {}\n",
                    config.source,
                    config.instances.len(),
                    if config.instances.len() == 1 { "" } else { "s" },
                    config.target
                );
                for i in &config.instances {
                    text.push_str(&format!("  {}\n", i.label()));
                }
                // A reader that stops early (`| head`) is not worth a panic.
                let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Check { send, log_since } => {
            let config = match config::load(&source, &env) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            match runtime().map(|rt| rt.block_on(check::run(&config, send, log_since))) {
                Ok(Ok(true)) => ExitCode::SUCCESS,
                Ok(Ok(false)) => ExitCode::from(EXIT_FAILED),
                Ok(Err(e)) => fail(&e),
                Err(e) => fail(&e),
            }
        }
        Command::Run => {
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => return fail(&e),
            };
            let result = rt.block_on(daemon::run(source, env));
            // A directory walk still running in a blocking thread must not hold up the exit.
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(daemon::Fatal::Config(e)) => {
                    eprintln!("{e}");
                    ExitCode::from(EXIT_CONFIG)
                }
                Err(e) => fail(&e),
            }
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
}

fn fail(e: &dyn std::error::Error) -> ExitCode {
    tracing::error!("{}", error_chain(e));
    eprintln!("postfix-dogstatsd: {}", error_chain(e));
    ExitCode::from(EXIT_FAILED)
}

//! Writes the man page, generated from the command-line definitions, to stdout:
//!
//!     cargo run --example manpage > target/postfix-dogstatsd.1

use clap::CommandFactory;

fn main() -> std::io::Result<()> {
    let cmd = postfix_dogstatsd::cli::Cli::command();
    clap_mangen::Man::new(cmd).render(&mut std::io::stdout())
}

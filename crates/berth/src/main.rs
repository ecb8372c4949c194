//! berth: a daemonless, Docker-compatible container engine.

mod cli;
mod commands;
mod error;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, ImageCommand, SystemCommand};
use error::{status, CliError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                // Docker exits 125 on a command line it cannot parse.
                _ => status::ENGINE,
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.silent {
                let _ = writeln!(std::io::stderr(), "Error: {e}");
            }
            ExitCode::from(e.status as u8)
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = commands::Context::new(cli.root);
    match cli.command {
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => commands::images::run(&ctx, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => {
            commands::import::run(&ctx, a)
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => commands::tag::run(&ctx, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => commands::rmi::run(&ctx, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            commands::history::run(&ctx, a)
        }
        Command::Inspect(a) => commands::inspect::run(&ctx, a),
        Command::Image(ImageCommand::Inspect(a)) => commands::inspect::run_image(&ctx, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => commands::save::run(&ctx, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => commands::load::run(&ctx, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => {
            commands::system::info(&ctx, a)
        }
        Command::System(SystemCommand::Check(a)) => commands::system::check(&ctx, a),
        Command::Version => commands::system::version(),
    }
}

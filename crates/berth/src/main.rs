//! berth: a daemonless, Docker-compatible container engine.

mod cli;
mod commands;
mod error;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{
    BuilderCommand, Cli, Command, ContainerCommand, ImageCommand, NetworkCommand, SystemCommand,
    VolumeCommand,
};
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
        Command::System(SystemCommand::Df(a)) => commands::df::run(&ctx, a),
        Command::System(SystemCommand::Prune(a)) => commands::prune::system(&ctx, a),
        Command::Image(ImageCommand::Prune(a)) => commands::image_prune::run(&ctx, a),
        Command::Version => commands::system::version(),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => {
            commands::container::create::run(&ctx, a)
        }
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            commands::container::create::run_create(&ctx, a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            commands::container::lifecycle::start(&ctx, a)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            commands::container::lifecycle::stop(&ctx, a)
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            commands::container::lifecycle::restart(&ctx, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            commands::container::lifecycle::kill(&ctx, a)
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => {
            commands::container::lifecycle::rm(&ctx, a)
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => {
            commands::container::ps::run(&ctx, a)
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            commands::container::logs::run(&ctx, a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            commands::container::lifecycle::wait(&ctx, a)
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            commands::container::lifecycle::rename(&ctx, a)
        }
        Command::Container(ContainerCommand::Inspect(a)) => {
            commands::inspect::run_container(&ctx, a)
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            commands::container::exec::run(&ctx, a)
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            commands::container::freeze::pause(&ctx, a)
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            commands::container::freeze::unpause(&ctx, a)
        }
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => {
            commands::container::top::run(&ctx, a)
        }
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            commands::container::stats::run(&ctx, a)
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            commands::container::files::diff(&ctx, a)
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            commands::container::files::export(&ctx, a)
        }
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            commands::container::commit::run(&ctx, a)
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => {
            commands::container::files::cp(&ctx, a)
        }
        Command::Container(ContainerCommand::Prune(a)) => commands::container::prune::run(&ctx, a),
        Command::Build(a)
        | Command::Image(ImageCommand::Build(a))
        | Command::Builder(BuilderCommand::Build(a)) => commands::build::run(&ctx, *a),
        Command::Builder(BuilderCommand::Prune(a)) => commands::build::prune(&ctx, a),
        Command::Lint(a) => commands::lint::run(&ctx, a),
        Command::Login(a) => commands::registry::login(&ctx, a),
        Command::Logout(a) => commands::registry::logout(&ctx, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => {
            commands::registry::push(&ctx, a)
        }
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => {
            commands::registry::pull(&ctx, a)
        }
        Command::Network(NetworkCommand::Create(a)) => commands::network::create(&ctx, a),
        Command::Network(NetworkCommand::Ls(a)) => commands::network::ls(&ctx, a),
        Command::Network(NetworkCommand::Inspect(a)) => commands::network::inspect(&ctx, a),
        Command::Network(NetworkCommand::Rm(a)) => commands::network::rm(&ctx, a),
        Command::Network(NetworkCommand::Connect(a)) => commands::network::connect(&ctx, a),
        Command::Network(NetworkCommand::Disconnect(a)) => commands::network::disconnect(&ctx, a),
        Command::Network(NetworkCommand::Prune(a)) => commands::network::prune(&ctx, a),
        Command::Volume(VolumeCommand::Create(a)) => commands::volume::create(&ctx, a),
        Command::Volume(VolumeCommand::Ls(a)) => commands::volume::ls(&ctx, a),
        Command::Volume(VolumeCommand::Inspect(a)) => commands::volume::inspect(&ctx, a),
        Command::Volume(VolumeCommand::Rm(a)) => commands::volume::rm(&ctx, a),
        Command::Volume(VolumeCommand::Prune(a)) => commands::volume::prune(&ctx, a),
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            commands::container::ps::port(&ctx, a)
        }
        Command::Proxy(a) => {
            let bindings: Vec<berth_runtime::ports::PortBinding> =
                serde_json::from_str(&a.bindings)
                    .map_err(|e| CliError::usage(format!("bad port bindings: {e}")))?;
            match berth_runtime::proxy::run(&a.netns, &bindings) {
                0 => Ok(()),
                code => Err(CliError::exit(code)),
            }
        }
        Command::Step(a) => match berth_runtime::step::run(&a.dir) {
            0 => Ok(()),
            code => Err(CliError::exit(code)),
        },
        Command::Monitor(a) => {
            let code = berth_runtime::monitor::run(ctx.root(), &a.id, a.attach);
            if code == 0 {
                Ok(())
            } else {
                Err(CliError::exit(code))
            }
        }
    }
}

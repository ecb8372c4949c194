//! `pause` and `unpause`: the cgroup freezer, through the runtime.

use std::io::Write;

use berth_store::ContainerStatus;
use libcontainer::container::Container;

use super::{find, for_each, Context};
use crate::cli::ContainersArgs;
use crate::error::CliError;
use crate::output;

fn runtime_container(dir: &std::path::Path, id: &str) -> Result<Container, CliError> {
    Container::load(dir.join("runtime").join(id))
        .map_err(|e| CliError::new(format!("cannot load the runtime state of {id}: {e}")))
}

pub fn pause(ctx: &Context, a: ContainersArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    for_each(&a.containers, |q| {
        let mut c = find(&mut store, q)?;
        match c.status {
            ContainerStatus::Running => {}
            ContainerStatus::Paused => {
                return Err(CliError::new(format!(
                    "container {} is already paused",
                    &c.id[..12]
                )))
            }
            _ => {
                return Err(CliError::new(format!(
                    "container {} is not running",
                    &c.id[..12]
                )))
            }
        }
        let dir = store.layout().container(&c.id);
        runtime_container(&dir, &c.id)?
            .pause()
            .map_err(|e| CliError::new(format!("cannot pause {q}: {e}")))?;
        c.status = ContainerStatus::Paused;
        store.save_container_state(&c)?;
        writeln!(output::stdout(), "{q}")?;
        Ok(())
    })
}

pub fn unpause(ctx: &Context, a: ContainersArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    for_each(&a.containers, |q| {
        let mut c = find(&mut store, q)?;
        if c.status != ContainerStatus::Paused {
            return Err(CliError::new(format!(
                "container {} is not paused",
                &c.id[..12]
            )));
        }
        let dir = store.layout().container(&c.id);
        runtime_container(&dir, &c.id)?
            .resume()
            .map_err(|e| CliError::new(format!("cannot unpause {q}: {e}")))?;
        c.status = ContainerStatus::Running;
        store.save_container_state(&c)?;
        writeln!(output::stdout(), "{q}")?;
        Ok(())
    })
}

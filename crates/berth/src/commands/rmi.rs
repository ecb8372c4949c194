//! `berth rmi` / `berth image rm`.

use std::io::Write;

use berth_store::RemoveEvent;

use super::Context;
use crate::cli::RmiArgs;
use crate::error::CliError;
use crate::output;

pub fn run(ctx: &Context, a: RmiArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let mut failed = false;
    let mut out = output::stdout();
    // Like docker: every argument is tried; errors are reported as they come
    // and the exit status says whether any failed.
    for image in &a.images {
        match store.remove_image(image, a.force) {
            Ok(events) => {
                for e in events {
                    match e {
                        RemoveEvent::Untagged(r) => writeln!(out, "Untagged: {}", r.familiar())?,
                        RemoveEvent::Deleted(d) => writeln!(out, "Deleted: {d}")?,
                    }
                }
            }
            Err(e) => {
                failed = true;
                out.flush()?;
                writeln!(std::io::stderr(), "Error: {e}")?;
            }
        }
    }
    if failed {
        return Err(CliError::exit(crate::error::status::FAILURE));
    }
    Ok(())
}

//! `berth tag SOURCE TARGET`.

use berth_oci::Reference;

use super::Context;
use crate::cli::TagArgs;
use crate::error::CliError;

pub fn run(ctx: &Context, a: TagArgs) -> Result<(), CliError> {
    let target = Reference::parse_normalized(&a.target)?;
    if target.digest().is_some() {
        return Err(CliError::new(
            "refusing to create a tag with a digest reference",
        ));
    }
    let mut store = ctx.store()?;
    let img = store.resolve_image(&a.source)?;
    store.tag(&img.id, &target)?;
    Ok(())
}

//! Builds `berth-init` (init/berth-init.c) as a static executable that berth
//! embeds and mounts into containers run with `--init`. A static C program is
//! used because it must run in any image, including ones without a libc.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "init/berth-init.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("berth-init");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} to build berth-init: {e}"));
    assert!(
        status.success(),
        "building berth-init with {cc} -static failed (is libc6-dev installed?)"
    );
}

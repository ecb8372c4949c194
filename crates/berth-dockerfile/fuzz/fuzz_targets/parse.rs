//! Parsing must never panic: the syntax tree, its dump, the typed instructions and
//! the stage graph are all built from arbitrary text. Errors are fine.
#![no_main]

use berth_dockerfile::stages::{GraphOptions, StageGraph};
use berth_dockerfile::{detect_syntax, parse, Dockerfile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let _ = detect_syntax(&src);
    let Ok(res) = parse(&src) else { return };
    let _ = res.ast.dump();
    let Ok(df) = Dockerfile::from_ast(&res) else {
        return;
    };
    for stage in &df.stages {
        for cmd in &stage.commands {
            if let berth_dockerfile::Instruction::Onbuild(o) = &cmd.instruction {
                let _ = o.trigger();
            }
        }
    }
    if let Ok(graph) = StageGraph::new(&df, &GraphOptions::default()) {
        let _ = graph.plan(None);
    }
});

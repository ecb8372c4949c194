//! Process identity that survives PID reuse: a PID together with its start time
//! from /proc, so a record never mistakes a new process for a dead one.

/// The start time (clock ticks since boot) of `pid`, or `None` if it is gone.
pub fn start_time(pid: i64) -> Option<i64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields
    // after the last ')' are fixed. starttime is field 22.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state), so field 22 is index 19.
    let st = fields.get(19)?.parse().ok()?;
    // A zombie has exited already.
    (fields.first() != Some(&"Z")).then_some(st)
}

/// Whether the process recorded as (`pid`, `start`) still runs.
pub fn alive(pid: i64, start: i64) -> bool {
    start_time(pid).is_some_and(|s| start == 0 || s == start)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_is_alive() {
        let me = std::process::id() as i64;
        let st = super::start_time(me).unwrap();
        assert!(super::alive(me, st));
        assert!(!super::alive(me, st + 1));
    }
}

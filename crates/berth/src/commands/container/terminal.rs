//! The local terminal while attached to a container's terminal: raw mode (so
//! Ctrl-C reaches the container as a byte, not as a signal to berth) and its
//! size.

use std::io::IsTerminal;

use rustix::termios::{tcgetattr, tcgetwinsize, tcsetattr, OptionalActions, Termios};

/// Puts standard input in raw mode until dropped.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enable() -> Self {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Self { saved: None };
        }
        let Ok(saved) = tcgetattr(&stdin) else {
            return Self { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = tcsetattr(&stdin, OptionalActions::Now, &raw);
        Self { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, t);
        }
    }
}

/// The size of the terminal on standard output (or input), rows then columns.
pub fn size() -> Option<(u16, u16)> {
    [
        tcgetwinsize(std::io::stdout()),
        tcgetwinsize(std::io::stdin()),
    ]
    .into_iter()
    .flatten()
    .find(|ws| ws.ws_row > 0 && ws.ws_col > 0)
    .map(|ws| (ws.ws_row, ws.ws_col))
}

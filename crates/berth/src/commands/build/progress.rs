//! BuildKit-style progress: `#N` lines in plain mode, a redrawn summary on a
//! terminal, nothing with `-q` (but a failed step's output is kept to show).

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_build::{Event, Reporter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
    Quiet,
}

/// Lines of a running step shown under it on a terminal.
const TTY_LOG_LINES: usize = 6;

struct Vertex {
    id: usize,
    name: String,
    started: Instant,
    elapsed: Option<Duration>,
    cached: bool,
    error: Option<String>,
    logs: Vec<String>,
}

struct State {
    vertices: Vec<Vertex>,
    warnings: Vec<String>,
    drawn: usize,
    last_draw: Option<Instant>,
}

pub struct Printer {
    mode: Mode,
    start: Instant,
    state: Mutex<State>,
}

impl Printer {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            start: Instant::now(),
            state: Mutex::new(State {
                vertices: Vec::new(),
                warnings: Vec::new(),
                drawn: 0,
                last_draw: None,
            }),
        }
    }

    /// The last frame on a terminal; warnings.
    pub fn finish(&self) {
        let mut st = self.state.lock().expect("lock");
        if self.mode == Mode::Tty {
            self.draw(&mut st, true);
        }
        if self.mode != Mode::Quiet {
            let mut err = std::io::stderr().lock();
            for w in &st.warnings {
                let _ = writeln!(err, "WARNING: {w}");
            }
        }
    }

    /// After a failure: the output of each failed step, framed as BuildKit
    /// does, so the reason is on screen whatever the mode.
    pub fn print_failure_logs(&self) {
        let st = self.state.lock().expect("lock");
        let mut err = std::io::stderr().lock();
        for v in st.vertices.iter().filter(|v| v.error.is_some()) {
            let _ = writeln!(err, "------\n > {}:", v.name);
            let skip = v.logs.len().saturating_sub(200);
            for l in &v.logs[skip..] {
                let _ = writeln!(err, "{l}");
            }
            let _ = writeln!(err, "------");
        }
    }

    fn find(st: &mut State, id: usize) -> Option<&mut Vertex> {
        st.vertices.iter_mut().find(|v| v.id == id)
    }

    fn plain(&self, e: &Event) {
        let mut err = std::io::stderr().lock();
        let _ = match e {
            Event::Started { id, name } => writeln!(err, "#{id} {name}"),
            Event::Cached { id } => writeln!(err, "#{id} CACHED\n"),
            Event::Log {
                id, line, elapsed, ..
            } => {
                writeln!(err, "#{id} {:.3} {line}", elapsed.as_secs_f64())
            }
            Event::Done { id, elapsed } => {
                writeln!(err, "#{id} DONE {:.1}s\n", elapsed.as_secs_f64())
            }
            Event::Failed { id, message, .. } => writeln!(err, "#{id} ERROR: {message}\n"),
            Event::Warning { .. } => Ok(()),
        };
    }

    fn draw(&self, st: &mut State, force: bool) {
        let now = Instant::now();
        if !force
            && st
                .last_draw
                .is_some_and(|t| now - t < Duration::from_millis(80))
        {
            return;
        }
        st.last_draw = Some(now);
        let width = terminal_width().max(20);
        let fit = |s: String| -> String {
            let n = s.chars().count();
            if n < width {
                s
            } else {
                s.chars().take(width - 1).collect()
            }
        };
        let done = st.vertices.iter().filter(|v| v.elapsed.is_some()).count();
        let mut lines = vec![fit(format!(
            "[+] Building {:.1}s ({}/{}){}",
            self.start.elapsed().as_secs_f64(),
            done,
            st.vertices.len(),
            if force && st.vertices.iter().all(|v| v.error.is_none()) {
                " FINISHED"
            } else {
                ""
            }
        ))];
        for v in &st.vertices {
            let t = v
                .elapsed
                .unwrap_or_else(|| v.started.elapsed())
                .as_secs_f64();
            let prefix = if v.cached {
                "CACHED "
            } else if v.error.is_some() {
                "ERROR "
            } else {
                ""
            };
            let head = format!(" => {prefix}{}", v.name);
            let time = format!("{t:.1}s");
            let room = width.saturating_sub(time.len() + 2);
            let head: String = head.chars().take(room).collect();
            let pad = room.saturating_sub(head.chars().count());
            lines.push(format!("{head}{}{time}", " ".repeat(pad + 1)));
            if v.elapsed.is_none() || v.error.is_some() {
                let skip = v.logs.len().saturating_sub(TTY_LOG_LINES);
                for l in &v.logs[skip..] {
                    lines.push(fit(format!(" => => # {l}")));
                }
            }
        }
        let mut err = std::io::stderr().lock();
        let mut buf = String::new();
        if st.drawn > 0 {
            buf.push_str(&format!("\x1b[{}A\r\x1b[J", st.drawn));
        }
        for l in &lines {
            buf.push_str(l);
            buf.push('\n');
        }
        let _ = err.write_all(buf.as_bytes());
        let _ = err.flush();
        st.drawn = lines.len();
    }
}

impl Reporter for Printer {
    fn event(&self, e: Event) {
        let mut st = self.state.lock().expect("lock");
        match &e {
            Event::Started { id, name } => st.vertices.push(Vertex {
                id: *id,
                name: name.clone(),
                started: Instant::now(),
                elapsed: None,
                cached: false,
                error: None,
                logs: Vec::new(),
            }),
            Event::Cached { id } => {
                if let Some(v) = Self::find(&mut st, *id) {
                    v.cached = true;
                    v.elapsed = Some(Duration::ZERO);
                }
            }
            Event::Log { id, line, .. } => {
                if let Some(v) = Self::find(&mut st, *id) {
                    v.logs.push(line.clone());
                }
            }
            Event::Done { id, elapsed } => {
                if let Some(v) = Self::find(&mut st, *id) {
                    v.elapsed = Some(*elapsed);
                }
            }
            Event::Failed {
                id,
                message,
                elapsed,
            } => {
                if let Some(v) = Self::find(&mut st, *id) {
                    v.elapsed = Some(*elapsed);
                    v.error = Some(message.clone());
                }
            }
            Event::Warning { message } => st.warnings.push(message.clone()),
        }
        match self.mode {
            Mode::Plain => self.plain(&e),
            Mode::Tty => {
                let force = !matches!(e, Event::Log { .. });
                self.draw(&mut st, force);
            }
            Mode::Quiet => {}
        }
    }
}

fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(rustix::stdio::stderr())
        .map(|w| w.ws_col as usize)
        .ok()
        .filter(|w| *w > 0)
        .unwrap_or(80)
}

//! Printing for people: aligned tables, and colour only when stdout is a terminal (and NO_COLOR
//! is not set). Every line goes through [`out!`] and [`outln!`], which never panic: when the
//! reader goes away (`syhub-ntp clients | head -1`), the rest of the output is dropped and the
//! command ends with the exit code it would have had.

use std::io::{IsTerminal, Write as _};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout cannot be written: nothing more is tried.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// Why stdout failed, when it was not the reader going away (a full disk, an I/O error).
static STDOUT_ERROR: OnceLock<String> = OnceLock::new();

/// Writes to stdout, flushed, without panicking; see the module's note.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = STDOUT_ERROR.set(error.to_string());
        }
    }
}

/// Writes to stderr, ignoring failure: there is nowhere left to report it.
pub(crate) fn write_stderr(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// Why the output could not be written, when the cause was not a closed pipe: the command's
/// result was then not seen, and it should fail.
pub(crate) fn stdout_error() -> Option<&'static str> {
    STDOUT_ERROR.get().map(String::as_str)
}

/// `print!` that never panics.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*)) };
}

/// `println!` that never panics.
macro_rules! outln {
    () => { $crate::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, out, outln};

#[derive(Debug, Clone, Copy)]
pub(crate) enum Colour {
    Green,
    Yellow,
    Red,
    Dim,
}

/// `text` in `colour` when printing to a terminal, else unchanged.
pub(crate) fn paint(text: &str, colour: Colour) -> String {
    if !std::io::stdout().is_terminal() || std::env::var_os("NO_COLOR").is_some() {
        return text.to_owned();
    }
    let code = match colour {
        Colour::Green => "32",
        Colour::Yellow => "33",
        Colour::Red => "31",
        Colour::Dim => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The colour of a synchronisation state word.
pub(crate) fn state_colour(status: &str) -> Colour {
    match status {
        "synchronised" => Colour::Green,
        "local clock" => Colour::Yellow,
        _ => Colour::Red,
    }
}

/// A table whose columns line up; numeric columns are right-aligned.
pub(crate) struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<(Vec<String>, Option<Colour>)>,
}

impl Table {
    /// Columns named in `headers`; those in `right` are right-aligned.
    pub(crate) fn new(headers: &[&'static str], right: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            right: headers.iter().map(|h| right.contains(h)).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>, colour: Option<Colour>) {
        self.rows.push((cells, colour));
    }

    pub(crate) fn print(&self) {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for (cells, _) in &self.rows {
            for (i, cell) in cells.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            cells
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    if self.right[i] {
                        format!("{}{cell}", " ".repeat(pad))
                    } else {
                        format!("{cell}{}", " ".repeat(pad))
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
                .trim_end()
                .to_owned()
        };
        let headers: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        let header = line(&headers);
        outln!("{header}");
        outln!("{}", "=".repeat(header.chars().count()));
        for (cells, colour) in &self.rows {
            let text = line(cells);
            match colour {
                Some(colour) => outln!("{}", paint(&text, *colour)),
                None => outln!("{text}"),
            }
        }
    }
}

/// Seconds as ntpq shows "when": 45, 12m, 3h, 2d.
pub(crate) fn age(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 120.0 => format!("{s:.0}"),
        Some(s) if s < 7_200.0 => format!("{:.0}m", s / 60.0),
        Some(s) if s < 172_800.0 => format!("{:.0}h", s / 3_600.0),
        Some(s) => format!("{:.0}d", s / 86_400.0),
    }
}

/// Seconds as milliseconds with three decimals, or "-".
pub(crate) fn millis(seconds: Option<f64>) -> String {
    seconds.map_or("-".into(), |s| format!("{:.3}", s * 1e3))
}

/// A duration in words: "3 d 4 h", "12 min", "40 s".
pub(crate) fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7_199 => format!("{} min", s / 60),
        7_200..=172_799 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

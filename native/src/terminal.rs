//! `chatclient` on a terminal: line editing and history (rustyline), lines
//! that arrive while the user types printed above the line being edited
//! (rustyline's external printer) so they never clobber it, colour choice,
//! and the wall clock for `[HH:MM]` stamps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter};
use serde::Deserialize;
use udpchat_core::ui::ClockTime;

/// When to colour the output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ColorChoice {
    /// When standard output is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always, even into a pipe or with `NO_COLOR`.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour: `Auto` colours a terminal (`stdout_is_terminal`)
    /// unless `NO_COLOR` is set to something or `TERM` is `dumb`.
    pub fn enabled(self, stdout_is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                stdout_is_terminal
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
            }
        }
    }
}

/// The local time of day, for `[HH:MM]` stamps.
pub fn local_time() -> ClockTime {
    use chrono::Timelike;
    let now = chrono::Local::now();
    ClockTime {
        hour: now.hour() as u8,
        minute: now.minute() as u8,
    }
}

/// The width in columns of the terminal on standard output, if it is one.
pub fn width() -> Option<usize> {
    #[cfg(unix)]
    {
        use std::io::IsTerminal;
        let stdout = std::io::stdout();
        if !stdout.is_terminal() {
            return None;
        }
        rustix::termios::tcgetwinsize(&stdout)
            .ok()
            .map(|w| usize::from(w.ws_col))
            .filter(|&w| w > 0)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The current time in UTC, RFC 3339 with milliseconds, for `--json`.
pub fn utc_timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What the line editor hands to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum EditorInput {
    /// A line, without its line ending.
    Line(String),
    /// Ctrl-D on an empty line.
    Eof,
    /// Ctrl-C.
    Interrupt,
}

/// How long the editor waits, after a line, for the client's next prompt
/// before it shows the last one again.
const PROMPT_WAIT: Duration = Duration::from_millis(500);

/// A rustyline editor on its own thread, and a way to print above it.
pub struct LineEditor {
    printer: Box<dyn ExternalPrinter + Send>,
    prompts: Sender<String>,
    prompt_rx: Option<Receiver<String>>,
    editor: Option<DefaultEditor>,
    editing: Arc<AtomicBool>,
    saved: SavedMode,
}

impl LineEditor {
    /// An editor on standard input and output, which must both be
    /// terminals. Nothing is read until [`LineEditor::start`].
    pub fn new() -> rustyline::Result<LineEditor> {
        let saved = SavedMode::save();
        let config = Config::builder()
            .auto_add_history(true)
            .max_history_size(1000)?
            .history_ignore_space(true)
            .build();
        let mut editor = DefaultEditor::with_config(config)?;
        let printer = editor.create_external_printer()?;
        let (prompts, prompt_rx) = unbounded();
        Ok(LineEditor {
            printer: Box::new(printer),
            prompts,
            prompt_rx: Some(prompt_rx),
            editor: Some(editor),
            editing: Arc::new(AtomicBool::new(false)),
            saved,
        })
    }

    /// Prints `text` (one or more lines) above the line being edited, or
    /// plainly when nothing is being edited.
    pub fn print(&mut self, text: &str) {
        let mut text = text.to_string();
        text.push('\n');
        if self.printer.print(text.clone()).is_err() {
            print!("{text}");
        }
    }

    /// The prompt for the next line to read.
    pub fn set_prompt(&self, prompt: &str) {
        let _ = self.prompts.send(prompt.to_string());
    }

    /// Whether [`LineEditor::start`] was called.
    pub fn is_started(&self) -> bool {
        self.editor.is_none()
    }

    /// Starts reading lines with `prompt`, on a thread that gives each
    /// line, Ctrl-D or Ctrl-C to `sink` (which returns false to stop).
    /// After each line the editor waits briefly for the next prompt set
    /// with [`LineEditor::set_prompt`], so that a flow's prompt (`To: `)
    /// shows on the very next line.
    pub fn start(
        &mut self,
        prompt: &str,
        sink: impl Fn(EditorInput) -> bool + Send + 'static,
    ) -> std::io::Result<()> {
        let (Some(mut editor), Some(prompt_rx)) = (self.editor.take(), self.prompt_rx.take())
        else {
            return Ok(());
        };
        let mut prompt = prompt.to_string();
        let editing = self.editing.clone();
        thread::Builder::new()
            .name("line-editor".into())
            .spawn(move || {
                loop {
                    while let Ok(p) = prompt_rx.try_recv() {
                        prompt = p;
                    }
                    editing.store(true, Ordering::SeqCst);
                    let read = editor.readline(&prompt);
                    editing.store(false, Ordering::SeqCst);
                    match read {
                        Ok(line) => {
                            // Prompts set before this line are stale.
                            while let Ok(p) = prompt_rx.try_recv() {
                                prompt = p;
                            }
                            if !sink(EditorInput::Line(line)) {
                                return;
                            }
                            if let Ok(p) = prompt_rx.recv_timeout(PROMPT_WAIT) {
                                prompt = p;
                            }
                        }
                        Err(ReadlineError::Interrupted) => {
                            sink(EditorInput::Interrupt);
                            return;
                        }
                        Err(_) => {
                            sink(EditorInput::Eof);
                            return;
                        }
                    }
                }
            })?;
        Ok(())
    }

    /// Puts the terminal back as it was when the editor was made, for a
    /// client that ends while a line is being edited (the server went
    /// away: the editor's thread is still in raw mode) or while a password
    /// prompt has echo off.
    pub fn restore(&mut self) {
        self.saved.restore();
        if self.editing.load(Ordering::SeqCst) {
            // Leave the abandoned prompt's line.
            println!();
        }
    }
}

/// The terminal's mode when the client started.
struct SavedMode {
    #[cfg(unix)]
    termios: Option<nix::sys::termios::Termios>,
}

impl SavedMode {
    fn save() -> SavedMode {
        SavedMode {
            #[cfg(unix)]
            termios: nix::sys::termios::tcgetattr(std::io::stdin()).ok(),
        }
    }

    fn restore(&self) {
        #[cfg(unix)]
        if let Some(t) = &self.termios {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_and_always_ignore_the_environment() {
        assert!(!ColorChoice::Never.enabled(true));
        assert!(ColorChoice::Always.enabled(false));
        assert!(!ColorChoice::Auto.enabled(false), "not a terminal");
    }

    #[test]
    fn the_clock_reads_sensibly() {
        let t = local_time();
        assert!(t.hour < 24 && t.minute < 60);
        let stamp = utc_timestamp();
        assert!(stamp.ends_with('Z') && stamp.len() == 24, "{stamp}");
    }
}

//! udpchat's clients on a terminal (`chatclient`, and `host-runner` for the
//! sandboxed client): line editing and history (rustyline), lines that
//! arrive while the user types printed above the line being edited
//! (rustyline's external printer) so they never clobber it, colour choice,
//! and the wall clock for `[HH:MM]` stamps.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, ExternalPrinter, Helper};
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
    /// Ctrl-C: the line (or the search) being typed was thrown away; the
    /// editor goes on.
    Cancelled,
}

/// How long the editor waits, after a line, for the client's next prompt
/// before it shows the last one again.
const PROMPT_WAIT: Duration = Duration::from_millis(500);

/// How long leaving waits for the lines queued for the screen.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// The editor the client's thread runs: rustyline with Tab completion.
type ChatEditor = Editor<Completion, DefaultHistory>;

/// Tab completion (`udpchat_core::ui::complete`): command names after `/`,
/// and the users the client knows to be online, which the client's thread
/// keeps up to date with [`LineEditor::set_names`].
struct Completion {
    names: Arc<Mutex<Vec<String>>>,
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let (start, found) =
            udpchat_core::ui::complete(line, pos, names.iter().map(String::as_str));
        let pairs = found
            .into_iter()
            .map(|word| Pair {
                display: word.clone(),
                replacement: word,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

/// A rustyline editor on its own thread, and a way to print above it.
pub struct LineEditor {
    /// Lines for the printer thread, which hands them to rustyline's
    /// printer: that one waits while the editor is busy with typed-ahead
    /// input, and the client's loop must never wait on the screen.
    to_print: Option<Sender<String>>,
    /// Closed by the printer thread when it has printed everything.
    printed: Receiver<()>,
    prompts: Sender<String>,
    prompt_rx: Option<Receiver<String>>,
    editor: Option<ChatEditor>,
    /// What Tab completes besides commands: the users known to be online.
    names: Arc<Mutex<Vec<String>>>,
    editing: Arc<AtomicBool>,
    saved: SavedMode,
    /// Where the input history is kept across runs, if anywhere.
    history: Option<PathBuf>,
}

impl LineEditor {
    /// An editor on standard input and output, which must both be
    /// terminals. Nothing is read until [`LineEditor::start`].
    pub fn new(history: Option<PathBuf>) -> rustyline::Result<LineEditor> {
        let saved = SavedMode::save();
        let config = Config::builder()
            .auto_add_history(true)
            .max_history_size(1000)?
            .history_ignore_space(true)
            .completion_type(CompletionType::List)
            .build();
        let names = Arc::new(Mutex::new(Vec::new()));
        let mut editor = ChatEditor::with_config(config)?;
        editor.set_helper(Some(Completion {
            names: Arc::clone(&names),
        }));
        let mut printer = editor.create_external_printer()?;
        let (to_print, print_rx) = unbounded::<String>();
        let (done, printed) = unbounded::<()>();
        thread::Builder::new()
            .name("printer".into())
            .spawn(move || {
                for text in print_rx {
                    if printer.print(text.clone()).is_err() {
                        print!("{text}");
                    }
                }
                drop(done);
            })?;
        let (prompts, prompt_rx) = unbounded();
        Ok(LineEditor {
            to_print: Some(to_print),
            printed,
            prompts,
            prompt_rx: Some(prompt_rx),
            editor: Some(editor),
            names,
            editing: Arc::new(AtomicBool::new(false)),
            saved,
            history,
        })
    }

    /// The usernames Tab completes (the users known to be online).
    pub fn set_names<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut kept = self.names.lock().unwrap_or_else(|e| e.into_inner());
        kept.clear();
        kept.extend(names.into_iter().map(str::to_string));
    }

    /// Prints `text` (one or more lines) above the line being edited, or
    /// plainly when nothing is being edited.
    pub fn print(&mut self, text: &str) {
        let mut text = text.to_string();
        text.push('\n');
        match &self.to_print {
            Some(tx) => {
                if let Err(e) = tx.send(text) {
                    print!("{}", e.into_inner());
                }
            }
            None => print!("{text}"),
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
        let history = self.history.clone();
        self.saved.quiet();
        if let Some(path) = &history {
            // A missing or unreadable file is a fresh history.
            let _ = editor.load_history(path);
        }
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
                            if let Some(path) = &history {
                                save_history(&mut editor, path);
                            }
                            // A bracketed paste of several lines arrives as
                            // one: each of its lines is a line of its own.
                            for part in split_lines(&line) {
                                if !sink(EditorInput::Line(part)) {
                                    return;
                                }
                            }
                            if let Ok(p) = prompt_rx.recv_timeout(PROMPT_WAIT) {
                                prompt = p;
                            }
                        }
                        Err(ReadlineError::Interrupted) => {
                            // As in bash and irssi: Ctrl-C throws the line
                            // away; Ctrl-D or /quit leaves.
                            if !sink(EditorInput::Cancelled) {
                                return;
                            }
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
        // What is queued for the screen is printed first (for a moment at
        // most: the editor's thread takes it while it waits for keys).
        if let Some(tx) = self.to_print.take() {
            drop(tx);
            let _ = self.printed.recv_timeout(FLUSH_WAIT);
        }
        self.saved.restore();
        if self.editing.load(Ordering::SeqCst) {
            // Leave the abandoned prompt's line.
            println!();
        }
    }
}

/// The terminal's mode when the client started.
/// The lines of what the editor returned: one, or several from a paste
/// (`\n`, `\r\n` or `\r` between them; a final line ending ends the last).
fn split_lines(line: &str) -> Vec<String> {
    let normal = line.replace("\r\n", "\n").replace('\r', "\n");
    let mut parts: Vec<String> = normal.split('\n').map(str::to_string).collect();
    if parts.len() > 1 && parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    parts
}

/// Appends the newest history entry to the file, created private to the
/// user (history may hold direct messages).
fn save_history(editor: &mut ChatEditor, path: &Path) {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let _ = options.open(path);
    }
    let _ = editor.append_history(path);
}

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

    /// Between two lines the editor is not reading: keys typed then (a
    /// paste, Ctrl-C, Ctrl-D) must wait for it as they are, not be echoed,
    /// turned into signals or eaten by the terminal's own line editing. So
    /// for as long as the editor runs, the terminal reads keys one by one
    /// without echo or signals; output is unchanged.
    fn quiet(&self) {
        #[cfg(unix)]
        if let Some(t) = &self.termios {
            use nix::sys::termios::{LocalFlags, SetArg, SpecialCharacterIndices, tcsetattr};
            let mut quiet = t.clone();
            quiet.local_flags &=
                !(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG | LocalFlags::IEXTEN);
            quiet.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
            quiet.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &quiet);
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
    fn a_pasted_block_is_split_into_its_lines() {
        assert_eq!(split_lines("one"), ["one"]);
        assert_eq!(split_lines(""), [""]);
        assert_eq!(split_lines("a\nb\nc"), ["a", "b", "c"]);
        assert_eq!(split_lines("a\r\nb\r\n"), ["a", "b"]);
        assert_eq!(split_lines("a\rb\r"), ["a", "b"]);
        assert_eq!(split_lines("a\n\nb"), ["a", "", "b"]);
    }

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

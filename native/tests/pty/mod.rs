#![allow(dead_code)] // Each test file uses part of it.

//! A program on a real terminal, for tests: a pseudo-terminal, its screen
//! read through a vt100 emulator, keys typed into it. Shared by chatclient's
//! and host-runner's terminal tests.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use portable_pty::CommandBuilder;
use portable_pty::{Child, MasterPty, PtySize, native_pty_system};

/// How long a screen or an exit is waited for.
pub const WAIT: Duration = Duration::from_secs(10);

/// The terminal's size.
pub const ROWS: u16 = 24;
pub const COLS: u16 = 100;

/// A program in a pseudo-terminal, its screen kept by a vt100 emulator.
pub struct Term {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    pub screen: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    master: Arc<Mutex<Box<dyn MasterPty + Send>>>,
}

impl Term {
    /// `cmd` on a new terminal of [`ROWS`] by [`COLS`].
    pub fn spawn(cmd: CommandBuilder) -> Term {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let child = pty.slave.spawn_command(cmd).expect("start the program");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let writer = pty.master.take_writer().expect("pty writer");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let sink = screen.clone();
        let raw = Arc::new(Mutex::new(Vec::new()));
        let raw_sink = raw.clone();
        let master = Arc::new(Mutex::new(pty.master));
        let kept = master.clone();
        thread::spawn(move || {
            // Keeps the master open as long as the child may write.
            let _master = kept;
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    return;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .process(&buf[..n]);
                raw_sink
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        Term {
            child,
            writer,
            screen,
            raw,
            master,
        }
    }

    /// Keys, as a terminal would send them.
    pub fn keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).expect("type");
        self.writer.flush().expect("flush");
    }

    /// The screen's rows, trailing blanks trimmed.
    pub fn rows(&self) -> Vec<String> {
        let parser = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        parser
            .screen()
            .rows(0, COLS)
            .map(|r| r.trim_end().to_string())
            .collect()
    }

    /// The row the cursor is on, and the cursor's column.
    pub fn cursor(&self) -> (usize, usize) {
        let parser = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        let (row, col) = parser.screen().cursor_position();
        (usize::from(row), usize::from(col))
    }

    pub fn wait_for(&self, what: &str, done: impl Fn(&Term) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            if Instant::now() > deadline {
                panic!(
                    "no {what} within {WAIT:?}; screen:\n{}\nraw: {:?}",
                    self.rows().join("\n"),
                    String::from_utf8_lossy(&self.raw.lock().unwrap_or_else(|e| e.into_inner()))
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The row that contains `text`, waiting for it.
    pub fn row_of(&self, text: &str) -> usize {
        self.wait_for(text, |t| t.rows().iter().any(|r| r.contains(text)));
        self.rows()
            .iter()
            .rposition(|r| r.contains(text))
            .expect("seen")
    }

    /// Waits until the cursor's row reads `line` (trailing blanks aside)
    /// and the cursor is at its end: the line being edited.
    pub fn wait_editing(&self, line: &str) {
        self.wait_for(&format!("the line {line:?} being edited"), |t| {
            let (row, col) = t.cursor();
            t.rows()[row] == line.trim_end() && col == line.chars().count()
        });
    }

    /// Waits until `prompt` is the line being edited and the program has
    /// turned the terminal's echo off, as it does to read a password: keys
    /// typed before that would show on the screen.
    pub fn wait_hidden_input(&self, prompt: &str) {
        self.wait_editing(prompt);
        self.wait_for("the terminal's echo turned off", |t| !t.echoes());
    }

    /// Whether the terminal echoes what is typed (false where its settings
    /// cannot be read).
    fn echoes(&self) -> bool {
        #[cfg(unix)]
        {
            // ECHO in <termios.h>, the same bit on Linux and macOS.
            const ECHO: u64 = 0o10;
            let master = self.master.lock().unwrap_or_else(|e| e.into_inner());
            master
                .get_termios()
                .is_some_and(|t| u64::from(t.local_flags.bits()) & ECHO != 0)
        }
        #[cfg(not(unix))]
        false
    }

    pub fn wait_exit(&mut self) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.exit_code();
            }
            if Instant::now() > deadline {
                panic!("still running; screen:\n{}", self.rows().join("\n"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

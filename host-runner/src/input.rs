//! The host's standard input: one thread owns it and hands complete lines to
//! the main thread over a channel.
//!
//! On a terminal the same thread also reads passwords (with `rpassword`,
//! echo off), because two readers of one terminal would steal each other's
//! keystrokes. To be able to do that, it never blocks in `read(2)` on a
//! terminal: it `poll(2)`s with a short timeout and, in canonical mode, only
//! reads once a whole line is there.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal};
#[cfg(unix)]
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
#[cfg(unix)]
use rustix::event::{PollFd, PollFlags, Timespec};

/// What the stdin thread delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One line, without its line ending; invalid UTF-8 replaced.
    Line(String),
    /// Standard input is closed (or failed); nothing follows.
    End,
}

/// A request to read a password on the terminal.
pub struct PasswordRequest {
    /// Shown on the terminal before reading.
    pub prompt: String,
    /// Where the answer goes: `None` if the terminal gave none.
    pub reply: Sender<Option<String>>,
}

/// The main thread's side of the stdin thread.
pub struct UserInput {
    /// Lines typed by the user, in order, then [`Input::End`].
    pub lines: Receiver<Input>,
    /// Where a line editor that takes over the terminal sends its lines.
    pub editor_lines: Sender<Input>,
    /// `Some` when stdin is a terminal: passwords are read by the stdin
    /// thread through this.
    pub passwords: Option<Sender<PasswordRequest>>,
    /// `Some` when stdin is a terminal: [`UserInput::hand_over`] ends the
    /// stdin thread so that a line editor can read the terminal.
    handover: Option<(Arc<AtomicBool>, Receiver<()>)>,
}

/// How long [`UserInput::hand_over`] waits for the stdin thread to stop.
const HANDOVER_WAIT: Duration = Duration::from_millis(500);

impl UserInput {
    /// Stops reading the terminal (lines and passwords) so that a line
    /// editor can: the stdin thread ends at its next poll, without
    /// [`Input::End`]. Waits for that, briefly.
    pub fn hand_over(&mut self) {
        if let Some((stop, stopped)) = self.handover.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = stopped.recv_timeout(HANDOVER_WAIT);
            self.passwords = None;
        }
    }
}

/// Lines queued between the stdin thread and the guest; a full queue makes
/// the stdin thread wait (the user cannot type faster than that matters).
const QUEUE: usize = 64;
/// How long a terminal `poll(2)` waits before checking for password requests.
#[cfg(unix)]
const TERMINAL_POLL: Duration = Duration::from_millis(50);

/// Starts the stdin thread. Lines longer than `max_line` bytes are dropped
/// with a warning.
pub fn spawn(max_line: usize) -> io::Result<UserInput> {
    let stdin = io::stdin();
    let terminal = stdin.is_terminal();
    // Our own handle on fd 0, so that our BufReader's buffer is inspectable.
    #[cfg(unix)]
    let file = File::from(stdin.as_fd().try_clone_to_owned()?);
    #[cfg(windows)]
    let file = {
        use std::os::windows::io::AsHandle;
        File::from(stdin.as_handle().try_clone_to_owned()?)
    };
    let (line_tx, line_rx) = crossbeam_channel::bounded(QUEUE);
    let editor_lines = line_tx.clone();
    let (passwords, handover) = if terminal {
        let (req_tx, req_rx) = crossbeam_channel::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let (stopped_tx, stopped_rx) = crossbeam_channel::bounded::<()>(0);
        let thread_stop = Arc::clone(&stop);
        thread::Builder::new().name("stdin".into()).spawn(move || {
            terminal_loop(
                BufReader::new(file),
                max_line,
                &line_tx,
                &req_rx,
                &thread_stop,
            );
            drop(stopped_tx);
        })?;
        (Some(req_tx), Some((stop, stopped_rx)))
    } else {
        thread::Builder::new()
            .name("stdin".into())
            .spawn(move || pipe_loop(BufReader::new(file), max_line, &line_tx))?;
        (None, None)
    };
    Ok(UserInput {
        lines: line_rx,
        editor_lines,
        passwords,
        handover,
    })
}

/// Stdin is a pipe or a file: read lines until the end.
fn pipe_loop(mut reader: impl BufRead, max_line: usize, lines: &Sender<Input>) {
    while deliver_line(&mut reader, max_line, lines) {}
}

/// Stdin is a terminal: alternate between password requests and lines,
/// never blocking in a read while a request may come.
fn terminal_loop(
    mut reader: BufReader<File>,
    max_line: usize,
    lines: &Sender<Input>,
    requests: &Receiver<PasswordRequest>,
    stop: &AtomicBool,
) {
    #[cfg(unix)]
    let timeout = Timespec::try_from(TERMINAL_POLL).unwrap_or(Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    });
    loop {
        // A line editor takes the terminal from here.
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match requests.try_recv() {
            Ok(request) => {
                let password = match rpassword::prompt_password(&request.prompt) {
                    Ok(password) => Some(password),
                    Err(e) => {
                        tracing::warn!("could not read a password on the terminal: {e}");
                        None
                    }
                };
                // The main thread may have stopped waiting; nothing to do then.
                let _ = request.reply.send(password);
                continue;
            }
            Err(TryRecvError::Empty) => {}
            // The main thread is gone: so is anyone who would read lines.
            Err(TryRecvError::Disconnected) => return,
        }
        // Windows: no poll on a console handle; the read below blocks, so a
        // password request waits for the next line.
        #[cfg(unix)]
        if reader.buffer().is_empty() {
            let mut fds = [PollFd::new(reader.get_ref(), PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::warn!("stdin: poll failed: {e}");
                    let _ = lines.send(Input::End);
                    return;
                }
            }
        }
        if !deliver_line(&mut reader, max_line, lines) {
            return;
        }
    }
}

/// Reads one line and sends it on. Returns `false` once nothing more can
/// come (end of input, a read error, or nobody listening).
fn deliver_line(reader: &mut impl BufRead, max_line: usize, lines: &Sender<Input>) -> bool {
    let input = match read_line_bounded(reader, max_line) {
        Ok(LineRead::Line(bytes)) => Input::Line(String::from_utf8_lossy(&bytes).into_owned()),
        Ok(LineRead::TooLong(len)) => {
            tracing::warn!("dropped an input line of {len} bytes: the limit is {max_line}");
            return true;
        }
        Ok(LineRead::End) => Input::End,
        Err(e) => {
            tracing::warn!("stdin: {e}");
            Input::End
        }
    };
    let more = input != Input::End;
    lines.send(input).is_ok() && more
}

/// One result of [`read_line_bounded`].
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line without its `\n` or `\r\n`.
    Line(Vec<u8>),
    /// A line of this many bytes (without the ending) was longer than the
    /// limit; it was consumed and discarded.
    TooLong(usize),
    /// End of input, with no partial line before it.
    End,
}

/// Reads one line of at most `max` bytes (without its ending) and never
/// holds more than `max` bytes of it in memory. A last line without `\n` is
/// still a line.
pub fn read_line_bounded(reader: &mut impl BufRead, max: usize) -> io::Result<LineRead> {
    let mut line = Vec::new();
    let mut len = 0usize;
    let mut saw_any = false;
    let mut last_byte = None;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            if !saw_any {
                return Ok(LineRead::End);
            }
            break;
        }
        saw_any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        len = len.saturating_add(part.len());
        if let Some(&b) = part.last() {
            last_byte = Some(b);
        }
        if len <= max.saturating_add(1) {
            // Keep one byte past the limit: it may be the `\r` of `\r\n`.
            line.extend_from_slice(part);
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            break;
        }
    }
    if last_byte == Some(b'\r') {
        len -= 1;
        line.truncate(len);
    }
    if len > max {
        return Ok(LineRead::TooLong(len));
    }
    Ok(LineRead::Line(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn lines(input: &[u8], max: usize) -> Vec<LineRead> {
        // A tiny buffer makes lines span several fill_buf calls.
        let mut reader = BufReader::with_capacity(3, Cursor::new(input.to_vec()));
        let mut out = Vec::new();
        loop {
            let line = read_line_bounded(&mut reader, max).expect("in-memory read");
            let end = line == LineRead::End;
            out.push(line);
            if end {
                return out;
            }
        }
    }

    fn line(s: &str) -> LineRead {
        LineRead::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn splits_lines_and_strips_endings() {
        assert_eq!(
            lines(b"PM\r\nhello world\n\nlast", 100),
            [
                line("PM"),
                line("hello world"),
                line(""),
                line("last"),
                LineRead::End
            ]
        );
    }

    #[test]
    fn empty_input_is_just_the_end() {
        assert_eq!(lines(b"", 10), [LineRead::End]);
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes() {
        assert_eq!(
            lines(b"12345\n12345\r\n", 5),
            [line("12345"), line("12345"), LineRead::End]
        );
    }

    #[test]
    fn longer_lines_are_dropped_whole_and_reading_goes_on() {
        assert_eq!(
            lines(b"123456\nok\n1234567890\r\n", 5),
            [
                LineRead::TooLong(6),
                line("ok"),
                LineRead::TooLong(10),
                LineRead::End
            ]
        );
    }
}

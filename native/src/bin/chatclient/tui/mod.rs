//! chatclient's full-screen mode: windows for the server, each room and
//! each conversation, a status bar, a member list and an input line, drawn
//! with ratatui on crossterm. What goes where, unread marks, scrolling and
//! history fetches are decided by `udpchat_core::ui::Windows`; the input
//! line is `udpchat_core::ui::EditLine`. This module turns keys, the mouse
//! wheel and pastes into steps of those models and lines for the console,
//! and draws.

use std::io::{self, Stdout, Write};
use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use udpchat_core::ui::{
    ChatEvent, Console, Edit, EditLine, HistoryFetch, PromptKind, Windows, render_styled,
};

pub mod draw;
mod history;

pub use draw::{Link, Status, Theme};

/// What a key asks the client to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// A line for the console.
    Line(String),
    /// Ctrl-D on an empty line: the end of input.
    Eof,
    /// Ctrl-L: draw everything again.
    Redraw,
}

/// The full-screen client's state, whatever it draws on.
pub struct FullScreen {
    pub windows: Windows,
    pub line: EditLine,
    pub status: Status,
    pub theme: Theme,
    /// The console waits for the text of a flow (PM, DM): lines go to it
    /// as typed, not as messages of the active window.
    flow: Option<PromptKind>,
    /// When the next reconnection attempt is due.
    reconnect_at: Option<Instant>,
    /// Rows of the chat area at the last draw (for paging).
    rows: u16,
    /// Messages that were not sent, said again when the screen is left.
    not_sent: Vec<ChatEvent>,
    /// A fetch of older history that scrolling made due.
    pending_fetch: Option<HistoryFetch>,
    /// Where typed lines are kept across runs.
    history: Option<PathBuf>,
    /// Ctrl-C said once what it does.
    cancel_hint_shown: bool,
}

impl FullScreen {
    pub fn new(user: &str, server: String, theme: Theme) -> FullScreen {
        FullScreen {
            windows: Windows::new(user),
            line: EditLine::new(),
            status: Status {
                user: user.to_string(),
                server,
                link: Link::Connecting,
                lag_ms: None,
                queued: 0,
            },
            theme,
            flow: None,
            reconnect_at: None,
            rows: 10,
            not_sent: Vec::new(),
            pending_fetch: None,
            history: None,
            cancel_hint_shown: false,
        }
    }

    /// Keeps typed lines in `path` (the line editor's history file), and
    /// starts with those kept there.
    pub fn keep_history(&mut self, path: PathBuf) {
        for line in history::load(&path) {
            self.line.remember(&line);
        }
        self.history = Some(path);
    }

    /// An event from the console.
    pub fn event(&mut self, event: &ChatEvent, now: Instant) {
        match event {
            ChatEvent::Connecting { .. } => {}
            ChatEvent::LoggedIn { .. } => {
                self.status.link = if self.reconnect_at.take().is_some() {
                    Link::Resumed
                } else {
                    Link::Connected
                };
            }
            ChatEvent::Disconnect {
                reconnect_in: Some(secs),
                ..
            } => {
                self.reconnect_at = Some(now + std::time::Duration::from_secs(*secs));
                self.status.link = Link::Reconnecting(*secs);
            }
            ChatEvent::Disconnect { .. } | ChatEvent::Bye => self.status.link = Link::Closed,
            ChatEvent::NotSent { .. } => self.not_sent.push(event.clone()),
            _ => {}
        }
        self.windows
            .push(event.clone(), Some(udpchat_native::terminal::local_time()));
    }

    /// The console's prompt: a flow's, or back at the menu.
    pub fn prompt(&mut self, kind: &PromptKind) {
        self.flow = match kind {
            PromptKind::Menu | PromptKind::Room { .. } => None,
            other => Some(other.clone()),
        };
    }

    /// What the console knows that the status bar and the windows show.
    pub fn update(&mut self, console: &Console, now: Instant) {
        self.windows.sync_rooms(console.rooms());
        self.status.queued = console.queued();
        self.status.lag_ms = console.client().rtt().map(|d| d.as_micros().div_ceil(1000));
        if let (Link::Reconnecting(_), Some(at)) = (&self.status.link, self.reconnect_at) {
            self.status.link = Link::Reconnecting(at.saturating_duration_since(now).as_secs());
        }
    }

    fn prompt_text(&self) -> String {
        match &self.flow {
            Some(kind) => kind.terminal_text(&self.status.user),
            None => self.windows.prompt(),
        }
    }

    /// A line typed: for the console as it is in a flow, or as the
    /// active window makes it.
    fn typed(&mut self, line: String, console: &Console) -> Vec<Action> {
        self.windows.scroll_to_end();
        if self.flow.is_some() {
            return vec![Action::Line(line)];
        }
        let lines = self.windows.typed(&line, console.active_room());
        if matches!(line.trim(), "PM" | "DM") {
            // Until the console's next prompt, lines are the flow's.
            self.flow = Some(PromptKind::PublicText);
        }
        lines.into_iter().map(Action::Line).collect()
    }

    /// A terminal event: editing, switching, scrolling; returns what the
    /// console is to do.
    pub fn input(&mut self, event: Event, console: &Console) -> Vec<Action> {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.key(key, console),
            Event::Paste(text) => {
                let lines = self.line.paste(&text);
                lines
                    .into_iter()
                    .flat_map(|l| self.typed(l, console))
                    .collect()
            }
            Event::Mouse(m) => {
                match m.kind {
                    MouseEventKind::ScrollUp => self.scroll_up(3),
                    MouseEventKind::ScrollDown => self.windows.scroll_down(3),
                    _ => {}
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn scroll_up(&mut self, n: usize) {
        // The fetch, if one is due, goes at the next drawing (see
        // `FullScreen::draw`), which also catches the start coming into view.
        if let Some(fetch) = self.windows.scroll_up(n) {
            self.pending_fetch = Some(fetch);
        }
    }

    fn key(&mut self, key: KeyEvent, console: &Console) -> Vec<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let page = usize::from(self.rows / 2).max(1);
        match key.code {
            KeyCode::Char(c @ '1'..='9') if alt => {
                self.windows.select(usize::from(c as u8 - b'1'));
            }
            KeyCode::Char('0') if alt => {
                self.windows.select(9);
            }
            KeyCode::Left if alt => self.windows.prev(),
            KeyCode::Right if alt => self.windows.next(),
            KeyCode::Char('n') if ctrl => self.windows.next(),
            KeyCode::Char('p') if ctrl => self.windows.prev(),
            KeyCode::PageUp => self.scroll_up(page),
            KeyCode::PageDown => self.windows.scroll_down(page),
            KeyCode::F(2) => self.windows.toggle_members(),
            KeyCode::Enter => {
                let line = self.line.submit();
                if let Some(path) = &self.history {
                    history::append(path, &line);
                }
                return self.typed(line, console);
            }
            KeyCode::Tab => {
                let names: Vec<String> = console.online_names().1.map(String::from).collect();
                let windows = &self.windows;
                let shown = self.line.tab(|line, cursor| {
                    windows.complete(line, cursor, names.iter().map(String::as_str))
                });
                if shown.len() > 1 {
                    self.windows.push(
                        ChatEvent::Info {
                            text: shown.join("  "),
                        },
                        None,
                    );
                }
            }
            KeyCode::Char('c') if ctrl => {
                self.line.clear();
                if !std::mem::replace(&mut self.cancel_hint_shown, true) {
                    self.windows.push(
                        ChatEvent::Info {
                            text: "(Ctrl-C throws away the line; Ctrl-D or /quit leaves)"
                                .to_string(),
                        },
                        None,
                    );
                }
            }
            KeyCode::Char('l') if ctrl => return vec![Action::Redraw],
            KeyCode::Char('d') if ctrl && self.line.text().is_empty() => {
                return vec![Action::Eof];
            }
            code => {
                let edit = match code {
                    KeyCode::Char('a') if ctrl => Edit::Home,
                    KeyCode::Char('e') if ctrl => Edit::End,
                    KeyCode::Char('b') if ctrl => Edit::Left,
                    KeyCode::Char('f') if ctrl => Edit::Right,
                    KeyCode::Char('b') if alt => Edit::WordLeft,
                    KeyCode::Char('f') if alt => Edit::WordRight,
                    KeyCode::Char('u') if ctrl => Edit::KillToStart,
                    KeyCode::Char('k') if ctrl => Edit::KillToEnd,
                    KeyCode::Char('w') if ctrl => Edit::KillWord,
                    KeyCode::Char('h') if ctrl => Edit::Backspace,
                    KeyCode::Char('d') if ctrl => Edit::Delete,
                    KeyCode::Char(_) if ctrl || alt => return Vec::new(),
                    KeyCode::Char(c) => Edit::Insert(c),
                    KeyCode::Left if ctrl => Edit::WordLeft,
                    KeyCode::Right if ctrl => Edit::WordRight,
                    KeyCode::Left => Edit::Left,
                    KeyCode::Right => Edit::Right,
                    KeyCode::Home => Edit::Home,
                    KeyCode::End => Edit::End,
                    KeyCode::Backspace => Edit::Backspace,
                    KeyCode::Delete => Edit::Delete,
                    KeyCode::Up => Edit::HistoryUp,
                    KeyCode::Down => Edit::HistoryDown,
                    _ => return Vec::new(),
                };
                self.line.edit(edit);
            }
        }
        Vec::new()
    }

    /// Draws on `terminal`; returns the fetch of older history that is
    /// due now, if any.
    pub fn draw<B: Backend>(
        &mut self,
        terminal: &mut Terminal<B>,
    ) -> io::Result<Option<HistoryFetch>> {
        let prompt = self.prompt_text();
        let mut drawn = draw::Drawn::default();
        terminal
            .draw(|frame| {
                drawn = draw::draw(
                    frame,
                    &self.windows,
                    &self.line,
                    &prompt,
                    &self.status,
                    self.theme,
                );
            })
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.rows = drawn.rows;
        let mut fetch = self.pending_fetch.take();
        if fetch.is_none() && drawn.top_shown {
            fetch = self.windows.top_shown();
        }
        Ok(fetch)
    }

    /// The messages that were not sent, to say again on the terminal
    /// after the full screen is gone.
    pub fn not_sent(&self) -> &[ChatEvent] {
        &self.not_sent
    }
}

/// The real terminal: raw mode, the alternate screen, the mouse and
/// bracketed paste, put back as they were by [`Tui::restore`] (also on a
/// panic).
pub struct Tui {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
    active: bool,
}

impl Tui {
    pub fn start() -> io::Result<Tui> {
        enable_raw_mode()?;
        let mut stdout = io::stdout();
        if let Err(e) = execute!(
            stdout,
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste
        ) {
            let _ = disable_raw_mode();
            return Err(e);
        }
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            leave_screen();
            hook(info);
        }));
        let terminal = Terminal::new(CrosstermBackend::new(stdout))
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Tui {
            terminal,
            active: true,
        })
    }

    /// Leaves the full screen: the terminal is as it was before.
    pub fn restore(&mut self) {
        if std::mem::take(&mut self.active) {
            leave_screen();
            let _ = self.terminal.show_cursor();
        }
    }

    /// Redraws everything (Ctrl-L, after a resize the terminal mangled).
    pub fn clear(&mut self) {
        let _ = self.terminal.clear();
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.restore();
    }
}

fn leave_screen() {
    let mut stdout = io::stdout();
    let _ = execute!(
        stdout,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen
    );
    let _ = disable_raw_mode();
    let _ = stdout.flush();
}

/// An event as the line client shows it, for the terminal after the full
/// screen is gone.
pub fn line_text(event: &ChatEvent, color: bool) -> String {
    render_styled(event, Some(udpchat_native::terminal::local_time()), color)
}

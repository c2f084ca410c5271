//! Drawing the full-screen client: the active window's lines, the member
//! list of a room, the status bar and the input line, from the sans-IO
//! model (`udpchat_core::ui::Windows`, `EditLine`). Lines are the line
//! client's styled text (`render_styled`, cut into rows by `wrap_rows`),
//! whose colour sequences become ratatui styles here.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use udpchat_core::ui::{
    Activity, ChatEvent, EditLine, Entry, WindowKind, Windows, render_styled, sanitize, wrap_rows,
};
use unicode_width::UnicodeWidthStr;

/// The smallest terminal the windows fit in.
pub const MIN_WIDTH: u16 = 24;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 4;
/// The member list is shown from this width on.
pub const MEMBERS_FROM_WIDTH: u16 = 60;

/// Colours and whether to use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    /// Colours at all (off with `NO_COLOR` or `--color never`); bold,
    /// dim and reverse stay.
    pub color: bool,
    /// A light background: colours that read on it.
    pub light: bool,
}

/// The connection, for the status bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Opening a connection.
    Connecting,
    /// Logged in.
    Connected,
    /// Logged in again after the connection was lost.
    Resumed,
    /// Lost; the next attempt in this many seconds.
    Reconnecting(u64),
    /// Over.
    Closed,
}

/// What the status bar shows beside the windows.
#[derive(Clone, Debug)]
pub struct Status {
    /// Who the user is.
    pub user: String,
    /// `host:port`.
    pub server: String,
    /// The connection.
    pub link: Link,
    /// The round-trip time, once measured.
    pub lag_ms: Option<u64>,
    /// Messages waiting for the server's rate limit.
    pub queued: usize,
}

/// What drawing found out that the model needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drawn {
    /// The first entry of the active window is in view.
    pub top_shown: bool,
    /// Rows of the chat area (for paging).
    pub rows: u16,
}

/// Draws everything into `frame`.
pub fn draw(
    frame: &mut Frame<'_>,
    windows: &Windows,
    line: &EditLine,
    prompt: &str,
    status: &Status,
    theme: Theme,
) -> Drawn {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "terminal too small ({}x{}): at least {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return Drawn::default();
    }
    let [chat, bar, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let window = windows.active();
    let members = matches!(window.kind(), WindowKind::Room(_))
        && windows.show_members()
        && area.width >= MEMBERS_FROM_WIDTH;
    let (chat, list) = if members {
        let side = (area.width / 5).clamp(12, 24);
        let [c, l] = Layout::horizontal([Constraint::Min(1), Constraint::Length(side)]).areas(chat);
        (c, Some(l))
    } else {
        (chat, None)
    };
    let top_shown = draw_lines(frame, windows, chat, theme);
    if let Some(list) = list {
        draw_members(frame, windows, list, theme);
    }
    draw_status(frame, windows, status, bar, theme);
    draw_input(frame, line, prompt, input);
    Drawn {
        top_shown,
        rows: chat.height,
    }
}

/// The active window's entries, newest at the bottom, from where it is
/// scrolled to; true when the first entry is in view.
fn draw_lines(frame: &mut Frame<'_>, windows: &Windows, area: Rect, theme: Theme) -> bool {
    let window = windows.active();
    let entries = window.entries();
    let end = entries.len().saturating_sub(window.scroll());
    let height = usize::from(area.height);
    let mut rows: Vec<Line<'static>> = Vec::new();
    let mut top_shown = true;
    for (i, entry) in entries.iter().enumerate().take(end).rev() {
        let text = match entry {
            // In its room's window a message needs no room name.
            Entry::Event {
                event:
                    ChatEvent::RoomMessage {
                        from,
                        text,
                        action,
                        mention,
                        history: false,
                        ..
                    },
                time,
            } if matches!(window.kind(), WindowKind::Room(_)) => render_styled(
                &ChatEvent::Public {
                    from: from.clone(),
                    text: text.clone(),
                    action: *action,
                    mention: *mention,
                },
                *time,
                true,
            ),
            // History carries the time it was sent (`[#rust 12:03]`), not
            // the time it arrived.
            Entry::Event {
                event: event @ ChatEvent::RoomMessage { history: true, .. },
                ..
            } => render_styled(event, None, true),
            Entry::Event { event, time } => render_styled(event, *time, true),
            Entry::Marker(m) => format!("\x1b[2m{}\x1b[0m", m.text()),
        };
        let wrapped = wrap_rows(&text, usize::from(area.width));
        let mut lines: Vec<Line<'static>> = wrapped
            .split('\n')
            .map(|row| styled_line(row, theme))
            .collect();
        lines.append(&mut rows);
        rows = lines;
        if rows.len() >= height {
            top_shown = i == 0 && rows.len() == height;
            break;
        }
    }
    let skip = rows.len().saturating_sub(height);
    let shown: Vec<Line<'static>> = rows.into_iter().skip(skip).collect();
    // Short content sits at the bottom, next to the input line.
    let pad = height.saturating_sub(shown.len()) as u16;
    let area = Rect {
        y: area.y + pad,
        height: area.height - pad,
        ..area
    };
    frame.render_widget(Paragraph::new(shown), area);
    top_shown
}

/// A room's members, away ones dimmed.
fn draw_members(frame: &mut Frame<'_>, windows: &Windows, area: Rect, theme: Theme) {
    let window = windows.active();
    let count = window.members().count();
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "\u{2502}{count} member{}",
            if count == 1 { "" } else { "s" }
        ),
        Style::new().add_modifier(Modifier::BOLD),
    ))];
    for name in window.members() {
        let away = windows.is_away(name);
        let mut style = Style::new();
        if theme.color {
            style = style.fg(nick_color(name, theme));
        }
        if away {
            style = style.add_modifier(Modifier::DIM);
        }
        lines.push(Line::from(vec![
            Span::raw("\u{2502}"),
            Span::styled(sanitize(name), style),
            Span::styled(
                if away { " (away)" } else { "" },
                Style::new().add_modifier(Modifier::DIM),
            ),
        ]));
    }
    let skip = lines.len().saturating_sub(usize::from(area.height));
    if skip > 0 {
        // The last row says how many did not fit.
        lines.truncate(usize::from(area.height).saturating_sub(1));
        lines.push(Line::from(format!("\u{2502}\u{2026}{} more", skip + 1)));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// `[2:#rust] act: 1:server(3) 3:bob(1)!` at the left, `alice@host:port │
/// connected, lag 12 ms` at the right: the windows first, and on a narrow
/// terminal the server, then the user, are left out.
fn draw_status(
    frame: &mut Frame<'_>,
    windows: &Windows,
    status: &Status,
    area: Rect,
    theme: Theme,
) {
    let bar = if theme.color {
        if theme.light {
            Style::new().bg(Color::Gray).fg(Color::Black)
        } else {
            Style::new().bg(Color::Blue).fg(Color::White)
        }
    } else {
        Style::new().add_modifier(Modifier::REVERSED)
    };
    let active = windows.active_index();
    let window = windows.active();
    let mut spans = vec![
        Span::raw(" "),
        Span::styled(
            format!("[{}:{}]", active + 1, sanitize(window.name())),
            Style::new().add_modifier(Modifier::BOLD),
        ),
    ];
    if window.scroll() > 0 {
        spans.push(Span::raw(format!(" (scrolled back {})", window.scroll())));
    }
    if window.fetching() {
        spans.push(Span::raw(" (loading history)"));
    }
    if status.queued > 0 {
        spans.push(Span::raw(format!(" ({} queued)", status.queued)));
    }
    let marked: Vec<(usize, &udpchat_core::ui::Window)> = windows
        .windows()
        .iter()
        .enumerate()
        .filter(|(i, w)| *i != active && w.activity() != Activity::None)
        .collect();
    if !marked.is_empty() {
        spans.push(Span::raw(" act:"));
    }
    for (i, w) in marked {
        let mut style = match w.activity() {
            Activity::Mention => Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            Activity::Message => Style::new().add_modifier(Modifier::BOLD),
            _ => Style::new(),
        };
        if theme.color && w.activity() == Activity::Mention {
            style = style.fg(if theme.light {
                Color::Red
            } else {
                Color::LightYellow
            });
        }
        let unread = if w.unread() > 0 {
            format!("({})", w.unread())
        } else {
            String::new()
        };
        let mention = if w.activity() == Activity::Mention {
            "!"
        } else {
            ""
        };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            format!("{}:{}{unread}{mention}", i + 1, sanitize(w.name())),
            style,
        ));
    }
    let link = match &status.link {
        Link::Connecting => "connecting".to_string(),
        Link::Connected => "connected".to_string(),
        Link::Resumed => "resumed".to_string(),
        Link::Reconnecting(secs) => format!("reconnecting in {secs} s"),
        Link::Closed => "closed".to_string(),
    };
    let lag = match (&status.link, status.lag_ms) {
        (Link::Connected | Link::Resumed, Some(ms)) => format!(", lag {ms} ms"),
        _ => String::new(),
    };
    let user = sanitize(&status.user);
    let left: usize = spans.iter().map(|s| s.content.width()).sum();
    let room = usize::from(area.width).saturating_sub(left + 1);
    let right = [
        format!("{user}@{} \u{2502} {link}{lag} ", status.server),
        format!("{user} \u{2502} {link}{lag} "),
        format!("{link}{lag} "),
        format!("{link} "),
    ]
    .into_iter()
    .find(|r| r.width() + 2 <= room)
    .unwrap_or_default();
    if !right.is_empty() {
        let pad = room - right.width();
        spans.push(Span::raw(format!("{:pad$}\u{2502} {right}", "")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

/// The prompt and the part of the typed line around the cursor.
fn draw_input(frame: &mut Frame<'_>, line: &EditLine, prompt: &str, area: Rect) {
    let width = usize::from(area.width);
    // A prompt never takes more than half the row.
    let prompt: String = {
        let mut p = String::new();
        for c in prompt.chars() {
            if (p.as_str().width() + unicode_width::UnicodeWidthChar::width(c).unwrap_or(0))
                > width / 2
            {
                break;
            }
            p.push(c);
        }
        p
    };
    let prompt_width = prompt.as_str().width();
    let (range, column) = line.view(width.saturating_sub(prompt_width).max(1));
    let shown = &line.text()[range];
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(prompt, Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(shown.to_string()),
        ])),
        area,
    );
    let x = area.x + u16::try_from(prompt_width + column).unwrap_or(u16::MAX);
    frame.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
}

/// One row of styled text (SGR sequences of `render_styled`) as a line
/// of spans.
pub fn styled_line(row: &str, theme: Theme) -> Line<'static> {
    let mut spans = Vec::new();
    let mut style = Style::new();
    let mut rest = row;
    while !rest.is_empty() {
        match rest.find('\x1b') {
            Some(0) => match rest.find('m') {
                Some(end) => {
                    style = apply_sgr(style, rest.get(2..end).unwrap_or_default(), theme);
                    rest = &rest[end + 1..];
                }
                // Not a sequence render_styled makes: dropped.
                None => rest = "",
            },
            Some(i) => {
                spans.push(Span::styled(rest[..i].to_string(), style));
                rest = &rest[i..];
            }
            None => {
                spans.push(Span::styled(rest.to_string(), style));
                rest = "";
            }
        }
    }
    Line::from(spans)
}

/// Applies SGR parameters (`1;35`) to a style.
fn apply_sgr(mut style: Style, params: &str, theme: Theme) -> Style {
    for p in params.split(';') {
        style = match p.parse::<u8>().unwrap_or(0) {
            0 => Style::new(),
            1 => style.add_modifier(Modifier::BOLD),
            2 => style.add_modifier(Modifier::DIM),
            n @ (30..=37 | 90..=97) if theme.color => style.fg(ansi_color(n, theme)),
            _ => style,
        };
    }
    style
}

/// An SGR foreground colour; on a light background bright colours are
/// their darker selves (bright yellow cannot be read on white).
fn ansi_color(n: u8, theme: Theme) -> Color {
    let n = if theme.light && n >= 90 { n - 60 } else { n };
    match n {
        30 => Color::Black,
        31 => Color::Red,
        32 => Color::Green,
        33 => Color::Yellow,
        34 => Color::Blue,
        35 => Color::Magenta,
        36 => Color::Cyan,
        37 => Color::Gray,
        90 => Color::DarkGray,
        91 => Color::LightRed,
        92 => Color::LightGreen,
        93 => Color::LightYellow,
        94 => Color::LightBlue,
        95 => Color::LightMagenta,
        96 => Color::LightCyan,
        _ => Color::White,
    }
}

/// A nick's colour, as in the chat lines.
fn nick_color(name: &str, theme: Theme) -> Color {
    ansi_color(
        udpchat_core::ui::user_color(name).parse().unwrap_or(37),
        theme,
    )
}

#[cfg(test)]
mod tests;

//! Windows of a full-screen client: [`Windows`] and what it holds.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::render::ClockTime;
use super::*;

mod typed;
mod window;

pub use window::{Activity, Entry, HistoryFetch, Marker, Window, WindowKind};

/// How many older messages one fetch asks for when scrolled to the start.
pub const HISTORY_PAGE: u32 = 50;

/// The most entries a window keeps; older ones are dropped (and can be
/// fetched again from a room's history).
pub const MAX_ENTRIES: usize = 5000;

/// The commands of the full-screen client itself, beside the console's
/// ([`COMMANDS`]): name, usage, what it does.
pub const WINDOW_COMMANDS: [(&str, &str, &str); 4] = [
    (
        "window",
        "/window [N]",
        "go to window N, or list the windows",
    ),
    (
        "query",
        "/query USER [TEXT]",
        "open a conversation with USER (and send TEXT)",
    ),
    (
        "close",
        "/close",
        "close this conversation, or a room you left",
    ),
    ("members", "/members", "show or hide the member list (F2)"),
];

/// Every window of a full-screen client, which one is active, and who is
/// away: one window for the server (its system messages and the public
/// messages to everyone online), one per room and one per direct
/// conversation, each with its lines, unread count, scroll position, and
/// for a room its members and how far back its history is loaded.
///
/// `Windows` decides everything that is not drawing: which window an
/// event goes to ([`Windows::push`]), what a line typed in a window means
/// for the [`Console`] ([`Windows::typed`]: plain lines in `#rust` go to
/// `#rust`, in a conversation with bob to bob), unread counts and mention
/// marks, scrolling, when to fetch older history and from which offset
/// ([`Windows::scroll_up`], [`Windows::top_shown`]), markers for loaded
/// history and for gaps that cannot be filled, and Tab completion. A
/// driver draws [`Windows::windows`] and the [`Window::entries`] of the
/// [active](Windows::active) one.
#[derive(Clone, Debug)]
pub struct Windows {
    user: String,
    windows: Vec<Window>,
    active: usize,
    /// Users known to be away, lowercased.
    away: BTreeSet<String>,
    /// Rooms the user asked to join here: their windows become active
    /// when the join succeeds.
    joining: BTreeSet<String>,
    /// `/go` lines sent by [`Windows::typed`] whose answer is not shown.
    quiet_go: u32,
    /// Whether the member list is shown.
    show_members: bool,
    /// Rooms whose members were asked for (see
    /// [`Windows::members_wanted`]), lowercased.
    members_asked: BTreeSet<String>,
}

impl Windows {
    /// The windows of `user`'s session: the server window alone.
    pub fn new(user: &str) -> Windows {
        Windows {
            user: user.to_string(),
            windows: vec![Window::new(WindowKind::Server)],
            active: 0,
            away: BTreeSet::new(),
            joining: BTreeSet::new(),
            quiet_go: 0,
            show_members: true,
            members_asked: BTreeSet::new(),
        }
    }

    /// Every window, in the order of their numbers (the first is 1).
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// The index of the active window.
    pub fn active_index(&self) -> usize {
        self.active
    }

    /// The active window.
    pub fn active(&self) -> &Window {
        &self.windows[self.active]
    }

    /// Whether the member list is shown (in a room).
    pub fn show_members(&self) -> bool {
        self.show_members
    }

    /// Shows or hides the member list.
    pub fn toggle_members(&mut self) {
        self.show_members = !self.show_members;
    }

    /// Whether `user` is known to be away.
    pub fn is_away(&self, user: &str) -> bool {
        self.away.contains(&user.to_ascii_lowercase())
    }

    /// Makes window `index` (from 0) active, clearing its marks; false if
    /// there is none.
    pub fn select(&mut self, index: usize) -> bool {
        if index >= self.windows.len() {
            return false;
        }
        self.active = index;
        let w = &mut self.windows[index];
        w.unread = 0;
        w.activity = Activity::None;
        true
    }

    /// The next window (after the last: the first).
    pub fn next(&mut self) {
        self.select((self.active + 1) % self.windows.len());
    }

    /// The previous window (before the first: the last).
    pub fn prev(&mut self) {
        let n = self.windows.len();
        self.select((self.active + n - 1) % n);
    }

    /// The index of the window of `kind`, made if there is none.
    fn open(&mut self, kind: WindowKind) -> usize {
        let found = self.windows.iter().position(|w| match (&w.kind, &kind) {
            (WindowKind::Room(a), WindowKind::Room(b))
            | (WindowKind::Query(a), WindowKind::Query(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        });
        match found {
            Some(i) => i,
            None => {
                self.windows.push(Window::new(kind));
                self.windows.len() - 1
            }
        }
    }

    /// Opens the conversation with `user` and makes it active.
    pub fn query(&mut self, user: &str) {
        let i = self.open(WindowKind::Query(user.to_string()));
        self.select(i);
    }

    /// Makes sure each room the user is in (as the console knows them:
    /// [`Console::rooms`]) has a window, and that rooms the user left are
    /// marked so.
    pub fn sync_rooms<'a>(&mut self, rooms: impl IntoIterator<Item = &'a str>) {
        let rooms: BTreeSet<&str> = rooms.into_iter().collect();
        for room in &rooms {
            let i = self.open(WindowKind::Room(room.to_string()));
            self.windows[i].joined = true;
        }
        for w in &mut self.windows {
            if let WindowKind::Room(r) = &w.kind {
                w.joined = rooms.contains(r.as_str());
            }
        }
    }

    /// The rooms the user is in whose members are not known (rooms kept
    /// from an earlier session come with the login, without members), each
    /// once: the driver asks the server ([`Console::request_members`]) when
    /// the session is logged in.
    pub fn members_wanted(&mut self) -> Vec<String> {
        let mut wanted = Vec::new();
        for w in &self.windows {
            if let WindowKind::Room(room) = &w.kind
                && w.joined
                && w.members.is_empty()
                && self.members_asked.insert(room.to_ascii_lowercase())
            {
                wanted.push(room.clone());
            }
        }
        wanted
    }

    /// An event from the console, shown in the window it belongs to (and
    /// a disconnection or a message that was not sent also in the active
    /// window); `time` is the wall-clock time of arrival.
    pub fn push(&mut self, event: ChatEvent, time: Option<ClockTime>) {
        if let ChatEvent::Info { text } = &event
            && self.quiet_go > 0
            && text == "plain lines go to everyone online"
        {
            self.quiet_go -= 1;
            return;
        }
        self.learn(&event);
        let (target, activity) = self.route(&event);
        let i = match target {
            Some(kind) => self.open(kind),
            None => self.active,
        };
        // A page of older history being fetched is collected, and shown
        // above the rest once complete.
        if let ChatEvent::RoomMessage {
            offset,
            history: true,
            ..
        } = &event
            && let Some((before, batch)) = &mut self.windows[i].loaded.fetching
            && *offset < *before
        {
            batch.push((*offset, Entry::Event { event, time }));
            return;
        }
        if let ChatEvent::HistoryEnd { more, .. } = &event
            && self.windows[i].loaded.fetching.is_some()
        {
            self.windows[i].fetched(*more);
            return;
        }
        if let ChatEvent::RoomMessage { offset, .. } = &event {
            let loaded = &mut self.windows[i].loaded;
            loaded.oldest = Some(loaded.oldest.map_or(*offset, |o| o.min(*offset)));
        }
        if let ChatEvent::RoomJoined { room, backlog, .. } = &event {
            let w = &mut self.windows[i];
            w.joined = true;
            if *backlog == 0 && w.loaded.oldest.is_none() {
                w.loaded.complete = true;
            }
            if self.joining.remove(&room.to_ascii_lowercase()) {
                self.select(i);
            }
        }
        let also_active = matches!(
            event,
            ChatEvent::Disconnect { .. } | ChatEvent::NotSent { .. }
        ) && i != self.active;
        if also_active {
            self.windows[self.active].add(Entry::Event {
                event: event.clone(),
                time,
            });
        }
        self.windows[i].add(Entry::Event { event, time });
        if i != self.active {
            self.windows[i].mark(activity);
        }
    }

    /// What the event tells about members and away users.
    fn learn(&mut self, event: &ChatEvent) {
        fn room_window<'w>(ws: &'w mut Windows, room: &str) -> &'w mut Window {
            let i = ws.open(WindowKind::Room(room.to_string()));
            &mut ws.windows[i]
        }
        match event {
            ChatEvent::RoomJoined { room, members, .. } => {
                let w = room_window(self, room);
                w.members = members
                    .iter()
                    .map(|m| (m.to_ascii_lowercase(), m.clone()))
                    .collect();
            }
            ChatEvent::Names { room, users, .. } => {
                let w = room_window(self, room);
                w.members = users
                    .iter()
                    .map(|m| (m.to_ascii_lowercase(), m.clone()))
                    .collect();
            }
            ChatEvent::MemberJoined { room, user } => {
                room_window(self, room)
                    .members
                    .insert(user.to_ascii_lowercase(), user.clone());
            }
            ChatEvent::MemberLeft { room, user, .. } => {
                room_window(self, room)
                    .members
                    .remove(&user.to_ascii_lowercase());
            }
            ChatEvent::Parted { room } => {
                let w = room_window(self, room);
                w.joined = false;
                w.members.clear();
                w.loaded.fetching = None;
            }
            ChatEvent::Online { users, away, .. } => {
                for u in users {
                    self.away.remove(&u.to_ascii_lowercase());
                }
                for u in away {
                    self.away.insert(u.to_ascii_lowercase());
                }
            }
            ChatEvent::Whois { user, away, .. } => {
                if away.is_some() {
                    self.away.insert(user.to_ascii_lowercase());
                } else {
                    self.away.remove(&user.to_ascii_lowercase());
                }
            }
            ChatEvent::AwayReply { user, .. } => {
                self.away.insert(user.to_ascii_lowercase());
            }
            ChatEvent::Leave { user, .. } => {
                self.away.remove(&user.to_ascii_lowercase());
            }
            ChatEvent::Away { text } => {
                let me = self.user.to_ascii_lowercase();
                if text.is_some() {
                    self.away.insert(me);
                } else {
                    self.away.remove(&me);
                }
            }
            _ => {}
        }
    }

    /// The window an event goes to (`None`: the active one, as the answer
    /// to what was typed there) and how it marks that window.
    fn route(&self, event: &ChatEvent) -> (Option<WindowKind>, Activity) {
        let room = |r: &str| Some(WindowKind::Room(r.to_string()));
        let query = |u: &str| Some(WindowKind::Query(u.to_string()));
        let server = Some(WindowKind::Server);
        match event {
            ChatEvent::RoomMessage {
                room: r,
                mention,
                history,
                ..
            } => {
                let activity = match (mention, history) {
                    (_, true) => Activity::None,
                    (true, false) => Activity::Mention,
                    (false, false) => Activity::Message,
                };
                (room(r), activity)
            }
            ChatEvent::RoomJoined { room: r, .. }
            | ChatEvent::Parted { room: r }
            | ChatEvent::MemberJoined { room: r, .. }
            | ChatEvent::MemberLeft { room: r, .. }
            | ChatEvent::Topic { room: r, .. }
            | ChatEvent::Names { room: r, .. }
            | ChatEvent::HistoryEnd { room: r, .. }
            | ChatEvent::Said { room: r, .. } => (room(r), Activity::Event),
            ChatEvent::Resumed {
                room: r, recovered, ..
            } => (
                room(r),
                if *recovered {
                    Activity::Event
                } else {
                    Activity::Mention
                },
            ),
            ChatEvent::Direct { from, .. } | ChatEvent::OfflineDirect { from, .. } => {
                (query(from), Activity::Mention)
            }
            ChatEvent::Sent { to: Some(to), .. } => (query(to), Activity::None),
            ChatEvent::Sent { to: None, .. } => (server, Activity::None),
            ChatEvent::NotSent { to: Some(to), .. } if to.starts_with('#') => {
                (room(to), Activity::Mention)
            }
            ChatEvent::NotSent { to: Some(to), .. } => (query(to), Activity::Mention),
            ChatEvent::NotSent { to: None, .. } => (server, Activity::Mention),
            ChatEvent::AwayReply { user, .. }
                if self.windows.iter().any(
                    |w| matches!(&w.kind, WindowKind::Query(q) if q.eq_ignore_ascii_case(user)),
                ) =>
            {
                (query(user), Activity::Event)
            }
            ChatEvent::Public { mention, .. } => (
                server,
                if *mention {
                    Activity::Mention
                } else {
                    Activity::Message
                },
            ),
            ChatEvent::Join { .. } | ChatEvent::Leave { .. } => (server, Activity::Event),
            ChatEvent::Connecting { .. }
            | ChatEvent::PasswordRequired { .. }
            | ChatEvent::LoggedIn { .. }
            | ChatEvent::Disconnect { .. }
            | ChatEvent::Bye => (server, Activity::Event),
            ChatEvent::Confirmation {
                kind: Delivery::Direct | Delivery::Stored,
                to: Some(to),
                ..
            } => (query(to), Activity::None),
            _ => (None, Activity::Event),
        }
    }

    /// Scrolls the active window `n` entries back. When the start of what
    /// is loaded comes into view, returns the fetch of older history for
    /// a room (see [`Windows::top_shown`]).
    #[must_use]
    pub fn scroll_up(&mut self, n: usize) -> Option<HistoryFetch> {
        let w = &mut self.windows[self.active];
        let max = w.entries.len().saturating_sub(1);
        w.scroll = (w.scroll + n.max(1)).min(max);
        if w.scroll == max { w.fetch() } else { None }
    }

    /// Scrolls the active window `n` entries forward (to 0: following the
    /// newest).
    pub fn scroll_down(&mut self, n: usize) {
        let w = &mut self.windows[self.active];
        w.scroll = w.scroll.saturating_sub(n.max(1));
    }

    /// Back to the newest entry.
    pub fn scroll_to_end(&mut self) {
        self.windows[self.active].scroll = 0;
    }

    /// The driver drew the active window with its first entry in view
    /// while scrolled back: the fetch of older history, if one is due.
    #[must_use]
    pub fn top_shown(&mut self) -> Option<HistoryFetch> {
        let w = &mut self.windows[self.active];
        if w.scroll == 0 { None } else { w.fetch() }
    }

    /// A fetch could not be sent (the console refused it as too fast):
    /// it is due again at the next scroll.
    pub fn fetch_failed(&mut self, room: &str) {
        for w in &mut self.windows {
            if matches!(&w.kind, WindowKind::Room(r) if r == room) {
                w.loaded.fetching = None;
            }
        }
    }

    /// The prompt of the input line: the active window's name.
    pub fn prompt(&self) -> String {
        match &self.active().kind {
            WindowKind::Server => format!("{}> ", sanitize(&self.user)),
            WindowKind::Room(r) => format!("{}> ", sanitize(r)),
            WindowKind::Query(u) => format!("@{}> ", sanitize(u)),
        }
    }

    /// Tab completion in the active window: the console's ([`complete`]),
    /// the window commands after `/`, and the members of a room beside
    /// the users known to be online (`names`).
    pub fn complete<'a>(
        &self,
        line: &str,
        cursor: usize,
        names: impl IntoIterator<Item = &'a str>,
    ) -> (usize, Vec<String>) {
        let mut all: Vec<&str> = self.active().members().collect();
        for name in names {
            all.push(name);
        }
        if let WindowKind::Query(u) = &self.active().kind {
            all.push(u);
        }
        let mut cursor = cursor.min(line.len());
        while !line.is_char_boundary(cursor) {
            cursor -= 1;
        }
        let (start, mut out) = complete(line, cursor, all);
        let word = &line[start.min(cursor)..cursor];
        if start == 0 && word.starts_with('/') {
            for (name, _, _) in WINDOW_COMMANDS {
                if name.len() + 1 >= word.len()
                    && name.as_bytes()[..word.len() - 1].eq_ignore_ascii_case(&word.as_bytes()[1..])
                {
                    out.push(format!("/{name}"));
                }
            }
        }
        out.sort_by_key(|n| n.to_ascii_lowercase());
        out.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        (start, out)
    }
}

#[cfg(test)]
mod tests;

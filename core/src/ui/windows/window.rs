//! One window: its lines, marks, scroll position, members, and how far
//! back a room's history is loaded.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::super::render::ClockTime;
use super::super::*;
use super::HISTORY_PAGE;

/// What a window shows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WindowKind {
    /// System messages and public messages to everyone online.
    Server,
    /// A room (`#rust`).
    Room(String),
    /// Direct messages with one user.
    Query(String),
}

/// How much happened in a window since it was last looked at; the
/// greatest wins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Activity {
    /// Nothing.
    #[default]
    None,
    /// Joins, leaves, topics.
    Event,
    /// Messages.
    Message,
    /// A message naming the user, a direct message, or a message that was
    /// not sent.
    Mention,
}

/// A line of a window that is not an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Above it, `count` older messages fetched from the room's history.
    HistoryLoaded {
        /// How many.
        count: u32,
    },
    /// Nothing older exists.
    StartOfHistory,
    /// Messages that could not be loaded: `missing` of them, when known.
    Gap {
        /// How many are missing, when known.
        missing: Option<u64>,
    },
}

impl Marker {
    /// The text of the marker.
    pub fn text(&self) -> String {
        match self {
            Marker::HistoryLoaded { count } => format!(
                "\u{2500}\u{2500} history: {count} older message{} above \u{2500}\u{2500}",
                if *count == 1 { "" } else { "s" }
            ),
            Marker::StartOfHistory => {
                "\u{2500}\u{2500} start of the room's history \u{2500}\u{2500}".to_string()
            }
            Marker::Gap { missing: Some(n) } => format!(
                "\u{2500}\u{2500} gap: {n} message{} could not be loaded \u{2500}\u{2500}",
                if *n == 1 { "" } else { "s" }
            ),
            Marker::Gap { missing: None } => {
                "\u{2500}\u{2500} gap: older messages could not be loaded \u{2500}\u{2500}"
                    .to_string()
            }
        }
    }
}

/// One line of a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An event, with the wall-clock time it arrived when the driver has
    /// one.
    Event {
        /// What happened.
        event: ChatEvent,
        /// When it arrived.
        time: Option<ClockTime>,
    },
    /// A marker in a room's history.
    Marker(Marker),
}

/// A request for older history that a driver passes to
/// [`Console::fetch_history`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryFetch {
    /// The room.
    pub room: String,
    /// The messages below this offset (the oldest one loaded).
    pub before: u64,
    /// How many.
    pub limit: u32,
}

/// How far back a room's history is loaded.
#[derive(Clone, Debug, Default)]
pub(super) struct Loaded {
    /// The smallest offset shown.
    pub(super) oldest: Option<u64>,
    /// A fetch under way: the offset it asked below, and what came so far.
    pub(super) fetching: Option<(u64, Vec<(u64, Entry)>)>,
    /// Nothing older can be fetched.
    pub(super) complete: bool,
}

/// One window.
#[derive(Clone, Debug)]
pub struct Window {
    pub(super) kind: WindowKind,
    pub(super) entries: VecDeque<Entry>,
    pub(super) unread: u32,
    pub(super) activity: Activity,
    /// Entries hidden below the view: 0 follows the newest.
    pub(super) scroll: usize,
    /// Room members by lowercased name.
    pub(super) members: BTreeMap<String, String>,
    /// Whether the user is in this room.
    pub(super) joined: bool,
    pub(super) loaded: Loaded,
}

impl Window {
    pub(super) fn new(kind: WindowKind) -> Window {
        Window {
            kind,
            entries: VecDeque::new(),
            unread: 0,
            activity: Activity::None,
            scroll: 0,
            members: BTreeMap::new(),
            joined: false,
            loaded: Loaded::default(),
        }
    }

    /// What it shows.
    pub fn kind(&self) -> &WindowKind {
        &self.kind
    }

    /// Its name in the status bar: `server`, `#rust`, `bob`.
    pub fn name(&self) -> &str {
        match &self.kind {
            WindowKind::Server => "server",
            WindowKind::Room(r) | WindowKind::Query(r) => r,
        }
    }

    /// Its lines, oldest first.
    pub fn entries(&self) -> &VecDeque<Entry> {
        &self.entries
    }

    /// Messages that arrived while it was not the active window.
    pub fn unread(&self) -> u32 {
        self.unread
    }

    /// The most that happened while it was not the active window.
    pub fn activity(&self) -> Activity {
        self.activity
    }

    /// How many entries are hidden below the view (0: the view follows the
    /// newest).
    pub fn scroll(&self) -> usize {
        self.scroll
    }

    /// A room's members, sorted (ASCII case ignored).
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.values().map(String::as_str)
    }

    /// Whether the user is in this room (false for other windows).
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// Whether an older page of history is being fetched.
    pub fn fetching(&self) -> bool {
        self.loaded.fetching.is_some()
    }

    pub(super) fn add(&mut self, entry: Entry) {
        self.entries.push_back(entry);
        if self.scroll > 0 {
            // Scrolled back: the view stays where it is.
            self.scroll += 1;
        }
        self.trim();
    }

    pub(super) fn trim(&mut self) {
        let mut dropped = false;
        while self.entries.len() > MAX_ENTRIES {
            self.entries.pop_front();
            dropped = true;
        }
        if dropped {
            self.loaded.complete = false;
            self.loaded.oldest = self.entries.iter().find_map(|e| match e {
                Entry::Event {
                    event: ChatEvent::RoomMessage { offset, .. },
                    ..
                } => Some(*offset),
                _ => None,
            });
            self.scroll = self.scroll.min(self.entries.len().saturating_sub(1));
        }
    }

    pub(super) fn mark(&mut self, activity: Activity) {
        if activity >= Activity::Message {
            self.unread = self.unread.saturating_add(1);
        }
        self.activity = self.activity.max(activity);
    }

    /// The fetch of older history that scrolling to the start asks for,
    /// if one is due: a room with a known oldest offset above 0, nothing
    /// under way and not known to be complete.
    pub(super) fn fetch(&mut self) -> Option<HistoryFetch> {
        let WindowKind::Room(room) = &self.kind else {
            return None;
        };
        if !self.joined || self.loaded.fetching.is_some() || self.loaded.complete {
            return None;
        }
        match self.loaded.oldest {
            Some(0) => {
                self.loaded.complete = true;
                self.entries
                    .push_front(Entry::Marker(Marker::StartOfHistory));
                None
            }
            Some(before) => {
                self.loaded.fetching = Some((before, Vec::new()));
                Some(HistoryFetch {
                    room: room.clone(),
                    before,
                    limit: HISTORY_PAGE,
                })
            }
            None => None,
        }
    }

    /// The end of a fetched page: its messages go above the others, with
    /// a marker, and a gap marker where offsets are missing.
    pub(super) fn fetched(&mut self, more: bool) {
        let Some((before, mut batch)) = self.loaded.fetching.take() else {
            return;
        };
        batch.sort_by_key(|(offset, _)| *offset);
        batch.dedup_by_key(|(offset, _)| *offset);
        let mut top: Vec<Entry> = Vec::new();
        let newest = batch.last().map(|(o, _)| *o);
        let oldest = batch.first().map(|(o, _)| *o);
        if !more || oldest == Some(0) {
            self.loaded.complete = true;
            top.push(Entry::Marker(Marker::StartOfHistory));
        }
        let count = batch.len() as u32;
        top.extend(batch.into_iter().map(|(_, e)| e));
        match newest {
            Some(newest) => {
                if newest + 1 < before {
                    top.push(Entry::Marker(Marker::Gap {
                        missing: Some(before - newest - 1),
                    }));
                }
                top.push(Entry::Marker(Marker::HistoryLoaded { count }));
                self.loaded.oldest = oldest;
            }
            None if more => {
                // The server says older messages exist but sent none: do
                // not ask again and again.
                self.loaded.complete = true;
                top.push(Entry::Marker(Marker::Gap { missing: None }));
            }
            None => {}
        }
        for entry in top.into_iter().rev() {
            self.entries.push_front(entry);
        }
        self.trim();
    }
}

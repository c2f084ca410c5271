//! The input line of a full-screen client: [`EditLine`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use unicode_width::UnicodeWidthChar;

/// The most lines the history keeps.
pub const MAX_HISTORY: usize = 1000;

/// One editing step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Types a character at the cursor.
    Insert(char),
    /// Left (Ctrl-B).
    Left,
    /// Right (Ctrl-F).
    Right,
    /// To the previous word's start (Alt-B, Ctrl-Left).
    WordLeft,
    /// Past the next word's end (Alt-F, Ctrl-Right).
    WordRight,
    /// Home (Ctrl-A).
    Home,
    /// End (Ctrl-E).
    End,
    /// Deletes the character before the cursor.
    Backspace,
    /// Deletes the character at the cursor (Delete, Ctrl-D on a line with
    /// text).
    Delete,
    /// Deletes from the start of the line to the cursor (Ctrl-U).
    KillToStart,
    /// Deletes from the cursor to the end of the line (Ctrl-K).
    KillToEnd,
    /// Deletes the word before the cursor (Ctrl-W).
    KillWord,
    /// The previous line of the history (Up, Ctrl-P in a line editor).
    HistoryUp,
    /// The next line of the history, and past the newest the line that was
    /// being typed (Down).
    HistoryDown,
}

/// Tab completion under way: pressing Tab again takes the next candidate.
#[derive(Clone, Debug)]
struct Cycle {
    start: usize,
    candidates: Vec<String>,
    /// The candidate in the line now; `None`: the common prefix.
    index: Option<usize>,
}

/// The input line of a full-screen client: the text being typed and its
/// cursor, the editing keys of a line editor (Emacs style, as rustyline's),
/// the history of typed lines, Tab completion that cycles through the
/// candidates, and pasted text cut into lines.
#[derive(Clone, Debug, Default)]
pub struct EditLine {
    text: String,
    /// A byte offset, always at a character boundary.
    cursor: usize,
    history: Vec<String>,
    /// The history line shown, while Up/Down walk it.
    shown: Option<usize>,
    /// The line being typed before Up, back after Down past the newest.
    draft: String,
    cycle: Option<Cycle>,
}

impl EditLine {
    /// An empty line with an empty history.
    pub fn new() -> EditLine {
        EditLine::default()
    }

    /// The text typed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor, a byte offset into [`EditLine::text`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The lines typed before, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Adds a line to the history (as [`EditLine::submit`] does): not an
    /// empty line, nor one equal to the newest.
    pub fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || self.history.last().is_some_and(|l| l == line) {
            return;
        }
        self.history.push(line.to_string());
        if self.history.len() > MAX_HISTORY {
            self.history.remove(0);
        }
    }

    /// One editing step.
    pub fn edit(&mut self, edit: Edit) {
        self.cycle = None;
        let before = &self.text[..self.cursor];
        let after = &self.text[self.cursor..];
        match edit {
            Edit::Insert(c) => {
                // Control characters never enter the line (a paste or a
                // key the terminal sent raw).
                if !c.is_control() {
                    self.text.insert(self.cursor, c);
                    self.cursor += c.len_utf8();
                }
            }
            Edit::Left => self.cursor -= before.chars().next_back().map_or(0, char::len_utf8),
            Edit::Right => self.cursor += after.chars().next().map_or(0, char::len_utf8),
            Edit::WordLeft => self.cursor = word_start(before),
            Edit::WordRight => {
                let skip = after.len() - after.trim_start().len();
                let word = after[skip..]
                    .find(char::is_whitespace)
                    .unwrap_or(after.len() - skip);
                self.cursor += skip + word;
            }
            Edit::Home => self.cursor = 0,
            Edit::End => self.cursor = self.text.len(),
            Edit::Backspace => {
                if let Some(c) = before.chars().next_back() {
                    self.cursor -= c.len_utf8();
                    self.text.remove(self.cursor);
                }
            }
            Edit::Delete => {
                if !after.is_empty() {
                    self.text.remove(self.cursor);
                }
            }
            Edit::KillToStart => {
                self.text.replace_range(..self.cursor, "");
                self.cursor = 0;
            }
            Edit::KillToEnd => self.text.truncate(self.cursor),
            Edit::KillWord => {
                let start = word_start(before);
                self.text.replace_range(start..self.cursor, "");
                self.cursor = start;
            }
            Edit::HistoryUp => {
                let next = match self.shown {
                    None if self.history.is_empty() => return,
                    None => {
                        self.draft = core::mem::take(&mut self.text);
                        self.history.len() - 1
                    }
                    Some(i) => i.saturating_sub(1),
                };
                self.shown = Some(next);
                self.set_text(self.history[next].clone());
            }
            Edit::HistoryDown => match self.shown {
                None => {}
                Some(i) if i + 1 < self.history.len() => {
                    self.shown = Some(i + 1);
                    self.set_text(self.history[i + 1].clone());
                }
                Some(_) => {
                    self.shown = None;
                    let draft = core::mem::take(&mut self.draft);
                    self.set_text(draft);
                }
            },
        }
    }

    fn set_text(&mut self, text: String) {
        self.text = text;
        self.cursor = self.text.len();
    }

    /// Enter: the line typed, which the history remembers; the line is
    /// empty again.
    pub fn submit(&mut self) -> String {
        self.cycle = None;
        self.shown = None;
        self.draft.clear();
        self.cursor = 0;
        let line = core::mem::take(&mut self.text);
        self.remember(&line);
        line
    }

    /// Ctrl-C: the line typed is thrown away (not remembered).
    pub fn clear(&mut self) {
        self.cycle = None;
        self.shown = None;
        self.text.clear();
        self.cursor = 0;
    }

    /// Pasted text: each line ending in the paste is a line typed (the
    /// first after what was typed already), returned in order and
    /// remembered; what follows the last line ending stays in the line.
    /// `\r\n` and `\r` end lines too; other control characters are
    /// dropped.
    pub fn paste(&mut self, text: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' | '\n' => {
                    if c == '\r' && chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    lines.push(self.submit());
                }
                '\t' => self.edit(Edit::Insert(' ')),
                c => self.edit(Edit::Insert(c)),
            }
        }
        lines
    }

    /// Tab. `complete` gives, for the line and the cursor, where the word
    /// being completed starts and its candidates (as
    /// [`super::Windows::complete`] does). One candidate replaces the word
    /// (followed by a space); several first extend it to their common
    /// prefix, and each further Tab puts the next candidate in its place.
    /// Returns the candidates when there are several, for the driver to
    /// show.
    pub fn tab(
        &mut self,
        complete: impl FnOnce(&str, usize) -> (usize, Vec<String>),
    ) -> Vec<String> {
        if let Some(cycle) = &mut self.cycle {
            let next = cycle.index.map_or(0, |i| (i + 1) % cycle.candidates.len());
            cycle.index = Some(next);
            let (start, word) = (cycle.start, cycle.candidates[next].clone());
            let shown = cycle.candidates.clone();
            self.text.replace_range(start..self.cursor, &word);
            self.cursor = start + word.len();
            return shown;
        }
        let (start, candidates) = complete(&self.text, self.cursor);
        let start = start.min(self.cursor);
        match candidates.len() {
            0 => Vec::new(),
            1 => {
                let word = alloc::format!("{} ", candidates[0]);
                self.text.replace_range(start..self.cursor, &word);
                self.cursor = start + word.len();
                Vec::new()
            }
            _ => {
                let prefix = common_prefix(&candidates);
                if prefix.len() > self.cursor - start {
                    self.text.replace_range(start..self.cursor, &prefix);
                    self.cursor = start + prefix.len();
                }
                self.cycle = Some(Cycle {
                    start,
                    candidates: candidates.clone(),
                    index: None,
                });
                candidates
            }
        }
    }

    /// What fits in `width` columns: the byte range of the text shown
    /// (scrolled so that the cursor is in view, with a column to spare for
    /// it at the end) and the cursor's column within it. Wide characters
    /// count two columns.
    pub fn view(&self, width: usize) -> (core::ops::Range<usize>, usize) {
        let width = width.max(1);
        let col = |s: &str| s.chars().map(|c| c.width().unwrap_or(0)).sum::<usize>();
        // Start far enough right that the cursor has a column.
        let mut start = 0;
        while col(&self.text[start..self.cursor]) >= width {
            start += self.text[start..].chars().next().map_or(1, char::len_utf8);
        }
        let mut end = start;
        let mut used = 0;
        for c in self.text[start..].chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width {
                break;
            }
            used += w;
            end += c.len_utf8();
        }
        (
            start..end.max(self.cursor),
            col(&self.text[start..self.cursor]),
        )
    }
}

/// The start of the word before the end of `before` (blanks before it
/// skipped).
fn word_start(before: &str) -> usize {
    before.trim_end().rfind(char::is_whitespace).map_or(0, |i| {
        i + before[i..].chars().next().map_or(1, char::len_utf8)
    })
}

/// The longest prefix all `words` share (whole characters).
fn common_prefix(words: &[String]) -> String {
    let Some(first) = words.first() else {
        return String::new();
    };
    let mut end = first.len();
    for w in &words[1..] {
        end = first
            .char_indices()
            .zip(w.chars())
            .find(|((_, a), b)| a != b)
            .map_or(end.min(w.len()), |((i, _), _)| i.min(end));
    }
    first[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn typed(s: &str) -> EditLine {
        let mut e = EditLine::new();
        for c in s.chars() {
            e.edit(Edit::Insert(c));
        }
        e
    }

    #[test]
    fn cursor_moves_and_edits_whole_characters() {
        let mut e = typed("héllo 世界");
        assert_eq!(e.cursor(), e.text().len());
        e.edit(Edit::Left);
        e.edit(Edit::Backspace);
        assert_eq!(e.text(), "héllo 界");
        e.edit(Edit::Home);
        e.edit(Edit::Right);
        e.edit(Edit::Right);
        e.edit(Edit::Backspace);
        assert_eq!(e.text(), "hllo 界");
        e.edit(Edit::Delete);
        assert_eq!(e.text(), "hlo 界");
        e.edit(Edit::End);
        e.edit(Edit::Right);
        e.edit(Edit::Delete);
        assert_eq!(e.text(), "hlo 界");
        e.edit(Edit::Insert('\u{7}'));
        assert_eq!(e.text(), "hlo 界", "control characters are not typed");
        e.edit(Edit::Home);
        e.edit(Edit::Left);
        e.edit(Edit::Backspace);
        assert_eq!((e.text(), e.cursor()), ("hlo 界", 0));
    }

    #[test]
    fn kill_keys() {
        let mut e = typed("one two  three");
        e.edit(Edit::KillWord);
        assert_eq!(e.text(), "one two  ");
        e.edit(Edit::KillWord);
        assert_eq!(e.text(), "one ");
        e.edit(Edit::WordLeft);
        assert_eq!(e.cursor(), 0);
        e.edit(Edit::WordRight);
        assert_eq!(e.cursor(), 3);
        e.edit(Edit::KillToEnd);
        assert_eq!(e.text(), "one");
        e.edit(Edit::Left);
        e.edit(Edit::KillToStart);
        assert_eq!((e.text(), e.cursor()), ("e", 0));
    }

    #[test]
    fn history_walks_back_and_returns_to_the_draft() {
        let mut e = EditLine::new();
        e.edit(Edit::HistoryUp);
        assert_eq!(e.text(), "");
        for line in ["first", "second", "second", "", "third"] {
            for c in line.chars() {
                e.edit(Edit::Insert(c));
            }
            assert_eq!(e.submit(), line);
        }
        assert_eq!(e.history(), ["first", "second", "third"]);
        for c in "draft".chars() {
            e.edit(Edit::Insert(c));
        }
        e.edit(Edit::HistoryUp);
        assert_eq!(e.text(), "third");
        e.edit(Edit::HistoryUp);
        e.edit(Edit::HistoryUp);
        e.edit(Edit::HistoryUp);
        assert_eq!(e.text(), "first");
        e.edit(Edit::HistoryDown);
        assert_eq!(e.text(), "second");
        e.edit(Edit::HistoryDown);
        e.edit(Edit::HistoryDown);
        assert_eq!((e.text(), e.cursor()), ("draft", 5));
        e.clear();
        assert_eq!(e.text(), "");
        assert_eq!(e.history().len(), 3, "a cleared line is not remembered");
    }

    #[test]
    fn a_paste_is_cut_into_lines_sent_in_order() {
        let mut e = typed("say: ");
        let lines = e.paste("one\r\ntwo\rthree\n\nfour\tfive");
        assert_eq!(lines, vec!["say: one", "two", "three", ""]);
        assert_eq!(e.text(), "four five");
        assert_eq!(e.paste("\n"), vec!["four five"]);
        assert_eq!(e.text(), "");
    }

    #[test]
    fn tab_completes_and_cycles() {
        let names = ["alice", "albert", "bob"];
        let complete = |line: &str, cursor: usize| {
            let start = line[..cursor].rfind(' ').map_or(0, |i| i + 1);
            let word = &line[start..cursor];
            let found = names
                .iter()
                .filter(|n| n.starts_with(word))
                .map(ToString::to_string)
                .collect();
            (start, found)
        };
        let mut e = typed("hi b");
        assert!(e.tab(complete).is_empty());
        assert_eq!(e.text(), "hi bob ");
        let mut e = typed("hi a");
        assert_eq!(e.tab(complete), vec!["alice", "albert"]);
        assert_eq!(e.text(), "hi al");
        e.tab(complete);
        assert_eq!(e.text(), "hi alice");
        e.tab(complete);
        assert_eq!(e.text(), "hi albert");
        e.tab(complete);
        assert_eq!(e.text(), "hi alice");
        e.edit(Edit::Insert('!'));
        assert_eq!(e.text(), "hi alice!");
        let mut e = typed("zz");
        assert!(e.tab(complete).is_empty());
        assert_eq!(e.text(), "zz");
    }

    #[test]
    fn any_keys_keep_the_cursor_on_a_character() {
        let edits = [
            Edit::Insert('a'),
            Edit::Insert('界'),
            Edit::Insert('🎉'),
            Edit::Insert(' '),
            Edit::Left,
            Edit::Right,
            Edit::WordLeft,
            Edit::WordRight,
            Edit::Home,
            Edit::End,
            Edit::Backspace,
            Edit::Delete,
            Edit::KillToStart,
            Edit::KillToEnd,
            Edit::KillWord,
            Edit::HistoryUp,
            Edit::HistoryDown,
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut e = EditLine::new();
        for step in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match step % 97 {
                0 => {
                    e.submit();
                }
                1 => {
                    e.paste("x\ny 界\r\n");
                }
                2 => {
                    e.tab(|line, cursor| (cursor.min(line.len()), vec!["ab".into(), "ac".into()]));
                }
                _ => e.edit(edits[(state % edits.len() as u64) as usize]),
            }
            assert!(e.cursor() <= e.text().len());
            assert!(e.text().is_char_boundary(e.cursor()));
            let (range, column) = e.view((state % 12) as usize);
            assert!(range.end <= e.text().len() && range.start <= e.cursor());
            assert!(column <= 24);
        }
    }

    #[test]
    fn the_view_keeps_the_cursor_in_sight() {
        let e = typed("abcdef");
        assert_eq!(e.view(10), (0..6, 6));
        assert_eq!(e.view(4), (3..6, 3));
        let mut e = typed("世界世界");
        // Two columns each: the cursor needs a column after them.
        assert_eq!(e.view(5), (6..12, 4));
        e.edit(Edit::Home);
        assert_eq!(e.view(5), (0..6, 0));
        assert_eq!(e.view(0).1, 0);
        assert_eq!(common_prefix(&["世界a".into(), "世b".into()]), "世");
    }
}

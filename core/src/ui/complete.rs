//! Tab completion: command names after `/`, usernames elsewhere.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::command::COMMANDS;

/// Completes the word that ends at `cursor` (a byte offset into `line`,
/// clamped to its length and moved back to a character boundary): returns
/// where that word starts and the candidates for it, sorted, ASCII case
/// ignored when matching.
///
/// * The first word of a line starting with `/`: command names and
///   aliases, with their slash (`/m` → `/me`, `/msg`).
/// * The word after `/help`: command names, without the slash.
/// * A word starting with `#`, or the first word after a command that
///   takes a room (`/join`, `/part`, `/go`, `/names`, `/topic`,
///   `/history`): the names in `users` that start with `#` (the rooms the
///   user is in) and with it.
/// * Any other word: the other names in `users` (the users known to be
///   online) that start with it.
pub fn complete<'a>(
    line: &str,
    cursor: usize,
    users: impl IntoIterator<Item = &'a str>,
) -> (usize, Vec<String>) {
    let mut cursor = cursor.min(line.len());
    while !line.is_char_boundary(cursor) {
        cursor -= 1;
    }
    let before = &line[..cursor];
    let start = before.rfind(char::is_whitespace).map_or(0, |i| {
        i + before[i..].chars().next().map_or(1, char::len_utf8)
    });
    let word = &before[start..];
    let starts = |name: &str, prefix: &str| {
        name.len() >= prefix.len()
            && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    };
    let leading = before[..start].trim_start();
    let mut out: Vec<String> = if leading.is_empty() && word.starts_with('/') {
        let prefix = &word[1..];
        COMMANDS
            .iter()
            .flat_map(|c| core::iter::once(c.name).chain(c.aliases.iter().copied()))
            .filter(|n| starts(n, prefix))
            .map(|n| format!("/{n}"))
            .collect()
    } else if is_help(leading) && !word.starts_with('/') {
        COMMANDS
            .iter()
            .map(|c| c.name)
            .filter(|n| starts(n, word))
            .map(ToString::to_string)
            .collect()
    } else if word.starts_with('#') || takes_room(leading) {
        users
            .into_iter()
            .filter(|r| r.starts_with('#'))
            .filter(|r| starts(r, word) || starts(&r[1..], word))
            .map(ToString::to_string)
            .collect()
    } else {
        users
            .into_iter()
            .filter(|u| !u.starts_with('#') && starts(u, word))
            .map(ToString::to_string)
            .collect()
    };
    out.sort_by_key(|n| n.to_ascii_lowercase());
    out.dedup();
    (start, out)
}

/// A command whose first argument is a room, and nothing else, before the
/// word.
fn takes_room(leading: &str) -> bool {
    leading.trim_end().strip_prefix('/').is_some_and(|c| {
        ["join", "part", "leave", "go", "names", "topic", "history"]
            .iter()
            .any(|name| c.eq_ignore_ascii_case(name))
    })
}

/// `/help`, and nothing else, before the word.
fn is_help(leading: &str) -> bool {
    leading
        .trim_end()
        .strip_prefix('/')
        .is_some_and(|c| c.eq_ignore_ascii_case("help"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const USERS: [&str; 4] = ["alice", "Albert", "bob", "carol"];

    fn c(line: &str, cursor: usize) -> (usize, Vec<String>) {
        complete(line, cursor, USERS)
    }

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn commands_after_a_slash() {
        assert_eq!(
            c("/m", 2),
            (0, v(&["/me", "/moderated", "/more", "/msg", "/mute"]))
        );
        assert_eq!(c("/WHOI", 5), (0, v(&["/whois"])));
        assert_eq!(c("/w", 2), (0, v(&["/who", "/whois"])));
        assert_eq!(c("  /q", 4), (2, v(&["/quit"])));
        assert_eq!(c("/", 1).1.len(), {
            COMMANDS.iter().map(|c| 1 + c.aliases.len()).sum::<usize>()
        });
        assert_eq!(c("/zz", 3), (0, vec![]));
        // A slash later in the line is not a command.
        assert_eq!(c("see /m", 6), (4, vec![]));
        assert_eq!(c("/help mo", 8), (6, v(&["moderated", "more"])));
    }

    #[test]
    fn usernames_elsewhere() {
        assert_eq!(c("al", 2), (0, v(&["Albert", "alice"])));
        assert_eq!(c("/msg b", 6), (5, v(&["bob"])));
        assert_eq!(c("hi CA", 5), (3, v(&["carol"])));
        // The word ends at the cursor, not at the end of the line.
        assert_eq!(c("hi b and more", 4), (3, v(&["bob"])));
        // An empty word: every known user.
        assert_eq!(c("/msg ", 5).1.len(), 4);
        assert_eq!(c("x", 99), (0, vec![]));
        // A cursor inside a character moves back to its start.
        assert_eq!(c("é a", 1), c("", 0));
        assert_eq!(c("héllo al", 9), (7, v(&["Albert", "alice"])));
    }

    #[test]
    fn rooms_where_a_room_is_expected() {
        let names = ["alice", "#rust", "#rustc", "#go"];
        let c = |line: &str| complete(line, line.len(), names);
        assert_eq!(c("/join #ru"), (6, v(&["#rust", "#rustc"])));
        assert_eq!(c("/go "), (4, v(&["#go", "#rust", "#rustc"])));
        assert_eq!(c("/part g"), (6, v(&["#go"])));
        assert_eq!(c("/msg #g"), (5, v(&["#go"])));
        assert_eq!(c("hi a"), (3, v(&["alice"])));
        assert_eq!(c("/msg "), (5, v(&["alice"])));
        assert_eq!(c("/topic #rust a"), (13, v(&["alice"])));
    }
}

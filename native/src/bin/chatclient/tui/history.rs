//! The input history across runs, in the line editor's file (rustyline's
//! format: a `#V2` line, then one line per entry with `\` and line breaks
//! escaped), so that both modes share it. Created private to the user: the
//! history may hold direct messages. A missing or unreadable file is an
//! empty history; a line that cannot be written is not kept.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// The lines kept in `path`, oldest first.
pub fn load(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .enumerate()
        .filter(|(i, l)| !(*i == 0 && *l == "#V2"))
        .map(|(_, l)| unescape(l))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Adds `line` to `path` (not a line starting with a blank, as the line
/// editor does not either).
pub fn append(path: &Path, line: &str) {
    if line.trim().is_empty() || line.starts_with(char::is_whitespace) {
        return;
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let Ok(mut file) = options.open(path) else {
        return;
    };
    let fresh = file.metadata().map(|m| m.len() == 0).unwrap_or(false);
    let mut text = String::new();
    if fresh {
        text.push_str("#V2\n");
    }
    text.push_str(&escape(line));
    text.push('\n');
    let _ = file.write_all(text.as_bytes());
}

fn escape(line: &str) -> String {
    line.replace('\\', "\\\\").replace('\n', "\\n")
}

fn unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('\\')) => {
                chars.next();
                out.push('\\');
            }
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            (c, _) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_survive_a_round_trip_in_the_line_editors_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history");
        assert!(load(&path).is_empty());
        for line in ["/join #rust", " secret", "", "a \\ b", "/msg bob hi"] {
            append(&path, line);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "#V2\n/join #rust\na \\\\ b\n/msg bob hi\n");
        assert_eq!(load(&path), ["/join #rust", "a \\ b", "/msg bob hi"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(unescape("x\\ny\\"), "x\ny\\");
    }
}

//! What received text may show: nothing in it can drive the terminal,
//! reorder or hide text, or start a new line.

use alloc::string::String;
use alloc::vec::Vec;

/// Makes received text harmless to show: nothing in it can drive the
/// terminal, reorder or hide text, or start a new line.
///
/// * Control characters (C0, DEL, C1) become U+FFFD.
/// * Bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
///   U+2066–U+2069), line and paragraph separators (U+2028, U+2029) and
///   invisible format characters (U+00AD, U+180E, U+200B, U+200C, U+2060–
///   U+2064, U+FEFF, tag characters outside an emoji flag) are shown as
///   `<U+202E>`: visible, and unable to reach past the message.
/// * U+200D (zero-width joiner) is kept between two emoji (👩‍💻 stays one
///   picture) and shown as `<U+200D>` anywhere else.
pub fn sanitize(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let after = chars.get(i + 1).copied();
        if c.is_control() {
            out.push('\u{fffd}');
        } else if (c == '\u{200d}' && before.is_some_and(is_emoji) && after.is_some_and(is_emoji))
            || (is_tag(c) && in_emoji_flag(&chars, i))
        {
            // Part of an emoji: a joiner between two, or a flag's tags.
            out.push(c);
        } else if is_hidden(c) {
            let _ = core::fmt::Write::write_fmt(&mut out, format_args!("<U+{:04X}>", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that reorder, hide or break text when shown raw.
pub(super) fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    ) || is_tag(c)
}

fn is_tag(c: char) -> bool {
    ('\u{e0000}'..='\u{e007f}').contains(&c)
}

/// Tag characters belong to a flag such as 🏴 + tags (England's flag).
fn in_emoji_flag(chars: &[char], i: usize) -> bool {
    let mut j = i;
    while let Some(prev) = j.checked_sub(1).and_then(|k| chars.get(k)) {
        if is_tag(*prev) {
            j -= 1;
        } else {
            return *prev == '\u{1f3f4}';
        }
    }
    false
}

/// Pictographs and the variation selector that makes a character one: what
/// a zero-width joiner may join.
fn is_emoji(c: char) -> bool {
    matches!(
        c,
        '\u{2600}'..='\u{27bf}'
            | '\u{2b00}'..='\u{2bff}'
            | '\u{fe0f}'
            | '\u{1f000}'..='\u{1faff}'
    )
}

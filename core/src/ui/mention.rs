//! Mentions: whether a message names the user.

/// Whether `text` names `name` as a word, ASCII case ignored: `alice` is
/// named in "hi alice!", "ALICE: look" and "@alice", not in "malice" or
/// "alice_b". A `.` or `-` counts as part of a word only between two word
/// characters, as in a username ("alice.b" names the user `alice.b`, not
/// `alice`; "alice." ends a sentence and names `alice`).
pub fn mentions(text: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let bytes = text.as_bytes();
    let n = name.len();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    let at = |i: usize| bytes.get(i).copied();
    let mut start = 0;
    while let Some(found) = find_ignore_case(&bytes[start..], name.as_bytes()) {
        let i = start + found;
        let end = i + n;
        let before = match i.checked_sub(1).and_then(at) {
            None => false,
            Some(b'.' | b'-') => i >= 2 && at(i - 2).is_some_and(word),
            Some(b) => word(b),
        };
        let after = match at(end) {
            None => false,
            Some(b'.' | b'-') => at(end + 1).is_some_and(word),
            Some(b) => word(b),
        };
        if !before && !after {
            return true;
        }
        start = i + 1;
    }
    false
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len())
        .find(|&i| haystack[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_mentioned_as_a_word_in_any_case() {
        for text in [
            "hi alice!",
            "alice",
            "ALICE: look",
            "@Alice",
            "ping alice.",
            "thanks, alice",
            "(alice)",
            "alice-",
            "malice and alice",
        ] {
            assert!(mentions(text, "alice"), "{text}");
        }
        for text in [
            "malice",
            "alices",
            "alice_b",
            "alice.b",
            "bob-alice",
            "alicé",
            "",
            "al ice",
        ] {
            assert!(!mentions(text, "alice"), "{text}");
        }
        assert!(mentions("hi a.b-c", "a.b-c"));
        assert!(!mentions("anything", ""));
        assert!(mentions("héllo alice ünd", "alice"));
    }
}

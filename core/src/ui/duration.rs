//! Durations typed in commands: a whole number and a unit, `90s`, `30m`,
//! `2h`, `7d`, `2w`.

/// Seconds in each unit a duration may have.
const UNITS: [(char, u64); 5] = [
    ('s', 1),
    ('m', 60),
    ('h', 3600),
    ('d', 86_400),
    ('w', 604_800),
];

/// The seconds of a duration such as `30m`: a positive whole number (ASCII
/// digits) then one unit, `s`, `m`, `h`, `d` or `w`. `None` for anything
/// else: no unit, zero, another character, or more seconds than a `u64`
/// holds.
pub(crate) fn parse_duration(text: &str) -> Option<u64> {
    let unit = text.chars().last()?;
    let (_, scale) = UNITS.iter().find(|(u, _)| *u == unit)?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(*scale).filter(|&s| s > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_a_number_and_a_unit() {
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("2h"), Some(7200));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("2w"), Some(1_209_600));
        for bad in [
            "",
            "m",
            "30",
            "0m",
            "-5m",
            "+5m",
            "1.5h",
            "5 m",
            "5M",
            "h5",
            "2y",
            "5é",
            "99999999999999999999d",
            "30000000000000000w",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}

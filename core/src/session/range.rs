//! Address ranges of `ban_address` (PROTOCOL.md §5.12): an IPv4 or IPv6
//! network in CIDR notation, or a plain address (a /32 or a /128).
//!
//! Parsing and the network arithmetic are `ipnet`'s (no_std, no
//! dependencies); the rules here are the protocol's: host bits are
//! cleared, and prefixes broader than [`MIN_PREFIX_V4`] and
//! [`MIN_PREFIX_V6`] are refused.

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

pub use ipnet::IpNet;

/// The shortest IPv4 prefix a ban may have: /8 (16,777,216 addresses).
/// Broader ranges would shut out a large part of the internet by one typo.
pub const MIN_PREFIX_V4: u8 = 8;
/// The shortest IPv6 prefix a ban may have: /16.
pub const MIN_PREFIX_V6: u8 = 16;
/// The longest range text accepted, in bytes: 64 (the longest IPv6
/// address with its prefix is 43).
pub const MAX_RANGE_TEXT: usize = 64;

/// Why a range was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// Not an address, nor an address, `/` and a prefix length that fits
    /// it.
    Malformed,
    /// A prefix broader than the protocol allows.
    TooBroad {
        /// The prefix length given.
        prefix: u8,
        /// The shortest allowed for its family.
        min: u8,
    },
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeError::Malformed => f.write_str(
                "not an address range: give an address (192.0.2.7, 2001:db8::1) \
                 or a network (192.0.2.0/24, 2001:db8::/48)",
            ),
            RangeError::TooBroad { prefix, min } => write!(
                f,
                "a /{prefix} is too broad to ban; the shortest prefix allowed is /{min}"
            ),
        }
    }
}

/// Parses a range: a network in CIDR notation or a plain address (a /32
/// or a /128), with its host bits cleared (`203.0.113.7/24` is
/// `203.0.113.0/24`). An IPv4-mapped IPv6 address is taken as its IPv4
/// address, as the server sees its sources.
pub fn parse_range(text: &str) -> Result<IpNet, RangeError> {
    if text.len() > MAX_RANGE_TEXT {
        return Err(RangeError::Malformed);
    }
    let net = match IpNet::from_str(text) {
        Ok(net) => net,
        Err(_) => IpAddr::from_str(text)
            .map(IpNet::from)
            .map_err(|_| RangeError::Malformed)?,
    };
    let net = canonical(net).trunc();
    let min = match net {
        IpNet::V4(_) => MIN_PREFIX_V4,
        IpNet::V6(_) => MIN_PREFIX_V6,
    };
    if net.prefix_len() < min {
        return Err(RangeError::TooBroad {
            prefix: net.prefix_len(),
            min,
        });
    }
    Ok(net)
}

/// An IPv4-mapped IPv6 network (`::ffff:0:0/96` and longer) as the IPv4
/// network it names.
fn canonical(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(n) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(n);
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn ranges_are_normalised() {
        let ok = [
            ("203.0.113.0/24", "203.0.113.0/24"),
            ("203.0.113.77/24", "203.0.113.0/24"),
            ("198.51.100.7", "198.51.100.7/32"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("2001:db8:1:2::77/64", "2001:db8:1:2::/64"),
            ("2001:db8::1", "2001:db8::1/128"),
            ("2001::/16", "2001::/16"),
            ("::ffff:192.0.2.9", "192.0.2.9/32"),
            ("::ffff:192.0.2.9/120", "192.0.2.0/24"),
        ];
        for (text, want) in ok {
            assert_eq!(parse_range(text).unwrap().to_string(), want, "{text}");
        }
    }

    #[test]
    fn bad_and_broad_ranges_are_refused() {
        for bad in [
            "",
            "alice",
            "203.0.113.0/33",
            "203.0.113/24",
            "2001:db8::/129",
            "203.0.113.0/",
            "203.0.113.0/-1",
            " 203.0.113.0/24",
            "1.2.3.4:80",
        ] {
            assert_eq!(parse_range(bad), Err(RangeError::Malformed), "{bad:?}");
        }
        assert_eq!(
            parse_range("10.0.0.0/7"),
            Err(RangeError::TooBroad { prefix: 7, min: 8 })
        );
        assert_eq!(
            parse_range("0.0.0.0/0"),
            Err(RangeError::TooBroad { prefix: 0, min: 8 })
        );
        assert_eq!(
            parse_range("2000::/15"),
            Err(RangeError::TooBroad {
                prefix: 15,
                min: 16
            })
        );
        let long = "1".repeat(MAX_RANGE_TEXT + 1);
        assert_eq!(parse_range(&long), Err(RangeError::Malformed));
    }
}

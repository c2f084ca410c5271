//! Address bans (PROTOCOL.md §5.12): ranges whose datagrams the server
//! drops before anything else — no Retry, no Handshake, no Reset — and
//! whose sessions end at once.
//!
//! The table is an ordered map keyed by the normalised range, and a count
//! of the prefix lengths in use: a lookup truncates the address to each
//! length in use and searches the map once per length (a handful in
//! practice, at most 33 for IPv4 and 129 for IPv6), whatever the number of
//! bans. With no bans a lookup is one emptiness check.
//!
//! A ban takes effect once it is on disk; expired bans stop counting at
//! once and are dropped, from memory and the store, when a lookup or a
//! listing meets them.

use core::ops::Bound;

use super::audit::Action;
use super::writes::Write;
use super::*;
use crate::session::{BanItem, IpNet, MAX_BAN_PAGE, MAX_BANS, parse_range};
use store::AddressBan;

/// The bans in force, by range.
#[derive(Debug, Default)]
pub(super) struct BanTable {
    bans: BTreeMap<IpNet, AddressBan>,
    /// How many bans have each IPv4 prefix length.
    v4: BTreeMap<u8, u32>,
    /// How many bans have each IPv6 prefix length.
    v6: BTreeMap<u8, u32>,
}

impl BanTable {
    fn lengths(&mut self, net: &IpNet) -> &mut BTreeMap<u8, u32> {
        match net {
            IpNet::V4(_) => &mut self.v4,
            IpNet::V6(_) => &mut self.v6,
        }
    }

    /// Adds a ban, or replaces the ban of the same range.
    pub(super) fn insert(&mut self, net: IpNet, ban: AddressBan) {
        if self.bans.insert(net, ban).is_none() {
            *self.lengths(&net).entry(net.prefix_len()).or_insert(0) += 1;
        }
    }

    /// Lifts the ban of exactly `net`.
    pub(super) fn remove(&mut self, net: &IpNet) -> Option<AddressBan> {
        let ban = self.bans.remove(net)?;
        let lengths = self.lengths(net);
        if let Some(n) = lengths.get_mut(&net.prefix_len()) {
            *n -= 1;
            if *n == 0 {
                lengths.remove(&net.prefix_len());
            }
        }
        Some(ban)
    }

    pub(super) fn len(&self) -> usize {
        self.bans.len()
    }

    pub(super) fn contains(&self, net: &IpNet) -> bool {
        self.bans.contains_key(net)
    }

    /// The bans whose range holds `ip` (expired ones included), broadest
    /// first.
    pub(super) fn covering(&self, ip: IpAddr) -> impl Iterator<Item = (IpNet, &AddressBan)> {
        let ip = ip.to_canonical();
        let lengths = match ip {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => &self.v6,
        };
        lengths.keys().filter_map(move |&len| {
            let net = IpNet::new(ip, len).ok()?.trunc();
            self.bans.get_key_value(&net).map(|(k, b)| (*k, b))
        })
    }
}

/// Whether a ban has ended at `now` (ms since the Unix epoch).
fn expired(ban: &AddressBan, now: u64) -> bool {
    ban.until.is_some_and(|until| until <= now)
}

impl Server {
    /// Whether datagrams from `ip` are to be dropped: a ban in force holds
    /// it. Expired bans met on the way are dropped.
    pub(super) fn is_banned(&mut self, ip: IpAddr) -> bool {
        if self.bans.len() == 0 {
            return false;
        }
        let now = self.unix_time();
        let mut ended: Vec<IpNet> = Vec::new();
        let mut banned = false;
        for (net, ban) in self.bans.covering(ip) {
            if expired(ban, now) {
                ended.push(net);
            } else {
                banned = true;
                break;
            }
        }
        for net in ended {
            self.drop_ban(&net);
        }
        banned
    }

    /// Forgets an expired ban, in memory and in the store.
    fn drop_ban(&mut self, net: &IpNet) {
        if let Some(ban) = self.bans.remove(net) {
            self.store(StoreOp::UnbanAddress { range: ban.range }, None);
        }
    }

    /// Loads the bans of a [`Snapshot`]; a range that no longer parses is
    /// skipped.
    pub(super) fn restore_bans(&mut self, bans: Vec<AddressBan>) {
        for ban in bans {
            if let Ok(net) = parse_range(&ban.range) {
                self.bans.insert(net, ban);
            }
        }
    }

    /// `ban_address`: checks the request, then writes the audit entry and
    /// the ban; the ban takes effect (and `mod_ok` is sent) once it is on
    /// disk.
    pub(super) fn on_ban_address(
        &mut self,
        conn: u64,
        name: &str,
        range: &str,
        secs: Option<u64>,
        reason: Option<String>,
    ) {
        if !self.require_admin(conn, name, "ban addresses") {
            return;
        }
        let net = match parse_range(range) {
            Ok(net) => net,
            Err(e) => {
                self.error(conn, ErrorCode::InvalidRange, format!("{range}: {e}"));
                return;
            }
        };
        if secs == Some(0) {
            self.error(
                conn,
                ErrorCode::BadMessage,
                "secs: a ban lasts at least 1 second (leave secs out for no end)".to_string(),
            );
            return;
        }
        let reason = reason.unwrap_or_default();
        if !reason.is_empty()
            && let Err(e) = validate_text(&reason)
                .map_err(|e| e.to_string())
                .and_then(|()| check_reason_length(&reason))
        {
            self.error(conn, ErrorCode::InvalidText, format!("reason: {e}"));
            return;
        }
        if self
            .sessions
            .get(&conn)
            .is_some_and(|s| net.contains(&s.addr.ip().to_canonical()))
        {
            self.error(
                conn,
                ErrorCode::InvalidRange,
                format!("{net} holds your own address: it would end this session"),
            );
            return;
        }
        if !self.bans.contains(&net) && self.bans.len() >= MAX_BANS {
            self.error(
                conn,
                ErrorCode::TooManyBans,
                format!("the server has {MAX_BANS} address bans; lift one first"),
            );
            return;
        }
        let now = self.unix_time();
        let until = secs.map(|s| now.saturating_add(s.saturating_mul(1000)));
        let range = net.to_string();
        self.audit(
            Action {
                by: name,
                action: "ban_address",
                target: &range,
                reason: &reason,
                until,
            },
            None,
        );
        let ban = AddressBan {
            range,
            until,
            reason,
            by: name.to_string(),
            time: now,
        };
        self.store(
            StoreOp::BanAddress(ban.clone()),
            Some(Write::Banned { conn, ban }),
        );
    }

    /// `unban_address`: lifts the ban of exactly that range, once the
    /// change is on disk.
    pub(super) fn on_unban_address(&mut self, conn: u64, name: &str, range: &str) {
        if !self.require_admin(conn, name, "lift address bans") {
            return;
        }
        let net = match parse_range(range) {
            Ok(net) => net,
            Err(e) => {
                self.error(conn, ErrorCode::InvalidRange, format!("{range}: {e}"));
                return;
            }
        };
        if !self.bans.contains(&net) {
            self.error(
                conn,
                ErrorCode::InvalidRange,
                format!("{net} is not banned (`bans` lists the bans)"),
            );
            return;
        }
        let range = net.to_string();
        self.audit(
            Action {
                by: name,
                action: "unban_address",
                target: &range,
                reason: "",
                until: None,
            },
            None,
        );
        self.store(
            StoreOp::UnbanAddress {
                range: range.clone(),
            },
            Some(Write::Unbanned { conn, range }),
        );
    }

    /// `bans`: the bans in force after `after`, at most [`MAX_BAN_PAGE`].
    pub(super) fn on_bans(&mut self, conn: u64, name: &str, after: Option<&str>) {
        if !self.require_admin(conn, name, "list address bans") {
            return;
        }
        let start = match after.map(parse_range) {
            None => Bound::Unbounded,
            Some(Ok(net)) => Bound::Excluded(net),
            Some(Err(e)) => {
                self.error(
                    conn,
                    ErrorCode::InvalidRange,
                    format!("after {}: {e}", after.unwrap_or_default()),
                );
                return;
            }
        };
        let now = self.unix_time();
        let ended: Vec<IpNet> = self
            .bans
            .bans
            .iter()
            .filter(|(_, b)| expired(b, now))
            .map(|(n, _)| *n)
            .collect();
        for net in &ended {
            self.drop_ban(net);
        }
        let in_force = self.bans.bans.range((start, Bound::Unbounded));
        let total = in_force.clone().count();
        let bans: Vec<BanItem> = in_force
            .take(MAX_BAN_PAGE)
            .map(|(_, b)| BanItem {
                range: b.range.clone(),
                until: b.until,
                reason: b.reason.clone(),
                by: b.by.clone(),
                time: b.time,
            })
            .collect();
        let count = (total > bans.len()).then(|| u32::try_from(total).unwrap_or(u32::MAX));
        self.send(conn, &ServerMessage::BanList { bans, count });
    }

    /// A ban is on disk: it takes effect, the sessions in its range end,
    /// and the admin gets `mod_ok`.
    pub(super) fn banned(&mut self, conn: u64, ban: AddressBan) {
        let Ok(net) = parse_range(&ban.range) else {
            return;
        };
        let range = ban.range.clone();
        self.bans.insert(net, ban);
        self.initials
            .retain(|q| !net.contains(&q.from.ip().to_canonical()));
        self.end_sessions_in(net);
        self.send(
            conn,
            &ServerMessage::ModOk {
                action: "ban_address".to_string(),
                target: range,
            },
        );
        self.process_later(conn);
    }

    /// A lifted ban is on disk: it stops counting.
    pub(super) fn unbanned(&mut self, conn: u64, range: String) {
        if let Ok(net) = parse_range(&range) {
            self.bans.remove(&net);
        }
        self.send(
            conn,
            &ServerMessage::ModOk {
                action: "unban_address".to_string(),
                target: range,
            },
        );
        self.process_later(conn);
    }

    /// Ends every session whose address `net` holds: `error banned`, then
    /// CLOSE, at once (nothing more is sent to a banned address, and its
    /// acknowledgements would be dropped); the others get `left` `banned`.
    fn end_sessions_in(&mut self, net: IpNet) {
        let now = self.now;
        let conns: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| net.contains(&s.addr.ip().to_canonical()))
            .map(|(c, _)| *c)
            .collect();
        for conn in conns {
            self.error(
                conn,
                ErrorCode::Banned,
                "this address is banned from the server; the session is over".to_string(),
            );
            self.logout(conn, LeaveReason::Banned);
            if let Some(s) = self.sessions.get_mut(&conn) {
                while let Some(bytes) = s.connection.poll_transmit_final(now) {
                    self.direct.push_back((s.addr, bytes));
                }
                s.connection.channel_mut().close(CloseCode::Normal);
            }
            self.remove(now, conn, None);
        }
    }

    /// The address bans in force, by range (expired ones not yet dropped
    /// included).
    pub fn address_bans(&self) -> impl Iterator<Item = &AddressBan> {
        self.bans.bans.values()
    }
}

/// A ban's reason: at most [`session::MAX_QUIT_MESSAGE`] bytes.
fn check_reason_length(reason: &str) -> Result<(), String> {
    if reason.len() > MAX_QUIT_MESSAGE {
        return Err(format!(
            "{} bytes; at most {MAX_QUIT_MESSAGE} are allowed",
            reason.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(range: &str, until: Option<u64>) -> AddressBan {
        AddressBan {
            range: range.to_string(),
            until,
            reason: String::new(),
            by: "root".to_string(),
            time: 1,
        }
    }

    fn table(ranges: &[&str]) -> BanTable {
        let mut t = BanTable::default();
        for r in ranges {
            t.insert(parse_range(r).unwrap(), ban(r, None));
        }
        t
    }

    fn held(t: &BanTable, ip: &str) -> Vec<String> {
        t.covering(ip.parse().unwrap())
            .map(|(n, _)| n.to_string())
            .collect()
    }

    #[test]
    fn a_lookup_finds_every_range_that_holds_the_address() {
        let t = table(&[
            "203.0.113.0/24",
            "203.0.0.0/16",
            "198.51.100.7/32",
            "2001:db8:1:2::/64",
        ]);
        assert_eq!(held(&t, "203.0.113.9"), ["203.0.0.0/16", "203.0.113.0/24"]);
        assert_eq!(held(&t, "203.0.7.1"), ["203.0.0.0/16"]);
        assert_eq!(held(&t, "198.51.100.7"), ["198.51.100.7/32"]);
        assert!(held(&t, "198.51.100.8").is_empty());
        assert_eq!(held(&t, "2001:db8:1:2:ffff::1"), ["2001:db8:1:2::/64"]);
        assert!(held(&t, "2001:db8:1:3::1").is_empty());
        // An IPv4-mapped source is its IPv4 address.
        assert_eq!(held(&t, "::ffff:198.51.100.7"), ["198.51.100.7/32"]);
    }

    #[test]
    fn removing_a_ban_forgets_its_prefix_length_when_it_was_the_last() {
        let mut t = table(&["203.0.113.0/24", "198.51.100.0/24"]);
        assert!(t.remove(&parse_range("203.0.113.0/24").unwrap()).is_some());
        assert_eq!(t.v4.get(&24), Some(&1));
        assert!(t.remove(&parse_range("198.51.100.0/24").unwrap()).is_some());
        assert!(t.v4.is_empty());
        assert!(t.remove(&parse_range("198.51.100.0/24").unwrap()).is_none());
        // Replacing a ban does not count its length twice.
        let mut t = table(&["203.0.113.0/24"]);
        t.insert(
            parse_range("203.0.113.0/24").unwrap(),
            ban("203.0.113.0/24", Some(5)),
        );
        assert_eq!((t.len(), t.v4.get(&24)), (1, Some(&1)));
    }

    #[test]
    fn an_expired_ban_stops_counting_and_is_dropped() {
        let mut s = Server::new(
            ServerConfig::default(),
            [],
            StaticKey::from_private([7; 32]),
            [9; 32],
        );
        s.set_unix_time(Instant::ZERO, 1_000_000);
        let net = parse_range("192.0.2.0/24").unwrap();
        s.bans.insert(net, ban("192.0.2.0/24", Some(1_005_000)));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(s.is_banned(ip));
        s.now = Instant::ZERO + Duration::from_secs(5);
        assert!(!s.is_banned(ip));
        assert_eq!(s.bans.len(), 0);
        assert!(matches!(
            s.poll_request(),
            Some(Request::Store { op: StoreOp::UnbanAddress { range }, .. }) if range == "192.0.2.0/24"
        ));
    }

    #[test]
    fn a_new_ban_beyond_the_limit_is_refused_and_a_replacement_is_not() {
        let config = ServerConfig {
            admins: ["root".to_string()].into_iter().collect(),
            ..ServerConfig::default()
        };
        let mut s = Server::new(config, [], StaticKey::from_private([7; 32]), [9; 32]);
        for i in 0..MAX_BANS as u32 {
            let net = IpNet::from(IpAddr::V4(core::net::Ipv4Addr::from((11u32 << 24) + i)));
            s.bans.insert(net, ban(&net.to_string(), None));
        }
        s.on_ban_address(1, "root", "192.0.2.0/24", None, None);
        let refused: Vec<ErrorCode> = core::iter::from_fn(|| s.poll_event())
            .filter_map(|e| match e {
                ServerEvent::ClientError { code, .. } => Some(code),
                _ => None,
            })
            .collect();
        assert_eq!(refused, [ErrorCode::TooManyBans]);
        assert!(s.poll_request().is_none(), "nothing written");
        // A ban of a range already banned replaces it: no new entry.
        s.on_ban_address(1, "root", "11.0.0.5", Some(60), Some("again".to_string()));
        let ops: Vec<StoreOp> = core::iter::from_fn(|| s.poll_request())
            .filter_map(|r| match r {
                Request::Store { op, .. } => Some(op),
                _ => None,
            })
            .collect();
        assert!(
            matches!(ops.as_slice(), [StoreOp::Audit(_), StoreOp::BanAddress(b)] if b.range == "11.0.0.5/32" && b.reason == "again"),
            "{ops:?}"
        );
    }

    /// Prints the cost of a lookup among 1,000 bans (not a timed assertion:
    /// `cargo test -p udpchat-core ban_lookup -- --nocapture`).
    #[test]
    fn ban_lookup_cost_with_a_thousand_bans() {
        extern crate std;
        let mut s = Server::new(
            ServerConfig::default(),
            [],
            StaticKey::from_private([7; 32]),
            [9; 32],
        );
        // 1,000 bans of three lengths, IPv4 and IPv6.
        for i in 0..1000u32 {
            let range = match i % 4 {
                0 => alloc::format!("{}.{}.0.0/16", 11 + i / 256, i % 256),
                1 => alloc::format!("198.{}.{}.0/24", i / 256, i % 256),
                2 => alloc::format!("203.0.{}.{}", i / 256, i % 256),
                _ => alloc::format!("2001:db8:{i:x}::/48"),
            };
            let net = parse_range(&range).unwrap();
            s.bans.insert(net, ban(&net.to_string(), None));
        }
        assert_eq!(s.bans.len(), 1000);
        let probes: Vec<IpAddr> = (0..1000u32)
            .map(|i| IpAddr::from([100, (i / 256) as u8, (i % 256) as u8, 1]))
            .chain((0..1000u32).map(|i| IpAddr::from([198, (i / 256) as u8, (i % 256) as u8, 9])))
            .collect();
        let rounds = 200;
        let start = std::time::Instant::now();
        let mut hits = 0u32;
        for _ in 0..rounds {
            for ip in &probes {
                hits += u32::from(s.is_banned(core::hint::black_box(*ip)));
            }
        }
        let ns = start.elapsed().as_nanos() / (rounds * probes.len() as u128);
        std::println!("ban lookup among 1,000 bans: {ns} ns per lookup ({hits} hits)");
        assert_eq!(
            hits,
            rounds as u32 * 250,
            "each 198.x.y.0/24 banned holds one probe"
        );
    }
}

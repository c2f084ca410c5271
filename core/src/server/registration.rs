//! Who may register (PROTOCOL.md §5.12): open, closed, or by single-use
//! invite codes that server admins ask for. The mode and the unused codes
//! are kept in the chat store.

use super::audit::Action;
use super::store::Invite;
use super::writes::Write;
use super::*;
use crate::session::{MAX_INVITE, RegistrationMode};

/// How long an invite code stays valid: 7 days, in milliseconds.
pub const INVITE_LIFETIME_MS: u64 = 7 * 24 * 3600 * 1000;

/// Most unused invite codes a server keeps: 1,000. An `invite` beyond it
/// is refused (`error too_many_invites`); expired codes do not count.
pub const MAX_INVITES: usize = 1000;

/// The unused invite codes, and those claimed by registrations in flight.
#[derive(Debug, Default)]
pub(super) struct Invites {
    /// Unused codes, by code.
    unused: BTreeMap<String, Invite>,
    /// Codes a registration is using: not offered to another until that
    /// registration ends.
    claimed: BTreeSet<String>,
}

impl Server {
    /// Loads the registration mode and the unused codes from the store.
    pub(super) fn restore_registration(&mut self, mode: RegistrationMode, invites: Vec<Invite>) {
        self.registration = mode;
        for i in invites {
            self.invites.unused.insert(i.code.clone(), i);
        }
    }

    /// Who may register now.
    pub fn registration(&self) -> RegistrationMode {
        self.registration
    }

    /// How many invite codes are unused (expired ones included until
    /// they are pruned).
    pub fn unused_invites(&self) -> usize {
        self.invites.unused.len()
    }

    /// What `password_required` tells a new user about registering here.
    pub(super) fn registration_hint(&self, new_user: bool) -> Option<RegistrationMode> {
        (new_user && self.registration != RegistrationMode::Open).then_some(self.registration)
    }

    /// `registration`: for admins; the mode is on disk before `mod_ok`.
    pub(super) fn on_registration(&mut self, conn: u64, by: &str, mode: RegistrationMode) {
        if !self.require_admin(conn, by, "set who may register") {
            return;
        }
        self.registration = mode;
        self.store(StoreOp::Registration(mode), None);
        // The store answers in order: the entry's answer comes after the
        // mode is on disk.
        self.audit(
            Action {
                by,
                action: "registration",
                target: mode.as_str(),
                reason: "",
                until: None,
            },
            Some(conn),
        );
    }

    /// `invite`: for admins; a new code, answered once it is on disk.
    pub(super) fn on_invite(&mut self, conn: u64, by: &str) {
        if !self.require_admin(conn, by, "make invite codes") {
            return;
        }
        let now = self.unix_time();
        let expired: Vec<String> = self
            .invites
            .unused
            .values()
            .filter(|i| i.expires <= now && !self.invites.claimed.contains(&i.code))
            .map(|i| i.code.clone())
            .collect();
        for code in expired {
            self.invites.unused.remove(&code);
            self.store(StoreOp::RemoveInvite { code }, None);
        }
        if self.invites.unused.len() >= MAX_INVITES {
            self.error(
                conn,
                ErrorCode::TooManyInvites,
                format!(
                    "{MAX_INVITES} invite codes are unused; wait until some are used or expire"
                ),
            );
            return;
        }
        let code = loop {
            let code = format!("{:016x}", self.invite_rng.next_u64());
            if !self.invites.unused.contains_key(&code) {
                break code;
            }
        };
        let invite = Invite {
            code,
            expires: now.saturating_add(INVITE_LIFETIME_MS),
            by: by.to_string(),
        };
        // Taken at once (a second request cannot exceed the limit); it
        // works, and is shown, once it is on disk.
        self.invites
            .unused
            .insert(invite.code.clone(), invite.clone());
        self.invites.claimed.insert(invite.code.clone());
        self.audit(
            Action {
                by,
                action: "invite",
                target: &invite.code,
                reason: "",
                until: Some(invite.expires),
            },
            None,
        );
        self.store(
            StoreOp::AddInvite(invite.clone()),
            Some(Write::Invited { conn, invite }),
        );
    }

    /// The invite code is on disk: it may be used, and the admin is told.
    pub(super) fn invite_stored(&mut self, conn: u64, invite: Invite) {
        self.invites.claimed.remove(&invite.code);
        self.send(
            conn,
            &ServerMessage::InviteCode {
                code: invite.code,
                expires: invite.expires,
            },
        );
        self.process_later(conn);
    }

    /// The invite code could not be stored: it never existed.
    pub(super) fn invite_failed(&mut self, invite: &Invite) {
        self.invites.claimed.remove(&invite.code);
        self.invites.unused.remove(&invite.code);
    }

    /// Whether a new account may be registered with `invite` now; if not,
    /// the session is answered `login_failed` with the reason.
    pub(super) fn may_register(
        &mut self,
        conn: u64,
        addr: SocketAddr,
        name: &str,
        invite: Option<&str>,
    ) -> bool {
        let (reason, message) = match (self.registration, invite.filter(|c| !c.is_empty())) {
            (RegistrationMode::Open, _) => return true,
            (RegistrationMode::Closed, _) => (
                LoginFailure::RegistrationClosed,
                format!("this server registers no new accounts, and no account is named {name}"),
            ),
            (RegistrationMode::Invite, None) => (
                LoginFailure::InviteRequired,
                "this server registers new accounts by invite only: ask a server admin for an invite code".to_string(),
            ),
            (RegistrationMode::Invite, Some(code)) => {
                let now = self.unix_time();
                let valid = code.len() <= MAX_INVITE
                    && !self.invites.claimed.contains(code)
                    && self
                        .invites
                        .unused
                        .get(code)
                        .is_some_and(|i| i.expires > now);
                if valid {
                    return true;
                }
                (
                    LoginFailure::InvalidInvite,
                    "that invite code is unknown, expired or already used".to_string(),
                )
            }
        };
        self.login_failed(conn, Some(addr), name, reason, message);
        false
    }

    /// Reserves a valid code for a registration in flight (see
    /// [`Server::may_register`]); returns the code to remember, or `None`
    /// when registration needs none.
    pub(super) fn claim_invite(&mut self, invite: Option<String>) -> Option<String> {
        if self.registration != RegistrationMode::Invite {
            return None;
        }
        let code = invite?;
        self.invites.claimed.insert(code.clone());
        Some(code)
    }

    /// A registration that claimed `code` ended: the code is used up if the
    /// account was stored, and offered again if it was not.
    pub(super) fn settle_invite(&mut self, code: String, stored: bool) {
        self.invites.claimed.remove(&code);
        if stored && self.invites.unused.remove(&code).is_some() {
            self.store(StoreOp::RemoveInvite { code }, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::StaticKey;
    use alloc::vec;

    fn invite(code: &str, expires: u64) -> Invite {
        Invite {
            code: code.to_string(),
            expires,
            by: "root".to_string(),
        }
    }

    #[test]
    fn a_code_is_valid_until_it_expires_is_used_or_is_in_use() {
        let mut s = Server::new(
            ServerConfig::default(),
            [],
            StaticKey::from_private([7; 32]),
            [1; 32],
        );
        s.restore(Snapshot {
            registration: RegistrationMode::Invite,
            invites: vec![invite("aaaa", 5_000), invite("bbbb", 20_000)],
            ..Snapshot::default()
        });
        assert_eq!(s.registration(), RegistrationMode::Invite);
        assert_eq!(s.unused_invites(), 2);
        s.set_unix_time(Instant::ZERO, 10_000);
        let addr: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        // No session 1: the answers go nowhere, the decisions stand.
        assert!(!s.may_register(1, addr, "dave", None), "a code is needed");
        assert!(!s.may_register(1, addr, "dave", Some("aaaa")), "expired");
        assert!(!s.may_register(1, addr, "dave", Some("cccc")), "unknown");
        assert!(s.may_register(1, addr, "dave", Some("bbbb")));
        // Claimed by one registration: not by a second at the same time.
        assert_eq!(s.claim_invite(Some("bbbb".into())), Some("bbbb".into()));
        assert!(!s.may_register(2, addr, "erin", Some("bbbb")));
        // That registration failed: the code is offered again.
        s.settle_invite("bbbb".into(), false);
        assert!(s.may_register(2, addr, "erin", Some("bbbb")));
        // This one succeeded: used up, and the store forgets it.
        s.claim_invite(Some("bbbb".into()));
        s.settle_invite("bbbb".into(), true);
        assert!(!s.may_register(3, addr, "fay", Some("bbbb")));
        assert_eq!(s.unused_invites(), 1);
        assert!(s.requests.iter().any(|r| matches!(
            r,
            Request::Store { op: StoreOp::RemoveInvite { code }, .. } if code == "bbbb"
        )));
        // Open registration needs no code; closed takes none.
        s.registration = RegistrationMode::Open;
        assert!(s.may_register(4, addr, "gil", None));
        s.registration = RegistrationMode::Closed;
        assert!(!s.may_register(4, addr, "gil", Some("bbbb")));
    }
}

//! The fake password service: what a driver's password workers do, without
//! argon2.
//!
//! The server hands password work out as a [`Request`]; a real driver hashes
//! or checks in a worker pool and hands back a [`Response`]. Here the "hash"
//! of a password is [`fake_hash`] (`fake:` and the password): it never
//! travels, so the datagrams are those of a real server.

use udpchat_core::server::{AccountOp, Request, Response, Server, UserRecord};
use udpchat_core::time::Instant;

/// The fake hash of `password` that the simulated user store keeps.
pub fn fake_hash(password: &str) -> String {
    format!("fake:{password}")
}

/// The answer to one request: a registration is stored as [`fake_hash`]; a
/// password checks when its fake hash is the stored one. Store requests
/// (rooms, history, offline messages) and account changes are acknowledged
/// and kept nowhere ([`apply_account`] keeps the latter): a
/// driver that needs them kept answers them from a
/// [`MemoryStore`](udpchat_core::server::store::MemoryStore) first, as the
/// [`World`](crate::World) does.
pub fn answer(request: Request) -> Response {
    match request {
        Request::Store { id, .. } | Request::Account { id, .. } => {
            Response::Stored { id, result: Ok(()) }
        }
        Request::History { id, .. } => Response::History {
            id,
            result: Ok((Vec::new(), false)),
        },
        Request::Register { id, password, .. } => Response::Registered {
            id,
            result: Ok(fake_hash(&password)),
        },
        Request::Verify {
            id,
            password,
            password_hash,
            ..
        } => Response::Verified {
            id,
            ok: password_hash == fake_hash(&password),
        },
    }
}

/// Answers every request `server` has at once, at `now`, as a worker pool
/// with no delay would.
pub fn answer_all(server: &mut Server, now: Instant) {
    while let Some(r) = server.poll_request() {
        server.handle_response(now, answer(r));
    }
}

/// [`answer`], and a registration is also added to `accounts`, as a user
/// store would keep it (a restarted server starts with them).
pub fn answer_recording(request: Request, accounts: &mut Vec<UserRecord>) -> Response {
    if let Request::Register {
        username, password, ..
    } = &request
    {
        accounts.push(UserRecord {
            name: username.clone(),
            password_hash: fake_hash(password),
            suspended: None,
        });
    }
    answer(request)
}

/// Applies an account change ([`Request::Account`]) to `accounts`, as a
/// user store would. An account not among them is left alone.
pub fn apply_account(op: &AccountOp, accounts: &mut [UserRecord]) {
    let (name, suspended) = match op {
        AccountOp::Suspend { name, suspension } => (name, Some(suspension.clone())),
        AccountOp::Unsuspend { name } => (name, None),
    };
    let key = udpchat_core::session::username_key(name);
    if let Some(u) = accounts
        .iter_mut()
        .find(|u| udpchat_core::session::username_key(&u.name) == key)
    {
        u.suspended = suspended;
    }
}

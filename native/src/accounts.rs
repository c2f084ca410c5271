//! `chatserver accounts`: lists and changes the accounts of the user store,
//! safely beside a running server.
//!
//! Every change goes through [`UserStore`], which takes the store's lock,
//! reloads the file if the server (or another run of this tool) changed it,
//! and rewrites it atomically; a running server notices the change within
//! about a second ([`crate::store::POLL_INTERVAL`]) and applies it: a new
//! password from the next login on, a deleted account's session ended.
//!
//! With `--cluster URL` the commands work on the cluster's accounts hash
//! in Redis instead ([`cluster::AccountsHash`]): each change is one script
//! that also publishes it, and every running node applies it at once.
//!
//! Passwords are read from the terminal without echo (asked twice), or as
//! one line of standard input when it is not a terminal; never from the
//! command line. New passwords follow the server's rules
//! (`--min-password-chars`, 8 by default; at most
//! [`udpchat_core::session::MAX_PASSWORD`] bytes), names the
//! username rules, and a new name may not look like an existing one.
//!
//! Exit status: 0 done, 1 refused or failed (unknown user, name taken,
//! store unreadable or locked, …), 2 bad input (a name or password that
//! breaks the rules, a bad duration, a deletion not confirmed).

use std::io::{self, BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use udpchat_core::session::{self, MAX_PASSWORD};

use crate::cluster;
use crate::passwords::hash_password;
use crate::state;
use crate::store::{StoreError, StoredSuspension, UserRecord, UserStore};

/// Who a suspension made by this tool is by.
pub const SUSPENDED_BY: &str = "accounts";

/// The longest suspension `--for` accepts: 36,500 days (about 100 years).
pub const MAX_SUSPENSION: Duration = Duration::from_secs(36_500 * 86_400);

/// The accounts subcommand's arguments.
#[derive(clap::Args, Debug)]
pub struct AccountsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AccountsCommand,
}

/// One operation on the user store.
#[derive(clap::Subcommand, Debug)]
pub enum AccountsCommand {
    /// List the accounts: name, when created (UTC), suspension.
    List {
        /// One JSON object per line: {"name", "created" (Unix seconds),
        /// "suspended": null or {"until" (Unix ms or null), "reason", "by"}}.
        #[arg(long)]
        json: bool,
    },
    /// Add an account. The password is read from the terminal without
    /// echo, or as one line of standard input.
    Add {
        /// The new account's name.
        name: String,
    },
    /// Set an account's password (read like add's). It applies to the
    /// account's next login.
    Passwd {
        /// The account.
        name: String,
    },
    /// Suspend an account: it cannot log in until the suspension ends or
    /// is lifted.
    Suspend {
        /// The account.
        name: String,
        /// How long: a number and a unit, s, m, h, d or w (30m, 2h, 7d);
        /// at most 36500d. Default: until lifted with unsuspend.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Why (shown to the account's user).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift an account's suspension.
    Unsuspend {
        /// The account.
        name: String,
    },
    /// Delete an account. A running server ends its session. Asks for
    /// confirmation on a terminal; needs --yes otherwise.
    Delete {
        /// The account.
        name: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

/// Why a command did not do what was asked: a message, and whether it was
/// bad input (exit 2) or a refusal or failure (exit 1).
#[derive(Debug)]
struct Failure {
    bad_input: bool,
    message: String,
}

impl Failure {
    fn input(message: impl Into<String>) -> Failure {
        Failure {
            bad_input: true,
            message: message.into(),
        }
    }

    fn failed(message: impl Into<String>) -> Failure {
        Failure {
            bad_input: false,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::failed(e.to_string())
    }
}

/// Runs `command` on the user store at `users`; `min_password_chars` is the
/// server's rule for new passwords. Messages go to standard output, errors
/// to standard error as `chatserver accounts: …`.
pub fn run(
    users: &Path,
    cluster: Option<&str>,
    min_password_chars: usize,
    args: AccountsArgs,
) -> ExitCode {
    let stdout = io::stdout();
    match execute(
        users,
        cluster,
        min_password_chars,
        args.command,
        &mut stdout.lock(),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("chatserver accounts: {}", failure.message);
            ExitCode::from(if failure.bad_input { 2 } else { 1 })
        }
    }
}

fn execute(
    users: &Path,
    cluster: Option<&str>,
    min_password_chars: usize,
    command: AccountsCommand,
    out: &mut dyn io::Write,
) -> Result<(), Failure> {
    let print_error = |e: io::Error| Failure::failed(format!("cannot write the output: {e}"));
    match command {
        AccountsCommand::List { json } => {
            let store = Accounts::open(users, cluster)?;
            for user in store.users() {
                let line = if json {
                    list_json(user)
                } else {
                    list_text(user)
                };
                writeln!(out, "{line}").map_err(print_error)?;
            }
            out.flush().map_err(print_error)
        }
        AccountsCommand::Add { name } => {
            session::validate_username(&name)
                .map_err(|e| Failure::input(format!("{name:?}: {e}")))?;
            if cluster.is_none() && state::in_default_dir(users) {
                let dir = state::parent_dir(users);
                state::create_private_dir(dir).map_err(|e| {
                    Failure::failed(format!(
                        "cannot create the directory {}: {e}",
                        dir.display()
                    ))
                })?;
            }
            let mut store = Accounts::open(users, cluster)?;
            check_new_name(&store, &name)?;
            let password = read_new_password(&name, min_password_chars)?;
            let hash = hash_password(&password).map_err(|e| Failure::failed(e.to_string()))?;
            // Up to date again after the slow hash: a look-alike registered
            // meanwhile is refused too (the name itself is checked under the
            // lock by the store).
            store.refresh()?;
            check_new_name(&store, &name)?;
            store.add(&name, &hash, unix_seconds())?;
            writeln!(out, "added {name}").map_err(print_error)
        }
        AccountsCommand::Passwd { name } => {
            let store = Accounts::open(users, cluster)?;
            let name = existing(&store, &name)?;
            let password = read_new_password(&name, min_password_chars)?;
            let hash = hash_password(&password).map_err(|e| Failure::failed(e.to_string()))?;
            let mut store = store;
            store.set_password(&name, &hash)?;
            writeln!(out, "new password set for {name}").map_err(print_error)
        }
        AccountsCommand::Suspend {
            name,
            duration,
            reason,
        } => {
            if !reason.is_empty() {
                session::validate_text(&reason)
                    .map_err(|e| Failure::input(format!("the reason: {e}")))?;
            }
            let mut store = Accounts::open(users, cluster)?;
            let name = existing(&store, &name)?;
            let until = duration.map(|d| {
                unix_millis().saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            });
            store.set_suspension(
                &name,
                Some(StoredSuspension {
                    until,
                    reason,
                    by: SUSPENDED_BY.to_string(),
                }),
            )?;
            let until = match until {
                Some(ms) => format!("until {}", udpchat_core::ui::rfc3339(ms)),
                None => "until lifted".to_string(),
            };
            writeln!(out, "suspended {name} {until}").map_err(print_error)
        }
        AccountsCommand::Unsuspend { name } => {
            let mut store = Accounts::open(users, cluster)?;
            let name = existing(&store, &name)?;
            let was = store.get(&name).is_some_and(|u| u.suspended.is_some());
            store.set_suspension(&name, None)?;
            if was {
                writeln!(out, "{name} is no longer suspended").map_err(print_error)
            } else {
                writeln!(out, "{name} was not suspended").map_err(print_error)
            }
        }
        AccountsCommand::Delete { name, yes } => {
            let mut store = Accounts::open(users, cluster)?;
            let name = existing(&store, &name)?;
            if !yes {
                confirm_delete(&name)?;
            }
            let removed = store.remove(&name)?;
            writeln!(out, "deleted {}", removed.name).map_err(print_error)
        }
    }
}

/// Where the accounts are: the user store (`--users`), or with
/// `--cluster URL` the cluster's accounts hash in Redis, whose changes
/// every running node applies at once (docs/CLUSTER.md).
enum Accounts {
    File(UserStore),
    Cluster(cluster::AccountsHash),
}

/// A failure of the cluster's Redis.
fn cluster_failed(e: &anyhow::Error) -> Failure {
    Failure::failed(format!("the cluster's accounts: {e:#}"))
}

impl Accounts {
    fn open(users: &Path, cluster: Option<&str>) -> Result<Accounts, Failure> {
        match cluster {
            None => Ok(Accounts::File(UserStore::open(users)?)),
            Some(url) => cluster::AccountsHash::open(url)
                .map(Accounts::Cluster)
                .map_err(|e| cluster_failed(&e)),
        }
    }

    fn users(&self) -> &[UserRecord] {
        match self {
            Accounts::File(s) => s.users(),
            Accounts::Cluster(c) => c.users(),
        }
    }

    fn get(&self, name: &str) -> Option<&UserRecord> {
        match self {
            Accounts::File(s) => s.get(name),
            Accounts::Cluster(c) => c.get(name),
        }
    }

    fn refresh(&mut self) -> Result<(), Failure> {
        match self {
            Accounts::File(s) => s.refresh().map(|_| ()).map_err(Failure::from),
            Accounts::Cluster(c) => c.refresh().map_err(|e| cluster_failed(&e)),
        }
    }

    fn add(&mut self, name: &str, hash: &str, created: u64) -> Result<(), Failure> {
        match self {
            Accounts::File(s) => Ok(s.add(name, hash, created)?),
            Accounts::Cluster(c) => {
                let record = UserRecord {
                    name: name.to_string(),
                    password_hash: hash.to_string(),
                    created,
                    suspended: None,
                };
                match c.add(record) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(StoreError::NameTaken {
                        existing: name.to_string(),
                    }
                    .into()),
                    Err(e) => Err(cluster_failed(&e)),
                }
            }
        }
    }

    fn set_password(&mut self, name: &str, hash: &str) -> Result<(), Failure> {
        match self {
            Accounts::File(s) => Ok(s.set_password(name, hash)?),
            Accounts::Cluster(c) => change_in(c, name, |u| u.password_hash = hash.to_string()),
        }
    }

    fn set_suspension(
        &mut self,
        name: &str,
        suspension: Option<StoredSuspension>,
    ) -> Result<(), Failure> {
        match self {
            Accounts::File(s) => Ok(s.set_suspension(name, suspension)?),
            Accounts::Cluster(c) => change_in(c, name, |u| u.suspended = suspension),
        }
    }

    fn remove(&mut self, name: &str) -> Result<UserRecord, Failure> {
        match self {
            Accounts::File(s) => Ok(s.remove(name)?),
            Accounts::Cluster(c) => match c.remove(name) {
                Ok(Some(record)) => Ok(record),
                Ok(None) => Err(StoreError::UnknownUser {
                    name: name.to_string(),
                }
                .into()),
                Err(e) => Err(cluster_failed(&e)),
            },
        }
    }
}

/// Changes the account `name` of the cluster with `change`.
fn change_in(
    c: &mut cluster::AccountsHash,
    name: &str,
    change: impl FnOnce(&mut UserRecord),
) -> Result<(), Failure> {
    let unknown = || {
        Failure::from(StoreError::UnknownUser {
            name: name.to_string(),
        })
    };
    let mut record = c.get(name).cloned().ok_or_else(unknown)?;
    change(&mut record);
    match c.change(record) {
        Ok(true) => Ok(()),
        Ok(false) => Err(unknown()),
        Err(e) => Err(cluster_failed(&e)),
    }
}

/// The name of the account `name` as registered (case-insensitive), or
/// [`StoreError::UnknownUser`].
fn existing(store: &Accounts, name: &str) -> Result<String, Failure> {
    store.get(name).map(|u| u.name.clone()).ok_or_else(|| {
        Failure::from(StoreError::UnknownUser {
            name: name.to_string(),
        })
    })
}

/// Refuses a name that is taken, or that looks like an existing account's
/// (the server's rule for registrations).
fn check_new_name(store: &Accounts, name: &str) -> Result<(), Failure> {
    if let Some(user) = store.get(name) {
        return Err(StoreError::NameTaken {
            existing: user.name.clone(),
        }
        .into());
    }
    let skeleton = session::username_skeleton(name);
    if let Some(other) = store
        .users()
        .iter()
        .find(|u| session::username_skeleton(&u.name) == skeleton)
    {
        return Err(Failure::failed(format!(
            "{name:?} looks too much like the existing account {:?}; choose another",
            other.name
        )));
    }
    Ok(())
}

/// A new password for `name`: from the terminal without echo, twice, or one
/// line of standard input; checked against the server's rules.
fn read_new_password(name: &str, min_chars: usize) -> Result<String, Failure> {
    let password = if io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {name}: "))
            .map_err(|e| Failure::failed(format!("cannot read the password: {e}")))?;
        check_password(&first, min_chars)?;
        let again = rpassword::prompt_password("Repeat it: ")
            .map_err(|e| Failure::failed(format!("cannot read the password: {e}")))?;
        if again != first {
            return Err(Failure::input("the two passwords differ; nothing changed"));
        }
        first
    } else {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line).map_err(|e| {
            Failure::input(format!("cannot read the password from standard input: {e}"))
        })?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        line.strip_suffix('\r').unwrap_or(line).to_string()
    };
    check_password(&password, min_chars)?;
    Ok(password)
}

/// The rules of a new password: at least `min_chars` characters, at most
/// [`MAX_PASSWORD`] bytes.
fn check_password(password: &str, min_chars: usize) -> Result<(), Failure> {
    if password.is_empty() {
        return Err(Failure::input("the password is empty; nothing changed"));
    }
    if password.len() > MAX_PASSWORD {
        return Err(Failure::input(format!(
            "the password is longer than {MAX_PASSWORD} bytes; nothing changed"
        )));
    }
    let chars = password.chars().count();
    if chars < min_chars {
        return Err(Failure::input(format!(
            "the password has {chars} characters; at least {min_chars} are needed"
        )));
    }
    Ok(())
}

/// Asks on the terminal whether to delete `name`; without a terminal the
/// deletion needs `--yes`.
fn confirm_delete(name: &str) -> Result<(), Failure> {
    if !io::stdin().is_terminal() {
        return Err(Failure::input(format!(
            "not deleting {name}: standard input is not a terminal to confirm on; add --yes"
        )));
    }
    eprint!("Delete the account {name}? A running server ends its session. [y/N] ");
    let _ = io::stderr().flush();
    let mut answer = String::new();
    io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::failed(format!("cannot read the answer: {e}")))?;
    match answer.trim() {
        "y" | "Y" | "yes" | "YES" | "Yes" => Ok(()),
        _ => Err(Failure::failed(format!("not deleting {name}"))),
    }
}

/// A `--for` duration: a positive number and a unit, `s`, `m`, `h`, `d` or
/// `w`, at most [`MAX_SUSPENSION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit: write 30m, 2h, 7d (s, m, h, d or w)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number: write 30m, 2h, 7d"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; use s, m, h, d or w"
            ));
        }
    };
    if n == 0 {
        return Err(format!("{text:?}: the duration must be more than zero"));
    }
    match n.checked_mul(unit_secs).map(Duration::from_secs) {
        Some(d) if d <= MAX_SUSPENSION => Ok(d),
        _ => Err(format!(
            "{text:?} is longer than {} days; leave --for out to suspend until lifted",
            MAX_SUSPENSION.as_secs() / 86_400
        )),
    }
}

/// One line of `list`: name, created, suspension.
fn list_text(user: &UserRecord) -> String {
    let created = udpchat_core::ui::rfc3339(user.created.saturating_mul(1000));
    let created = created
        .strip_suffix(".000Z")
        .map_or(created.clone(), |c| format!("{c}Z"));
    let suspension = match &user.suspended {
        None => "-".to_string(),
        Some(s) => {
            let until = match s.until {
                Some(ms) => format!("until {}", udpchat_core::ui::rfc3339(ms)),
                None => "until lifted".to_string(),
            };
            if s.reason.is_empty() {
                format!("suspended {until} by {}", s.by)
            } else {
                format!("suspended {until} by {}: {}", s.by, s.reason)
            }
        }
    };
    format!("{}\t{created}\t{suspension}", user.name)
}

/// One line of `list --json`.
fn list_json(user: &UserRecord) -> String {
    serde_json::json!({
        "name": user.name,
        "created": user.created,
        "suspended": user.suspended.as_ref().map(|s| serde_json::json!({
            "until": s.until,
            "reason": s.reason,
            "by": s.by,
        })),
    })
    .to_string()
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("36500d"), Ok(MAX_SUSPENSION));
        for bad in [
            "",
            "30",
            "m",
            "0m",
            "3x",
            "-1h",
            "1.5h",
            "36501d",
            "99999999999999999999w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_rules() {
        assert!(check_password("12345678", 8).is_ok());
        assert!(check_password("1234567", 8).unwrap_err().bad_input);
        assert!(check_password("", 0).is_err());
        assert!(check_password(&"x".repeat(MAX_PASSWORD + 1), 8).is_err());
        // Characters, not bytes.
        assert!(check_password("ééééééé", 8).is_err());
    }

    #[test]
    fn list_lines() {
        let mut user = UserRecord {
            name: "alice".into(),
            password_hash: "$argon2id$x".into(),
            created: 1_700_000_000,
            suspended: None,
        };
        assert_eq!(list_text(&user), "alice\t2023-11-14T22:13:20Z\t-");
        assert_eq!(
            list_json(&user),
            r#"{"created":1700000000,"name":"alice","suspended":null}"#
        );
        user.suspended = Some(StoredSuspension {
            until: Some(1_700_000_000_000),
            reason: "spam".into(),
            by: "accounts".into(),
        });
        assert_eq!(
            list_text(&user),
            "alice\t2023-11-14T22:13:20Z\tsuspended until 2023-11-14T22:13:20.000Z by accounts: spam"
        );
        assert!(!list_json(&user).contains("argon2"));
    }
}

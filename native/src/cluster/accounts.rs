//! The accounts in Redis for `chatserver accounts --cluster`: read,
//! changed and deleted while the nodes run.

use super::*;

/// Every account the cluster at `url` keeps (to export them).
///
/// # Errors
/// When Redis cannot be reached or answers with an error.
pub fn accounts(url: &str) -> anyhow::Result<Vec<UserRecord>> {
    let client = redis::Client::open(url)?;
    let mut con = connect(&client)?;
    Ok(read_accounts(&mut con)?)
}

/// Suspends an account or lifts its suspension (`op`), as `node`: read,
/// changed, and written back with [`CHANGE_ACCOUNT`]. False if there is
/// no such account.
pub(super) fn change_suspension(
    con: &mut redis::Connection,
    script: &redis::Script,
    node: &str,
    op: &AccountOp,
) -> redis::RedisResult<bool> {
    let (name, suspended) = match op {
        AccountOp::Suspend { name, suspension } => {
            (name, Some(StoredSuspension::from_core(suspension)))
        }
        AccountOp::Unsuspend { name } => (name, None),
    };
    let json: Option<String> = redis::cmd("HGET")
        .arg(ACCOUNTS)
        .arg(username_key(name))
        .query(con)?;
    let Some(mut record) = json.and_then(|j| serde_json::from_str::<UserRecord>(&j).ok()) else {
        return Ok(false);
    };
    record.suspended = suspended;
    write_account(con, script, node, &record)
}

/// Writes `record` over the account it names, if there is one, and
/// publishes `account_changed` as `node`, in one script.
pub(super) fn write_account(
    con: &mut redis::Connection,
    script: &redis::Script,
    node: &str,
    record: &UserRecord,
) -> redis::RedisResult<bool> {
    let json = serde_json::to_string(record).map_err(|e| {
        redis::RedisError::from((redis::ErrorKind::Client, "account", e.to_string()))
    })?;
    let message = ClusterMessage::AccountChanged {
        node: node.to_string(),
        name: record.name.clone(),
        password_hash: record.password_hash.clone(),
        suspended: record.suspended.as_ref().map(StoredSuspension::to_core),
    }
    .encode();
    let changed: i64 = script
        .key(ACCOUNTS)
        .key(CHANNEL)
        .arg(username_key(&record.name))
        .arg(json)
        .arg(message)
        .invoke(con)?;
    Ok(changed == 1)
}

/// The cluster's accounts, for `chatserver accounts --cluster`: read at
/// open; each change is one script that also tells the running nodes
/// (`account`, `account_changed`, `account_deleted`), so that a new
/// password holds from the next login on any node and a suspension or a
/// deletion ends the account's session wherever it is.
pub struct AccountsHash {
    con: redis::Connection,
    users: Vec<UserRecord>,
}

impl AccountsHash {
    /// Reads the accounts of the cluster at `url`.
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn open(url: &str) -> anyhow::Result<AccountsHash> {
        let client = redis::Client::open(url)?;
        let mut con = connect(&client)?;
        let mut users = read_accounts(&mut con)?;
        users.sort_by_key(|u| username_key(&u.name));
        Ok(AccountsHash { con, users })
    }

    /// Every account, by name.
    pub fn users(&self) -> &[UserRecord] {
        &self.users
    }

    /// The account `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&UserRecord> {
        let key = username_key(name);
        self.users.iter().find(|u| username_key(&u.name) == key)
    }

    /// Reads the accounts again.
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn refresh(&mut self) -> anyhow::Result<()> {
        let mut users = read_accounts(&mut self.con)?;
        users.sort_by_key(|u| username_key(&u.name));
        self.users = users;
        Ok(())
    }

    /// Adds `record` unless the name is taken (false).
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn add(&mut self, record: UserRecord) -> anyhow::Result<bool> {
        let message = ClusterMessage::Account {
            node: ACCOUNTS_TOOL.to_string(),
            name: record.name.clone(),
            password_hash: record.password_hash.clone(),
        }
        .encode();
        let added: i64 = redis::Script::new(REGISTER)
            .key(ACCOUNTS)
            .key(CHANNEL)
            .arg(username_key(&record.name))
            .arg(serde_json::to_string(&record)?)
            .arg(message)
            .invoke(&mut self.con)?;
        if added == 1 {
            self.users.push(record);
        }
        Ok(added == 1)
    }

    /// Writes `record` over the account it names (false: there is none).
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn change(&mut self, record: UserRecord) -> anyhow::Result<bool> {
        let script = redis::Script::new(CHANGE_ACCOUNT);
        let changed = write_account(&mut self.con, &script, ACCOUNTS_TOOL, &record)?;
        let key = username_key(&record.name);
        if let Some(u) = self.users.iter_mut().find(|u| username_key(&u.name) == key) {
            *u = record;
        }
        Ok(changed)
    }

    /// Deletes the account `name` (case-insensitive); its record, or none
    /// if there was none.
    ///
    /// # Errors
    /// When Redis cannot be reached or answers with an error.
    pub fn remove(&mut self, name: &str) -> anyhow::Result<Option<UserRecord>> {
        let key = username_key(name);
        let Some(at) = self.users.iter().position(|u| username_key(&u.name) == key) else {
            return Ok(None);
        };
        let message = ClusterMessage::AccountDeleted {
            node: ACCOUNTS_TOOL.to_string(),
            name: self.users[at].name.clone(),
        }
        .encode();
        let removed: i64 = redis::Script::new(DELETE_ACCOUNT)
            .key(ACCOUNTS)
            .key(CHANNEL)
            .arg(&key)
            .arg(message)
            .invoke(&mut self.con)?;
        let record = self.users.remove(at);
        Ok((removed == 1).then_some(record))
    }
}

//! Rate limits: token buckets per account, per address and per session,
//! for logins and messages.

use super::*;

/// Most sources tracked by the per-address rate limiters before full
/// buckets are forgotten.
pub(super) const MAX_TRACKED_SOURCES: usize = 4096;

/// A token bucket's shape: `burst` tokens at once, one more every
/// `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens available at once.
    pub burst: u32,
    /// Time to earn one token back.
    pub interval: Duration,
}

impl RateLimit {
    /// No practical limit (for benchmarks).
    pub const UNLIMITED: RateLimit = RateLimit {
        burst: u32::MAX / 2,
        interval: Duration::from_micros(1),
    };

    /// A burst of `burst`, then `n` per second.
    pub const fn per_second(burst: u32, n: u32) -> RateLimit {
        let n = if n == 0 { 1 } else { n as u64 };
        RateLimit {
            burst,
            interval: Duration::from_micros(1_000_000 / n),
        }
    }

    /// A burst of `burst`, then `n` per minute.
    pub const fn per_minute(burst: u32, n: u32) -> RateLimit {
        let n = if n == 0 { 1 } else { n as u64 };
        RateLimit {
            burst,
            interval: Duration::from_micros(60_000_000 / n),
        }
    }
}

pub(super) const TOKEN: u64 = 1_000_000;

/// A token bucket, in millionths of a token.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenBucket {
    micro_tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn full(now: Instant, limit: RateLimit) -> Self {
        TokenBucket {
            micro_tokens: u64::from(limit.burst) * TOKEN,
            last: now,
        }
    }

    pub(crate) fn refill(&mut self, now: Instant, limit: RateLimit) {
        let elapsed = now.saturating_since(self.last).as_micros();
        let add = elapsed.saturating_mul(TOKEN) / limit.interval.as_micros().max(1);
        self.micro_tokens = self
            .micro_tokens
            .saturating_add(add)
            .min(u64::from(limit.burst) * TOKEN);
        self.last = now;
    }

    pub(crate) fn has(&mut self, now: Instant, limit: RateLimit) -> bool {
        self.refill(now, limit);
        self.micro_tokens >= TOKEN
    }

    pub(crate) fn take(&mut self, now: Instant, limit: RateLimit) -> bool {
        if self.has(now, limit) {
            self.micro_tokens -= TOKEN;
            true
        } else {
            false
        }
    }

    /// Returns one token taken earlier (never above the burst).
    pub(crate) fn give_back(&mut self, now: Instant, limit: RateLimit) {
        self.refill(now, limit);
        self.micro_tokens = (self.micro_tokens + TOKEN).min(u64::from(limit.burst) * TOKEN);
    }

    pub(crate) fn is_full(&mut self, now: Instant, limit: RateLimit) -> bool {
        self.refill(now, limit);
        self.micro_tokens >= u64::from(limit.burst) * TOKEN
    }

    /// Takes every token (the other side said it has none).
    pub(crate) fn empty(&mut self, now: Instant) {
        self.micro_tokens = 0;
        self.last = now;
    }

    /// When one whole token is there.
    pub(crate) fn next_at(&self, limit: RateLimit) -> Instant {
        let missing = TOKEN.saturating_sub(self.micro_tokens);
        self.last
            + Duration::from_micros(
                missing
                    .saturating_mul(limit.interval.as_micros())
                    .div_ceil(TOKEN),
            )
    }

    /// Whole seconds until one token is back (at least 1).
    pub(crate) fn wait_secs(&self, limit: RateLimit) -> u64 {
        let missing = TOKEN.saturating_sub(self.micro_tokens);
        let micros = (missing as u128 * limit.interval.as_micros() as u128 / TOKEN as u128) as u64;
        micros.div_ceil(1_000_000).max(1)
    }
}

/// Forgets the sources whose buckets are full again.
pub(super) fn prune<K: Ord + Clone>(
    map: &mut BTreeMap<K, TokenBucket>,
    now: Instant,
    limit: RateLimit,
) {
    map.retain(|_, b| !b.is_full(now, limit));
}

impl Server {
    /// Seconds to wait if the account or the source address has used up its
    /// failed logins.
    /// Reserves one failure token from the account's bucket (unless
    /// `exempt_account`) and one from the address's bucket before a
    /// password check is submitted. Returns the reservation, or how many
    /// seconds to wait when either bucket is empty (then nothing is taken).
    pub(super) fn reserve_login_check(
        &mut self,
        now: Instant,
        key: &str,
        ip: IpAddr,
        exempt_account: bool,
    ) -> Result<Reservation, u64> {
        let limit = self.config.login_failures;
        let mut wait = None;
        if !exempt_account
            && let Some(b) = self.failures_by_account.get_mut(key)
            && !b.has(now, limit)
        {
            wait = Some(b.wait_secs(limit));
        }
        if let Some(b) = self.failures_by_ip.get_mut(&ip)
            && !b.has(now, limit)
        {
            wait = Some(wait.unwrap_or(0).max(b.wait_secs(limit)));
        }
        if let Some(wait) = wait {
            return Err(wait.max(1));
        }
        if !exempt_account {
            self.failures_by_account
                .entry(key.to_string())
                .or_insert_with(|| TokenBucket::full(now, limit))
                .take(now, limit);
        }
        self.failures_by_ip
            .entry(ip)
            .or_insert_with(|| TokenBucket::full(now, limit))
            .take(now, limit);
        if self.failures_by_account.len() > MAX_TRACKED_SOURCES {
            prune(&mut self.failures_by_account, now, limit);
        }
        if self.failures_by_ip.len() > MAX_TRACKED_SOURCES {
            prune(&mut self.failures_by_ip, now, limit);
        }
        Ok(Reservation {
            account: !exempt_account,
            ip,
        })
    }

    /// Gives back the tokens of a check that did not fail (right password,
    /// or no answer from the workers).
    pub(super) fn refund_login_check(&mut self, now: Instant, key: &str, r: Reservation) {
        let limit = self.config.login_failures;
        if r.account
            && let Some(b) = self.failures_by_account.get_mut(key)
        {
            b.give_back(now, limit);
        }
        if let Some(b) = self.failures_by_ip.get_mut(&r.ip) {
            b.give_back(now, limit);
        }
    }

    pub(crate) fn take_message_token(&mut self, now: Instant, conn: u64) -> bool {
        let limit = self.config.messages;
        self.sessions
            .get_mut(&conn)
            .is_some_and(|s| s.messages.take(now, limit))
    }

    pub(super) fn rate_limited(&mut self, conn: u64) {
        self.stats.messages_rate_limited += 1;
        let l = self.config.messages;
        let per_sec = 1_000_000 / l.interval.as_micros().max(1);
        self.error(
            conn,
            ErrorCode::RateLimited,
            format!(
                "slow down: at most {} messages at once, then {per_sec} per second; this one was not sent",
                l.burst
            ),
        );
    }
}

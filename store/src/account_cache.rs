//! Accounts kept in memory: every authenticated request reads its caller's account (so
//! that a disabled user or a changed role takes effect at once), and a database round
//! trip per request was most of what an API request cost.
//!
//! A cached account is only trusted while this process sees every change to it
//! ([`Store::set_caching`]):
//! - `Sole`: this process alone writes the database (SQLite inside the data dir it
//!   holds the lock of), and every write of an account goes through [`Store`], which
//!   drops the cached copy as it commits;
//! - `Notified` (PostgreSQL, several API processes): each account write also sends
//!   `NOTIFY longin_users` in its transaction, and [`Store::follow_account_changes`]
//!   LISTENs. While that connection is down, nothing cached is trusted and every read
//!   goes to the database, as without a cache.
//!
//! A read that raced a change must not put the old row back: each drop bumps an epoch,
//! and a row read under an older epoch is returned but not kept.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use crate::Store;
use crate::caching::{Caching, GuardedMap};
use crate::users::UserRecord;

/// The PostgreSQL NOTIFY channel of account changes; the payload is the user's id.
pub const CHANNEL: &str = "longin_users";

/// More accounts than this and the cache starts over (memory stays bounded whatever
/// the number of accounts).
const CAPACITY: usize = 10_000;

#[derive(Debug)]
pub(crate) struct AccountCache {
    /// A [`Caching`] as a number: 0 off, 1 sole, 2 notified.
    mode: AtomicU8,
    /// `Notified` only: the LISTEN connection is up.
    listening: AtomicBool,
    entries: GuardedMap<String, UserRecord>,
}

impl Default for AccountCache {
    fn default() -> Self {
        Self {
            mode: AtomicU8::new(0),
            listening: AtomicBool::new(false),
            entries: GuardedMap::new(CAPACITY),
        }
    }
}

impl AccountCache {
    fn trusted(&self) -> bool {
        match self.mode.load(Ordering::Acquire) {
            1 => true,
            2 => self.listening.load(Ordering::Acquire),
            _ => false,
        }
    }

    /// The cached account, if there is one to trust.
    pub(crate) fn get(&self, id: &str) -> Option<UserRecord> {
        if !self.trusted() {
            return None;
        }
        let hit = self.entries.get(id);
        metrics::counter!("longin_account_cache_total", "result" => if hit.is_some() { "hit" } else { "miss" })
            .increment(1);
        hit
    }

    /// The epoch to pass to [`Self::keep`] for a read starting now.
    pub(crate) fn epoch(&self) -> u64 {
        self.entries.epoch()
    }

    /// Keeps `user`, read from the database under `epoch`, unless something changed
    /// since.
    pub(crate) fn keep(&self, epoch: u64, user: &UserRecord) {
        if self.trusted() {
            self.entries.keep(epoch, user.id.clone(), user.clone());
        }
    }

    /// Drops the cached copy of `id` (it changed).
    pub(crate) fn forget(&self, id: &str) {
        self.entries.forget(id);
    }

    pub(crate) fn set_mode(&self, mode: Caching) {
        self.entries.forget_all();
        let n = match mode {
            Caching::Off => 0,
            Caching::Sole => 1,
            Caching::Notified => 2,
        };
        self.mode.store(n, Ordering::Release);
    }

    fn set_listening(&self, up: bool) {
        // Whatever changed while nobody listened is unknown: start over either way.
        self.entries.forget_all();
        self.listening.store(up, Ordering::Release);
    }
}

impl Store {
    /// LISTENs for account changes made by other processes until `cancel` fires,
    /// reconnecting with backoff; cached accounts are trusted only while listening.
    /// Returns at once on SQLite.
    pub async fn follow_account_changes(&self, cancel: CancellationToken) {
        if self.backend() != crate::Backend::Postgres {
            return;
        }
        let cache = self.accounts();
        crate::listen::listen(
            self.url(),
            CHANNEL,
            &cancel,
            |id| cache.forget(id),
            |up| cache.set_listening(up),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quotas::Quota;
    use crate::users::Role;

    fn user(id: &str, disabled: bool) -> UserRecord {
        UserRecord {
            id: id.to_owned(),
            username: id.to_owned(),
            email: format!("{id}@example.com"),
            password_hash: String::new(),
            role: Role::User,
            disabled,
            created_at: 0,
            updated_at: 0,
            last_login: None,
            quota: Quota::default(),
        }
    }

    #[test]
    fn off_keeps_nothing_and_sole_keeps_until_forgotten() {
        let cache = AccountCache::default();
        cache.keep(cache.epoch(), &user("a", false));
        assert!(cache.get("a").is_none(), "off by default");
        cache.set_mode(Caching::Sole);
        cache.keep(cache.epoch(), &user("a", false));
        assert!(cache.get("a").is_some_and(|u| !u.disabled));
        cache.forget("a");
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = AccountCache::default();
        cache.set_mode(Caching::Sole);
        // A request reads the account; meanwhile an admin disables it.
        let epoch = cache.epoch();
        let read_before_the_change = user("a", false);
        cache.forget("a");
        cache.keep(epoch, &read_before_the_change);
        assert!(cache.get("a").is_none(), "the stale row stayed");
    }

    #[test]
    fn notified_trusts_only_while_listening() {
        let cache = AccountCache::default();
        cache.set_mode(Caching::Notified);
        cache.keep(cache.epoch(), &user("a", false));
        assert!(cache.get("a").is_none(), "not listening yet");
        cache.set_listening(true);
        cache.keep(cache.epoch(), &user("a", false));
        assert!(cache.get("a").is_some());
        cache.set_listening(false);
        assert!(cache.get("a").is_none(), "connection lost");
        cache.set_listening(true);
        assert!(cache.get("a").is_none(), "what was kept before is dropped");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = AccountCache::default();
        cache.set_mode(Caching::Sole);
        for i in 0..=CAPACITY {
            cache.keep(cache.epoch(), &user(&i.to_string(), false));
        }
        let kept = cache.entries.len();
        assert!(kept <= CAPACITY, "{kept}");
    }
}

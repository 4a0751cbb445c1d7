//! Which applications exist and at which resourceVersion, kept in memory when this
//! process is the database's only writer ([`Caching::Sole`]).
//!
//! Readers of an application's JSON keep renderings per resourceVersion (the API's
//! `rendered` module) and need only the current version to use one; with this index a
//! hit needs no database round trip at all, which on SQLite cost more than the rest
//! of the request. Every write of applications goes through the five [`Store`]
//! methods that call [`Store::applications_changed`] after their transaction, which
//! empties the index; the next read fills it again. With other writers (PostgreSQL),
//! versions are always read from the database.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::caching::{Caching, GuardedMap};
use crate::{Store, StoreError};

/// Owners whose lists are kept plus applications kept; beyond it the index starts over.
const CAPACITY: usize = 20_000;

/// (uid, resourceVersion) of applications, by (owner id, name), and whole lists by
/// owner id (`None`: everyone's).
#[derive(Debug)]
pub(crate) struct ApplicationIndex {
    trusted: AtomicBool,
    one: GuardedMap<(String, String), Option<(String, i64)>>,
    lists: GuardedMap<Option<String>, Vec<(String, i64)>>,
}

impl Default for ApplicationIndex {
    fn default() -> Self {
        Self {
            trusted: AtomicBool::new(false),
            one: GuardedMap::new(CAPACITY),
            lists: GuardedMap::new(CAPACITY),
        }
    }
}

impl ApplicationIndex {
    pub(crate) fn set_mode(&self, mode: Caching) {
        self.forget_all();
        self.trusted.store(mode == Caching::Sole, Ordering::Release);
    }

    fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    pub(crate) fn forget_all(&self) {
        self.one.forget_all();
        self.lists.forget_all();
    }
}

impl Store {
    /// Answers reads from memory where this process sees every change, as `mode`
    /// says: accounts (see [`crate::account_cache`]) and, for the only writer,
    /// applications' versions (see [`crate::application_index`]). With
    /// [`Caching::Notified`], run [`Store::follow_account_changes`] too.
    pub fn set_caching(&self, mode: Caching) {
        self.accounts().set_mode(mode);
        self.application_index().set_mode(mode);
    }

    /// To be called after every transaction that writes `applications` (committed or
    /// not): the index forgets everything.
    pub(crate) fn applications_changed(&self) {
        self.application_index().forget_all();
    }

    /// The uid and resourceVersion of one application of an owner: what a reader
    /// with a rendering cached under that version needs to know it is current.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn application_version(
        &self,
        owner_id: &str,
        name: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let index = self.application_index();
        let key = (owner_id.to_owned(), name.to_owned());
        if index.trusted()
            && let Some(found) = index.one.get(&key)
        {
            return Ok(found);
        }
        let epoch = index.one.epoch();
        let found = self.read_application_version(owner_id, name).await?;
        if index.trusted() {
            index.one.keep(epoch, key, found.clone());
        }
        Ok(found)
    }

    /// The uid and resourceVersion of each application [`Store::list_applications`]
    /// would return, in its order.
    ///
    /// # Errors
    /// Only database failures.
    pub async fn application_versions(
        &self,
        owner_id: Option<&str>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let index = self.application_index();
        let key = owner_id.map(str::to_owned);
        if index.trusted()
            && let Some(found) = index.lists.get(&key)
        {
            return Ok(found);
        }
        let epoch = index.lists.epoch();
        let found = self.read_application_versions(owner_id).await?;
        if index.trusted() {
            index.lists.keep(epoch, key, found.clone());
        }
        Ok(found)
    }
}

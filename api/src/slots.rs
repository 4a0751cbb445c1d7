//! Places per user for long-lived streams (log follows, Kubernetes watches): each
//! holds a task, buffers and a connection, so one user must not be able to open
//! thousands. A place is given back when its [`Slot`] is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug)]
struct Inner {
    open: Mutex<HashMap<String, usize>>,
    per_user: usize,
    /// The counter of refusals, e.g. `longin_log_streams_refused_total`.
    refused: &'static str,
}

/// How many streams of one kind each user holds, and how many they may.
#[derive(Debug, Clone)]
pub struct PerUserSlots {
    inner: Arc<Inner>,
}

/// One held place; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot {
    slots: PerUserSlots,
    user_id: String,
}

impl PerUserSlots {
    #[must_use]
    pub fn new(per_user: usize, refused: &'static str) -> Self {
        Self {
            inner: Arc::new(Inner {
                open: Mutex::default(),
                per_user,
                refused,
            }),
        }
    }

    /// A place for one more stream of `user_id`, or `None` when the user holds as many
    /// as allowed.
    #[must_use]
    pub fn admit(&self, user_id: &str) -> Option<Slot> {
        let mut open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(user_id.to_owned()).or_default();
        if *n >= self.inner.per_user {
            metrics::counter!(self.inner.refused).increment(1);
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            user_id: user_id.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_holds_at_most_the_limit_and_a_dropped_slot_comes_back() {
        let slots = PerUserSlots::new(2, "test_refused_total");
        let a = slots.admit("alice").expect("first");
        let _b = slots.admit("alice").expect("second");
        assert!(slots.admit("alice").is_none(), "third refused");
        assert!(
            slots.admit("bob").is_some(),
            "others are not limited by alice"
        );
        drop(a);
        assert!(slots.admit("alice").is_some(), "the place came back");
    }
}

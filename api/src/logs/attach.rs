//! Which of an application's containers a log follower attaches to, and from which
//! line: the pure decision behind following an app across restarts and rollouts.

use std::collections::{HashMap, HashSet};

/// History lines a container gained after the follower started (a replacement, a
/// rollout, a scale-up, a restart in place) is read from: all it printed, within
/// the most a request may ask for (history waits for the client, so this bounds time,
/// not memory).
pub const CATCH_UP_TAIL: usize = 10_000;

/// Where one container's lines start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// History lines to read first (0: none).
    pub tail: usize,
    /// Only history lines at or after this instant (Unix nanoseconds).
    pub since_ns: Option<i64>,
    /// Followed lines not newer than this (or than the last history line) are
    /// dropped: the shared engine stream starts at a whole second and can carry
    /// lines already sent.
    pub live_after_ns: i64,
}

impl Start {
    /// A container followed from the subscription on, after its last `tail` lines
    /// (since `since_ns`): `now_ns` is when its live stream was subscribed.
    #[must_use]
    pub fn at_subscription(tail: usize, since_ns: Option<i64>, now_ns: i64) -> Self {
        Self {
            tail,
            since_ns,
            live_after_ns: now_ns,
        }
    }

    /// A container new to the follower: from its first line.
    #[must_use]
    pub fn from_first_line() -> Self {
        Self {
            tail: CATCH_UP_TAIL,
            since_ns: None,
            live_after_ns: i64::MIN,
        }
    }

    /// A container running again: from the line after `last_seen_ns`, the last one
    /// its previous follower sent (`i64::MIN`: it had sent none, so from its start).
    #[must_use]
    pub fn after(last_seen_ns: i64) -> Self {
        Self {
            tail: CATCH_UP_TAIL,
            since_ns: (last_seen_ns > i64::MIN).then(|| last_seen_ns.saturating_add(1)),
            live_after_ns: last_seen_ns,
        }
    }
}

/// A container as the application's listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub docker_id: String,
    pub replica: i64,
    pub restart_count: i64,
    pub running: bool,
}

impl Listed {
    /// The store's record, if the container exists in the engine yet.
    #[must_use]
    pub fn from_record(c: &longin_store::containers::ContainerRecord) -> Option<Self> {
        Some(Self {
            docker_id: c.docker_id.clone()?,
            replica: c.replica_index,
            restart_count: c.restart_count,
            running: c.status == "running",
        })
    }
}

/// A container to attach to, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attach {
    pub docker_id: String,
    pub replica: i64,
    pub start: Start,
}

/// What the follower of one application follows, and where the others stopped.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Only this replica's containers.
    replica: Option<i64>,
    /// Followed now: nothing to decide about them until their follower ends.
    following: HashSet<String>,
    /// Where each ended follower stopped (its last line's time) and the container's
    /// restart count then: more restarts later mean it runs again.
    stopped: HashMap<String, (i64, i64)>,
    /// The restart count of each container as last listed.
    restarts: HashMap<String, i64>,
}

impl Tracker {
    /// A tracker of `replica`'s containers (all with `None`).
    #[must_use]
    pub fn new(replica: Option<i64>) -> Self {
        Self {
            replica,
            ..Self::default()
        }
    }

    /// Whether the tracker is about `c`'s replica.
    #[must_use]
    pub fn wants(&self, c: &Listed) -> bool {
        self.replica.is_none_or(|r| r == c.replica)
    }

    /// `docker_id` is followed from now on.
    pub fn attached(&mut self, docker_id: &str) {
        self.following.insert(docker_id.to_owned());
        self.stopped.remove(docker_id);
    }

    /// `docker_id`'s follower ended after its line at `last_seen_ns`.
    pub fn ended(&mut self, docker_id: &str, last_seen_ns: i64) {
        self.following.remove(docker_id);
        let count = self.restarts.get(docker_id).copied().unwrap_or(0);
        self.stopped
            .insert(docker_id.to_owned(), (last_seen_ns, count));
    }

    /// `attach` could not be followed: said once, tried again only once it restarts.
    pub fn refused(&mut self, attach: &Attach) {
        let count = self.restarts.get(&attach.docker_id).copied().unwrap_or(0);
        self.stopped.insert(
            attach.docker_id.clone(),
            (attach.start.live_after_ns, count),
        );
    }

    /// The containers of `listing` to attach to now: those new to the tracker from
    /// their first line, and those that run again (their restart count moved — it
    /// also drops when the crash-loop window starts over) from where their follower
    /// stopped. Containers gone from the listing are forgotten.
    pub fn plan(&mut self, listing: &[Listed]) -> Vec<Attach> {
        for c in listing {
            self.restarts.insert(c.docker_id.clone(), c.restart_count);
        }
        let listed: HashSet<&str> = listing.iter().map(|c| c.docker_id.as_str()).collect();
        self.stopped.retain(|id, _| listed.contains(id.as_str()));
        self.restarts.retain(|id, _| listed.contains(id.as_str()));
        let mut attach = Vec::new();
        for c in listing {
            if !self.wants(c) || self.following.contains(&c.docker_id) {
                continue;
            }
            let start = match self.stopped.get(&c.docker_id) {
                None => Start::from_first_line(),
                Some(&(last_seen, count)) if c.restart_count != count && c.running => {
                    Start::after(last_seen)
                }
                Some(_) => continue,
            };
            attach.push(Attach {
                docker_id: c.docker_id.clone(),
                replica: c.replica,
                start,
            });
        }
        attach
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: &str, replica: i64, restarts: i64, running: bool) -> Listed {
        Listed {
            docker_id: id.to_owned(),
            replica,
            restart_count: restarts,
            running,
        }
    }

    fn ids(attach: &[Attach]) -> Vec<(&str, Start)> {
        attach
            .iter()
            .map(|a| (a.docker_id.as_str(), a.start))
            .collect()
    }

    #[test]
    fn followed_containers_are_left_alone_and_new_ones_start_at_their_first_line() {
        let mut t = Tracker::new(None);
        t.attached("a");
        let plan = t.plan(&[listed("a", 0, 0, true), listed("b", 1, 0, true)]);
        assert_eq!(ids(&plan), [("b", Start::from_first_line())]);
        assert_eq!(plan[0].replica, 1);
    }

    #[test]
    fn a_container_restarted_in_place_goes_on_after_its_last_line() {
        let mut t = Tracker::new(None);
        t.attached("a");
        assert!(t.plan(&[listed("a", 0, 0, true)]).is_empty());
        t.ended("a", 42);
        // Stopped, not restarted yet: nothing to do.
        assert!(t.plan(&[listed("a", 0, 0, false)]).is_empty());
        // Counted a restart but not running yet: wait.
        assert!(t.plan(&[listed("a", 0, 1, false)]).is_empty());
        let plan = t.plan(&[listed("a", 0, 1, true)]);
        assert_eq!(ids(&plan), [("a", Start::after(42))]);
        assert_eq!(plan[0].start.since_ns, Some(43));
        assert_eq!(plan[0].start.live_after_ns, 42);
    }

    #[test]
    fn a_restart_count_that_drops_is_a_restart_too() {
        let mut t = Tracker::new(None);
        t.plan(&[listed("a", 0, 4, true)]);
        t.attached("a");
        t.ended("a", 7);
        assert_eq!(
            ids(&t.plan(&[listed("a", 0, 0, true)])),
            [("a", Start::after(7))]
        );
    }

    #[test]
    fn a_container_that_printed_nothing_restarts_from_its_start() {
        let start = Start::after(i64::MIN);
        assert_eq!(start.since_ns, None);
        assert_eq!(start.live_after_ns, i64::MIN);
    }

    #[test]
    fn a_refused_container_is_tried_again_only_after_a_restart() {
        let mut t = Tracker::new(None);
        let plan = t.plan(&[listed("a", 0, 0, true)]);
        t.refused(&plan[0]);
        assert!(t.plan(&[listed("a", 0, 0, true)]).is_empty());
        assert_eq!(
            ids(&t.plan(&[listed("a", 0, 1, true)])),
            [("a", Start::after(i64::MIN))]
        );
    }

    #[test]
    fn only_the_wanted_replica_and_forgotten_when_gone() {
        let mut t = Tracker::new(Some(1));
        let plan = t.plan(&[listed("a", 0, 0, true), listed("b", 1, 0, true)]);
        assert_eq!(ids(&plan), [("b", Start::from_first_line())]);
        t.attached("b");
        t.ended("b", 5);
        // Gone from the listing, then back with the same id: new again.
        assert!(t.plan(&[]).is_empty());
        assert_eq!(
            ids(&t.plan(&[listed("b", 1, 0, true)])),
            [("b", Start::from_first_line())]
        );
    }
}

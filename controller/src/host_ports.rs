//! Host ports that something other than Longin holds. The pool is a range of the
//! host's ports, and nothing stops another program (an operator's second API process,
//! say) from listening inside it; a replica given such a port must not be refused by
//! the engine for ever. Before starting a replica its port is probed with a bind;
//! a port that is busy, or that the engine says is taken, and that no container of
//! this installation holds, is set aside for a while and the replica moved to
//! another port at once.

use std::net::{IpAddr, TcpListener};
use std::time::Duration;

use crate::runtime::RuntimeError;

/// How long a port found held is skipped before it is looked at again.
pub const SET_ASIDE: Duration = Duration::from_secs(600);

/// Why `port` cannot be bound on `address` now, if it cannot.
#[must_use]
pub fn probe(address: IpAddr, port: u16) -> Option<String> {
    match TcpListener::bind((address, port)) {
        Ok(_) => None,
        Err(err) => Some(format!("{address}:{port} is in use on the host ({err})")),
    }
}

/// Whether the engine refused a replica because its host port is taken.
#[must_use]
pub fn is_port_conflict(err: &RuntimeError) -> bool {
    let text = err.to_string();
    ["port is already allocated", "address already in use"]
        .iter()
        .any(|needle| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listened_port_is_busy_and_a_released_one_free() {
        let held = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = held.local_addr().expect("addr").port();
        let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(probe(loopback, port).is_some_and(|why| why.contains("in use")));
        drop(held);
        assert_eq!(probe(loopback, port), None);
    }
}

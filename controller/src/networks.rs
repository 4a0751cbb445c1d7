//! Owners' networks: each owner's containers sit on a bridge network of their own, so
//! one tenant's containers cannot connect to another's (Docker isolates user-defined
//! bridges from each other), while an owner's apps reach each other by app name (a DNS
//! alias on that network). Each network's /24 subnet comes from a pool Longin manages
//! itself (`--network-pool`): Docker's default address pools hold only about thirty
//! bridge networks.
//!
//! Pure: the pool's arithmetic and the names. The engine calls are in `runtime`.

use std::net::Ipv4Addr;

/// A range of IPv4 addresses cut into /24 subnets, one per owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkPool {
    base: u32,
    prefix: u8,
}

/// Why a pool is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network pool {0}")]
pub struct PoolError(String);

impl NetworkPool {
    /// Parses `A.B.C.D/N` with N from 8 to 24 and no bits set past the prefix.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn parse(cidr: &str) -> Result<Self, PoolError> {
        let bad = |why: &str| PoolError(format!("{cidr:?}: {why}"));
        let (address, prefix) = cidr
            .split_once('/')
            .ok_or_else(|| bad("expected A.B.C.D/N, e.g. 10.224.0.0/12"))?;
        let address: Ipv4Addr = address.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| bad("the prefix is not a number"))?;
        if !(8..=24).contains(&prefix) {
            return Err(bad("the prefix must be 8 to 24 (each owner gets a /24)"));
        }
        let base = u32::from(address);
        if base & (u32::MAX >> prefix) != 0 {
            return Err(bad("the address has bits set past the prefix"));
        }
        Ok(Self { base, prefix })
    }

    /// How many owners' subnets fit.
    #[must_use]
    pub fn slots(self) -> u32 {
        1 << (24 - self.prefix)
    }

    /// Subnet `slot` (`A.B.C.0/24`) and its gateway (`A.B.C.1`), or `None` past the end.
    #[must_use]
    pub fn subnet(self, slot: u32) -> Option<(String, String)> {
        (slot < self.slots()).then(|| {
            let network = self.base + (slot << 8);
            (
                format!("{}/24", Ipv4Addr::from(network)),
                Ipv4Addr::from(network + 1).to_string(),
            )
        })
    }
}

impl NetworkPool {
    /// The slots whose subnets overlap any of `subnets` (`A.B.C.D/N`, as the engine
    /// lists its networks'): taken by some other network, so no owner may get them.
    #[must_use]
    pub fn overlapping_slots(self, subnets: &[String]) -> Vec<u32> {
        let pool_first = u64::from(self.base);
        let pool_last = pool_first + u64::from(self.slots()) * 256 - 1;
        let mut slots = Vec::new();
        for subnet in subnets {
            let Some((address, prefix)) = subnet.split_once('/') else {
                continue;
            };
            let (Ok(address), Ok(prefix)) = (address.parse::<Ipv4Addr>(), prefix.parse::<u32>())
            else {
                continue;
            };
            if prefix > 32 {
                continue;
            }
            let size = 1_u64 << (32 - prefix);
            let first = u64::from(u32::from(address)) & !(size - 1);
            let last = first + size - 1;
            if last < pool_first || first > pool_last {
                continue;
            }
            let from = (first.max(pool_first) - pool_first) / 256;
            let to = (last.min(pool_last) - pool_first) / 256;
            slots.extend((from..=to).filter_map(|s| u32::try_from(s).ok()));
        }
        slots.sort_unstable();
        slots.dedup();
        slots
    }
}

impl Default for NetworkPool {
    /// `10.224.0.0/12`: 4096 owners, outside Docker's own default pools (172.17–31,
    /// 192.168) and the 10.0/16 ranges home routers favour.
    fn default() -> Self {
        Self {
            base: u32::from(Ipv4Addr::new(10, 224, 0, 0)),
            prefix: 12,
        }
    }
}

impl std::fmt::Display for NetworkPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// The name of an owner's network: unique per installation and owner, readable in
/// `docker network ls`.
#[must_use]
pub fn network_name(installation: &str, owner_id: &str) -> String {
    let short = |s: &str, n: usize| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(n)
            .collect()
    };
    format!("longin-{}-{}", short(installation, 8), short(owner_id, 12))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_cut_into_one_24_per_owner() {
        let pool = NetworkPool::parse("10.224.0.0/12").expect("valid");
        assert_eq!(pool, NetworkPool::default());
        assert_eq!(pool.slots(), 4096);
        assert_eq!(
            pool.subnet(0),
            Some(("10.224.0.0/24".to_owned(), "10.224.0.1".to_owned()))
        );
        assert_eq!(
            pool.subnet(257),
            Some(("10.225.1.0/24".to_owned(), "10.225.1.1".to_owned()))
        );
        assert_eq!(
            pool.subnet(4095).map(|s| s.0),
            Some("10.239.255.0/24".to_owned())
        );
        assert_eq!(pool.subnet(4096), None);
        assert_eq!(
            NetworkPool::parse("192.168.5.0/24").expect("one").slots(),
            1
        );
    }

    #[test]
    fn subnets_of_other_networks_take_their_slots() {
        let pool = NetworkPool::default();
        let taken = pool.overlapping_slots(&[
            "10.224.0.0/24".to_owned(),
            "10.224.5.128/25".to_owned(),
            "10.224.16.0/22".to_owned(),
            "172.17.0.0/16".to_owned(),
            "10.0.0.0/8".to_owned(),
            "garbage".to_owned(),
        ]);
        // 10.0.0.0/8 covers the whole pool.
        assert_eq!(taken.len(), 4096);
        let taken = pool.overlapping_slots(&[
            "10.224.0.0/24".to_owned(),
            "10.224.5.128/25".to_owned(),
            "10.224.16.0/22".to_owned(),
            "172.17.0.0/16".to_owned(),
        ]);
        assert_eq!(taken, vec![0, 5, 16, 17, 18, 19]);
    }

    #[test]
    fn malformed_pools_are_refused() {
        for bad in [
            "10.224.0.0",
            "10.224.0.0/25",
            "10.224.0.0/7",
            "10.224.1.0/12",
            "x/12",
            "10.0.0.0/x",
        ] {
            assert!(NetworkPool::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_per_installation_and_owner() {
        let name = network_name("0f1e2d3c4b5a", "aaaa-bbbb-cccc-dddd");
        assert_eq!(name, "longin-0f1e2d3c-aaaabbbbcccc");
        assert_ne!(name, network_name("ffffffff", "aaaa-bbbb-cccc-dddd"));
    }
}

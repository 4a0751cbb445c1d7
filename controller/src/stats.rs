//! One container's resource use from the engine's stats, as numbers a chart can show.
//! Pure: the collector feeds it two consecutive one-shot samples, so every formula is
//! unit-tested without an engine.

use bollard::models::ContainerStatsResponse;

/// The cumulative counters of one stats reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    /// CPU time the container has used, in nanoseconds.
    pub cpu_total_ns: u64,
    /// CPU time the whole host has used (all cores), in nanoseconds.
    pub system_ns: u64,
    /// Cores the host has online.
    pub online_cpus: u32,
    /// Memory in use, without the page cache the kernel can drop at once.
    pub memory_bytes: u64,
    /// The container's memory limit (the host's memory when it has none).
    pub memory_limit_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
}

impl Sample {
    /// Reads the fields a sample needs; absent fields count as zero.
    #[must_use]
    pub fn from_stats(stats: &ContainerStatsResponse) -> Self {
        let cpu = stats.cpu_stats.as_ref();
        let memory = stats.memory_stats.as_ref();
        let usage = memory.and_then(|m| m.usage).unwrap_or(0);
        // As `docker stats` does: cgroup v2 reports `inactive_file`, v1
        // `total_inactive_file`; either is cache that does not count as used.
        let cache = memory
            .and_then(|m| m.stats.as_ref())
            .and_then(|s| {
                s.get("inactive_file")
                    .or_else(|| s.get("total_inactive_file"))
            })
            .copied()
            .unwrap_or(0);
        let (net_rx_bytes, net_tx_bytes) = stats
            .networks
            .iter()
            .flat_map(|n| n.values())
            .fold((0, 0), |(rx, tx), n| {
                (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
            });
        let (block_read_bytes, block_write_bytes) = stats
            .blkio_stats
            .iter()
            .flat_map(|b| b.io_service_bytes_recursive.iter().flatten())
            .fold((0, 0), |(r, w), e| {
                let v = e.value.unwrap_or(0);
                match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("read") => (r + v, w),
                    Some("write") => (r, w + v),
                    _ => (r, w),
                }
            });
        Self {
            cpu_total_ns: cpu
                .and_then(|c| c.cpu_usage.as_ref())
                .and_then(|u| u.total_usage)
                .unwrap_or(0),
            system_ns: cpu.and_then(|c| c.system_cpu_usage).unwrap_or(0),
            online_cpus: cpu.and_then(|c| c.online_cpus).unwrap_or(1).max(1),
            memory_bytes: usage.saturating_sub(cache),
            memory_limit_bytes: memory.and_then(|m| m.limit).unwrap_or(0),
            net_rx_bytes,
            net_tx_bytes,
            block_read_bytes,
            block_write_bytes,
        }
    }
}

/// CPU use between two samples, in cores (1.0 = one core fully busy).
///
/// The host's CPU time over the same span is the clock: `system_ns` advances by
/// `online_cpus` nanoseconds per nanosecond of wall time. `None` without an earlier
/// sample or when the counters went backwards (a restarted container).
#[must_use]
pub fn cpu_cores(previous: &Sample, current: &Sample) -> Option<f64> {
    let used = current.cpu_total_ns.checked_sub(previous.cpu_total_ns)?;
    let host = current.system_ns.checked_sub(previous.system_ns)?;
    if host == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    Some(used as f64 / host as f64 * f64::from(current.online_cpus))
}

/// One container's point: what the collector stores and streams.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// Percent of one core (200 = two cores busy).
    pub cpu_percent: f64,
    /// Percent of the CPU the container may use: its share of the host, which with
    /// Longin's share-based CPU is every online core.
    pub cpu_percent_of_limit: f64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
}

/// The point for `current`, with CPU from the span since `previous` (zero without one).
#[must_use]
pub fn usage(previous: Option<&Sample>, current: &Sample) -> Usage {
    let cores = previous.and_then(|p| cpu_cores(p, current)).unwrap_or(0.0);
    Usage {
        cpu_percent: cores * 100.0,
        cpu_percent_of_limit: cores * 100.0 / f64::from(current.online_cpus.max(1)),
        memory_bytes: current.memory_bytes,
        memory_limit_bytes: current.memory_limit_bytes,
        net_rx_bytes: current.net_rx_bytes,
        net_tx_bytes: current.net_tx_bytes,
        block_read_bytes: current.block_read_bytes,
        block_write_bytes: current.block_write_bytes,
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{
        ContainerBlkioStatEntry, ContainerBlkioStats, ContainerCpuStats, ContainerCpuUsage,
        ContainerMemoryStats, ContainerNetworkStats,
    };

    use super::*;

    fn stats(cpu: u64, system: u64, usage: u64, inactive_file: u64) -> ContainerStatsResponse {
        ContainerStatsResponse {
            cpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(cpu),
                    ..Default::default()
                }),
                system_cpu_usage: Some(system),
                online_cpus: Some(2),
                ..Default::default()
            }),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(usage),
                limit: Some(64 << 20),
                stats: Some([("inactive_file".to_owned(), inactive_file)].into()),
                ..Default::default()
            }),
            networks: Some(
                [
                    (
                        "eth0".to_owned(),
                        ContainerNetworkStats {
                            rx_bytes: Some(100),
                            tx_bytes: Some(10),
                            ..Default::default()
                        },
                    ),
                    (
                        "eth1".to_owned(),
                        ContainerNetworkStats {
                            rx_bytes: Some(1),
                            tx_bytes: Some(2),
                            ..Default::default()
                        },
                    ),
                ]
                .into(),
            ),
            blkio_stats: Some(ContainerBlkioStats {
                io_service_bytes_recursive: Some(vec![
                    ContainerBlkioStatEntry {
                        op: Some("read".into()),
                        value: Some(4096),
                        ..Default::default()
                    },
                    ContainerBlkioStatEntry {
                        op: Some("Write".into()),
                        value: Some(512),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reads_memory_without_cache_and_sums_networks_and_block_io() {
        let s = Sample::from_stats(&stats(0, 0, 10 << 20, 2 << 20));
        assert_eq!(s.memory_bytes, 8 << 20);
        assert_eq!(s.memory_limit_bytes, 64 << 20);
        assert_eq!((s.net_rx_bytes, s.net_tx_bytes), (101, 12));
        assert_eq!((s.block_read_bytes, s.block_write_bytes), (4096, 512));
        assert_eq!(s.online_cpus, 2);
    }

    #[test]
    fn cpu_is_the_share_of_host_time_times_the_cores() {
        // Over the span the host (2 cores) used 2 s of CPU, i.e. 1 s of wall time;
        // the container used 1 s: one core fully busy.
        let a = Sample::from_stats(&stats(5_000_000_000, 100_000_000_000, 0, 0));
        let b = Sample::from_stats(&stats(6_000_000_000, 102_000_000_000, 0, 0));
        let u = usage(Some(&a), &b);
        assert!((u.cpu_percent - 100.0).abs() < 1e-9, "{u:?}");
        assert!((u.cpu_percent_of_limit - 50.0).abs() < 1e-9, "{u:?}");
    }

    #[test]
    fn no_cpu_figure_without_a_usable_earlier_sample() {
        let b = Sample::from_stats(&stats(6, 100, 0, 0));
        assert!((usage(None, &b).cpu_percent).abs() < f64::EPSILON);
        // The container restarted: its counter went back.
        let restarted = Sample::from_stats(&stats(1, 200, 0, 0));
        assert_eq!(cpu_cores(&b, &restarted), None);
        // No host time passed.
        assert_eq!(cpu_cores(&b, &b), None);
    }
}

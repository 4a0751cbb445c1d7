//! Resource quantities, Kubernetes notation: memory (`512Mi`, `1Gi`, `256M`, bytes) and
//! CPU (`"1"`, `"0.5"`, `500m`).

/// Why a quantity does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("must be a number with an optional suffix (Ki, Mi, Gi, Ti, k, M, G, T), e.g. 512Mi")]
    Memory,
    #[error("must be a number of cores (\"1\", \"0.5\") or millicores (\"500m\")")]
    Cpu,
}

/// Splits `s` into its numeric part and suffix.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    s.split_at(end)
}

/// A decimal number with at most 9 fractional digits, scaled by 10^9 to stay integral.
fn parse_nano(number: &str) -> Option<u128> {
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.len() > 9 || fraction.contains('.') {
        return None;
    }
    let whole: u128 = whole.parse().ok()?;
    let fraction_value: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    let scale = 10u128.pow(9 - u32::try_from(fraction.len()).ok()?);
    whole
        .checked_mul(1_000_000_000)?
        .checked_add(fraction_value * scale)
}

/// Bytes in a memory quantity, rounded down.
///
/// # Errors
/// [`QuantityError::Memory`] for anything but a non-negative number with a known suffix.
pub fn parse_memory(s: &str) -> Result<u64, QuantityError> {
    let (number, suffix) = split_number(s.trim());
    let nano = parse_nano(number).ok_or(QuantityError::Memory)?;
    let multiplier: u128 = match suffix {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return Err(QuantityError::Memory),
    };
    let bytes = nano.checked_mul(multiplier).ok_or(QuantityError::Memory)? / 1_000_000_000;
    u64::try_from(bytes).map_err(|_| QuantityError::Memory)
}

/// Millicores in a CPU quantity, rounded down.
///
/// # Errors
/// [`QuantityError::Cpu`] for anything but a non-negative number of cores or millicores.
pub fn parse_cpu(s: &str) -> Result<u64, QuantityError> {
    let (number, suffix) = split_number(s.trim());
    let nano = parse_nano(number).ok_or(QuantityError::Cpu)?;
    let millis = match suffix {
        "" => nano / 1_000_000,
        "m" => nano / 1_000_000_000,
        _ => return Err(QuantityError::Cpu),
    };
    u64::try_from(millis).map_err(|_| QuantityError::Cpu)
}

/// The decimal integers `lo..=hi` (no leading zeros) as a regular expression without
/// anchors, e.g. `4..=65536` as `[4-9]|[1-9][0-9]|…|6553[0-6]`.
#[must_use]
pub fn integer_range_pattern(lo: u64, hi: u64) -> String {
    // Blocks `prefix [0-9]{k}` of 10^k numbers each, the largest that start at `start`
    // and stay within `hi`; runs of blocks that differ only in the prefix's last digit
    // become one `[a-b]`.
    let mut alternatives: Vec<String> = Vec::new();
    let mut start = lo;
    let mut run: Option<(u64, u32, u64, u64)> = None; // (prefix / 10, k, first digit, last digit)
    let flush = |run: Option<(u64, u32, u64, u64)>, out: &mut Vec<String>| {
        if let Some((high, k, first, last)) = run {
            let high = if high == 0 {
                String::new()
            } else {
                high.to_string()
            };
            let digit = if first == last {
                first.to_string()
            } else {
                format!("[{first}-{last}]")
            };
            let tail = match k {
                0 => String::new(),
                1 => "[0-9]".to_owned(),
                k => format!("[0-9]{{{k}}}"),
            };
            out.push(format!("{high}{digit}{tail}"));
        }
    };
    while start <= hi {
        let mut k = 0;
        while start > 0
            && start.is_multiple_of(10u64.pow(k + 1))
            && start
                .checked_add(10u64.pow(k + 1) - 1)
                .is_some_and(|end| end <= hi)
        {
            k += 1;
        }
        let prefix = start / 10u64.pow(k);
        let (high, digit) = (prefix / 10, prefix % 10);
        run = match run {
            Some((h, rk, first, last)) if h == high && rk == k && last + 1 == digit => {
                Some((h, rk, first, digit))
            }
            other => {
                flush(other, &mut alternatives);
                Some((high, k, digit, digit))
            }
        };
        match start.checked_add(10u64.pow(k)) {
            Some(next) => start = next,
            None => break,
        }
    }
    flush(run, &mut alternatives);
    alternatives.join("|")
}

/// The memory quantities validation accepts (4Mi to 64Gi), as a JSON Schema: a whole
/// number of bytes, or a string of a whole number with a suffix. Fractions (`1.5Gi`)
/// are accepted too but not described: a pattern cannot bound them.
#[must_use]
pub fn memory_schema(min_bytes: u64, max_bytes: u64) -> serde_json::Value {
    let suffixes: [(&str, u64); 10] = [
        ("", 1),
        ("k", 1_000),
        ("K", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
    ];
    let alternatives: Vec<String> = suffixes
        .iter()
        .filter_map(|&(suffix, unit)| {
            let (lo, hi) = (min_bytes.div_ceil(unit), max_bytes / unit);
            (lo <= hi).then(|| format!("({}){suffix}", integer_range_pattern(lo, hi)))
        })
        .collect();
    serde_json::json!({
        "anyOf": [
            {"type": "string", "pattern": format!("^({})$", alternatives.join("|"))},
            {"type": "integer", "minimum": min_bytes, "maximum": max_bytes},
        ]
    })
}

/// The CPU quantities validation accepts (1m to `max_millicores`, a whole number of
/// cores), as a JSON Schema: a number of cores (rounded down to millicores), or a
/// string of cores (`"2"`, `"0.5"`: at most 9 decimals, at least 1m) or of millicores
/// (`"500m"`).
#[must_use]
pub fn cpu_schema(max_millicores: u64) -> serde_json::Value {
    let max_cores = max_millicores / 1000;
    let cores = integer_range_pattern(1, max_cores);
    let below = integer_range_pattern(1, max_cores - 1);
    let millicores = integer_range_pattern(1, max_millicores);
    // Fractions: under one core at least 0.001; from one core on any, up to the most.
    let fraction = format!(
        "0\\.([1-9][0-9]{{0,8}}|0[1-9][0-9]{{0,7}}|00[1-9][0-9]{{0,6}})|({below})\\.[0-9]{{1,9}}|{max_cores}\\.0{{1,9}}"
    );
    serde_json::json!({
        "anyOf": [
            {"type": "string", "pattern": format!("^(({cores})|{fraction}|({millicores})m)$")},
            {"type": "number", "minimum": 0.001, "maximum": max_cores},
        ]
    })
}

/// Millicores in a CPU quantity given as a number of cores, rounded down.
///
/// # Errors
/// [`QuantityError::Cpu`] for a negative, infinite or absurdly large number.
pub fn cpu_from_cores(cores: f64) -> Result<u64, QuantityError> {
    let millis = (cores * 1000.0).floor();
    if millis.is_finite() && (0.0..=1e15).contains(&millis) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(millis as u64)
    } else {
        Err(QuantityError::Cpu)
    }
}

/// Docker's CPU shares for a number of millicores: one core is 1024 shares.
#[must_use]
pub fn cpu_shares(millicores: u64) -> u64 {
    (millicores * 1024 / 1000).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_suffixes() {
        assert_eq!(parse_memory("512Mi"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_memory("1Gi"), Ok(1 << 30));
        assert_eq!(parse_memory("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_memory("256M"), Ok(256_000_000));
        assert_eq!(parse_memory("4096"), Ok(4096));
        assert_eq!(parse_memory("64Ki"), Ok(65536));
        for bad in ["", "Mi", "12XB", "-1Mi", "1..5Gi", ".5Gi", "1e9", "one"] {
            assert_eq!(parse_memory(bad), Err(QuantityError::Memory), "{bad}");
        }
    }

    #[test]
    fn cpu_cores_and_millicores() {
        assert_eq!(parse_cpu("1"), Ok(1000));
        assert_eq!(parse_cpu("0.5"), Ok(500));
        assert_eq!(parse_cpu("500m"), Ok(500));
        assert_eq!(parse_cpu("2.25"), Ok(2250));
        assert_eq!(parse_cpu("0"), Ok(0));
        for bad in ["", "m", "1c", "-1", "half"] {
            assert_eq!(parse_cpu(bad), Err(QuantityError::Cpu), "{bad}");
        }
    }

    #[test]
    fn integer_ranges_match_exactly_their_numbers() {
        for (lo, hi) in [
            (1, 9),
            (4, 65536),
            (5, 68719),
            (1, 256_000),
            (4195, 68_719_476),
            (10, 10),
            (7, 1000),
        ] {
            let pattern = regex::Regex::new(&format!("^({})$", integer_range_pattern(lo, hi)))
                .expect("regex");
            for n in lo.saturating_sub(50)..=(lo + 2000).min(hi + 50) {
                assert_eq!(
                    pattern.is_match(&n.to_string()),
                    (lo..=hi).contains(&n),
                    "{n} in {lo}..={hi}"
                );
            }
            for n in hi.saturating_sub(2000)..=hi + 2000 {
                assert_eq!(
                    pattern.is_match(&n.to_string()),
                    (lo..=hi).contains(&n),
                    "{n} in {lo}..={hi}"
                );
            }
            assert!(!pattern.is_match(&format!("0{lo}")), "no leading zeros");
        }
    }

    proptest::proptest! {
        #[test]
        fn memory_the_schema_allows_is_in_range(
            text in crate::matching(
                memory_schema(4 << 20, 64 << 30)["anyOf"][0]["pattern"].as_str().expect("pattern")
            )
        ) {
            let bytes = parse_memory(&text);
            proptest::prop_assert!(bytes.as_ref().is_ok_and(|b| ((4 << 20)..=(64 << 30)).contains(b)), "{text}: {bytes:?}");
        }

        #[test]
        fn cpu_the_schema_allows_is_in_range(
            text in crate::matching(
                cpu_schema(256_000)["anyOf"][0]["pattern"].as_str().expect("pattern")
            )
        ) {
            let millis = parse_cpu(&text);
            proptest::prop_assert!(millis.as_ref().is_ok_and(|m| (1..=256_000).contains(m)), "{text}: {millis:?}");
        }
    }

    #[test]
    fn cores_as_numbers_round_down_to_millicores() {
        assert_eq!(cpu_from_cores(0.5), Ok(500));
        assert_eq!(cpu_from_cores(0.001), Ok(1));
        assert_eq!(cpu_from_cores(0.001_500_000_1), Ok(1));
        assert_eq!(cpu_from_cores(0.000_9), Ok(0));
        assert_eq!(cpu_from_cores(-1.0), Err(QuantityError::Cpu));
        assert_eq!(cpu_from_cores(f64::INFINITY), Err(QuantityError::Cpu));
    }

    #[test]
    fn one_core_is_1024_shares() {
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_shares(500), 512);
        assert_eq!(cpu_shares(1), 2, "Docker's minimum");
    }
}

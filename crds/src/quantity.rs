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
    fn one_core_is_1024_shares() {
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_shares(500), 512);
        assert_eq!(cpu_shares(1), 2, "Docker's minimum");
    }
}

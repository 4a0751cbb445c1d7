//! A time given as a query parameter (`since`, `until`): RFC 3339 or Unix seconds.

use crate::error::FieldErrors;

/// A time parameter: RFC 3339 or Unix seconds, as Unix milliseconds; a problem is
/// recorded under `field`.
pub(crate) fn instant(field: &str, text: &str, errors: &mut FieldErrors) -> Option<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        // Within chrono's range (±262 000 years), so differences cannot overflow.
        return chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| t.timestamp_millis())
            .or_else(|| {
                errors.insert(field.to_owned(), "out of range".to_owned());
                None
            });
    }
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => Some(t.timestamp_millis()),
        Err(_) => {
            errors.insert(
                field.to_owned(),
                "expected an RFC 3339 time (2026-11-26T10:00:00Z) or Unix seconds".to_owned(),
            );
            None
        }
    }
}

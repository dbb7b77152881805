//! The wall clock as Unix epoch counts: the crate's one reader of `SystemTime::now()` for
//! timestamps. A clock set before 1970 reads as zero.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Milliseconds since the Unix epoch, as stored records and the API count them.
pub fn now_ms() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch, unsigned, as the Getui protocol counts them.
pub fn now_ms_u64() -> u64 {
    u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds since the Unix epoch, as WeCom counts them.
pub fn now_s() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_readings_agree() {
        let (s, ms, ms_u) = (now_s(), now_ms(), now_ms_u64());
        assert!(s > 1_600_000_000, "{s}");
        assert!(ms / 1000 >= s && ms / 1000 - s <= 1, "{ms} {s}");
        assert!(ms_u >= ms as u64 && ms_u - ms as u64 <= 1000, "{ms_u} {ms}");
    }
}

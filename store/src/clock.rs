//! The one clock helper: the current time as the database stores it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (`registration_time`); 0 if the system
/// clock is before the epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

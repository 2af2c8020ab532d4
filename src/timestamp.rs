//! ISO-8601 UTC timestamps, as Segment expects them.

use std::fmt;

use time::OffsetDateTime;

/// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ` without allocating.
struct Iso(OffsetDateTime);

impl fmt::Display for Iso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

/// A Currents `time` (UNIX seconds, already range-checked) as Segment's `timestamp`.
pub(crate) fn iso8601_seconds(seconds: i64) -> impl fmt::Display {
    // Range-checked by the parser (0..=year 9999), so the fallback is unreachable in practice.
    Iso(OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH))
}

/// A wall-clock instant, such as `sentAt`, in the same format.
pub(crate) fn iso8601_millis(at: OffsetDateTime) -> String {
    Iso(at.to_offset(time::UtcOffset::UTC)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_become_iso_8601_and_never_1970() {
        assert_eq!(iso8601_seconds(1_477_502_783).to_string(), "2016-10-26T17:26:23.000Z");
        assert_eq!(iso8601_seconds(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_seconds(253_402_300_799).to_string(), "9999-12-31T23:59:59.000Z");
    }

    #[test]
    fn instants_keep_milliseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(iso8601_millis(at), "2023-11-14T22:13:20.123Z");
    }
}

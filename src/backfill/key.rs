//! Object keys of a Currents storage export and which of them a run must read. Pure.
//!
//! Braze's layout (<https://www.braze.com/docs/user_guide/data/distribution/braze_currents/event_delivery_semantics>):
//! `<prefix>/dataexport.<cluster>.<conn>.integration.<id>/event_type=<T>/date=<YYYY-MM-DD-HH>/<schema-id>/<zone>/<name>+<partition>+<offset>.avro`.
//! `date=` is the UTC hour Braze queued the events, not their `time`.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// What the key of one object says about it. Fields are `None` outside Braze's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyInfo<'k> {
    pub event_type: Option<&'k str>,
    /// Start of the queue hour, UNIX seconds.
    pub queued_hour: Option<i64>,
}

/// Reads `event_type=` and `date=` from any path segment of `key`.
pub(crate) fn parse_key(key: &str) -> KeyInfo<'_> {
    let mut info = KeyInfo {
        event_type: None,
        queued_hour: None,
    };
    for segment in key.split('/') {
        if let Some(event_type) = segment.strip_prefix("event_type=") {
            info.event_type = Some(event_type).filter(|t| !t.is_empty());
        } else if let Some(date) = segment.strip_prefix("date=") {
            info.queued_hour = parse_hour(date);
        }
    }
    info
}

/// `YYYY-MM-DD-HH` (UTC) to UNIX seconds.
pub(crate) fn parse_hour(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let hour: u8 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let at = PrimitiveDateTime::new(date, Time::from_hms(hour, 0, 0).ok()?);
    Some(at.assume_utc().unix_timestamp())
}

/// Whether an `.avro` object is worth reading, from its key alone.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyFilter {
    /// Event types to read; empty = all.
    pub event_types: Vec<String>,
    /// Earliest event `time` wanted, UNIX seconds.
    pub since: Option<i64>,
    /// Event `time` wanted strictly before this, UNIX seconds.
    pub until: Option<i64>,
    /// How long after an event Braze may queue it, in hours: folders up to `until + lag` are read.
    pub lag_hours: u32,
}

impl KeyFilter {
    /// `true` when the key may hold wanted events. Keys outside Braze's layout are kept and
    /// judged on their decoded records.
    pub(crate) fn wants(&self, key: &str) -> bool {
        if !key.ends_with(".avro") {
            return false;
        }
        let info = parse_key(key);
        if let Some(event_type) = info.event_type
            && !self.wants_type(event_type)
        {
            return false;
        }
        let Some(hour) = info.queued_hour else { return true };
        // An event is queued at or after its `time`, so a folder that closed before `since`
        // cannot hold a wanted event.
        if self.since.is_some_and(|since| hour + 3_600 <= since) {
            return false;
        }
        self.until
            .is_none_or(|until| hour < until + i64::from(self.lag_hours) * 3_600)
    }

    pub(crate) fn wants_type(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }

    /// Whether a decoded event `time` falls in `[since, until)`.
    pub(crate) fn wants_time(&self, time: i64) -> bool {
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time < until)
    }
}

/// `2025-03-07T14:00:00Z` (RFC 3339) or a bare `2025-03-07` (midnight UTC) to UNIX seconds.
pub(crate) fn parse_instant(text: &str) -> Result<i64, String> {
    if let Ok(at) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(at.unix_timestamp());
    }
    let date_only = text.len() == 10 && text.as_bytes().get(4) == Some(&b'-');
    date_only
        .then(|| parse_hour(&format!("{text}-00")))
        .flatten()
        .ok_or_else(|| format!("`{text}` is not an RFC 3339 time (2025-03-07T14:00:00Z) or a date (2025-03-07)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "currents/dataexport.prod-03.S3.integration.5d3f/event_type=users.messages.email.Open/date=2025-03-07-14/512/a/dataexport.prod-03.S3.integration.5d3f+0+0000123456.avro";

    #[test]
    fn braze_keys_give_their_type_and_queue_hour() {
        let info = parse_key(KEY);
        assert_eq!(info.event_type, Some("users.messages.email.Open"));
        assert_eq!(info.queued_hour, Some(parse_instant("2025-03-07T14:00:00Z").unwrap()));
        assert_eq!(parse_key("x/y.avro").event_type, None);
        assert_eq!(parse_hour("2025-13-07-14"), None);
        assert_eq!(parse_hour("2025-03-07"), None);
    }

    #[test]
    fn folders_are_pruned_from_since_to_until_plus_lag() {
        let filter = KeyFilter {
            event_types: vec!["users.messages.email.Open".into()],
            since: Some(parse_instant("2025-03-07T14:30:00Z").unwrap()),
            until: Some(parse_instant("2025-03-07T16:00:00Z").unwrap()),
            lag_hours: 2,
        };
        let at = |hour: &str| KEY.replace("2025-03-07-14", hour);
        assert!(!filter.wants(&at("2025-03-07-13")));
        assert!(filter.wants(&at("2025-03-07-14")));
        assert!(filter.wants(&at("2025-03-07-17")));
        assert!(!filter.wants(&at("2025-03-07-18")));
        assert!(!filter.wants(&KEY.replace("email.Open", "email.Send")));
        assert!(!filter.wants(&KEY.replace(".avro", ".json")));
        assert!(filter.wants("any/tree/file.avro"));
        assert!(filter.wants_time(filter.since.unwrap()));
        assert!(!filter.wants_time(filter.until.unwrap()));
    }

    #[test]
    fn instants_take_rfc3339_or_a_date() {
        assert_eq!(parse_instant("1970-01-02").unwrap(), 86_400);
        assert_eq!(parse_instant("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(parse_instant("yesterday").is_err());
    }
}

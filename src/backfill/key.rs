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

/// Which events a run takes, by time. Times are UNIX seconds; `until` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// Events whose `time` is in `[since, until)`, from the `date=` folders that may hold them:
    /// the hour of `since` up to `until` plus `lag_hours` (Braze queues an event at or after its
    /// `time`). Objects outside Braze's layout are read and judged on their records.
    EventTime {
        since: Option<i64>,
        until: Option<i64>,
        lag_hours: u32,
    },
    /// Every event of the objects whose `date=` hour `[H, H + 1 h)` overlaps `[since, until)`,
    /// whatever their `time`: an hour the window only touches is read whole. An object with no
    /// `date=YYYY-MM-DD-HH` folder cannot be placed and is never read.
    QueueHour { since: Option<i64>, until: Option<i64> },
}

impl Default for Selection {
    fn default() -> Self {
        Self::EventTime {
            since: None,
            until: None,
            lag_hours: 0,
        }
    }
}

/// What the key filter says about one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Read it.
    Read,
    /// Not wanted: another type, another window, or not `.avro`.
    Pass,
    /// Selecting by queue hour, and the key has no `date=YYYY-MM-DD-HH` folder.
    NoQueueHour,
}

/// Whether an `.avro` object is worth reading, from its key alone.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyFilter {
    /// Event types to read; empty = all.
    pub event_types: Vec<String>,
    /// The time window and how it is applied.
    pub selection: Selection,
}

impl KeyFilter {
    /// Reads `key`'s type and queue hour and judges the object by them. Selecting by event
    /// time, keys outside Braze's layout are read and judged on their decoded records.
    pub(crate) fn verdict(&self, key: &str) -> Verdict {
        if !key.ends_with(".avro") {
            return Verdict::Pass;
        }
        let info = parse_key(key);
        if let Some(event_type) = info.event_type
            && !self.wants_type(event_type)
        {
            return Verdict::Pass;
        }
        let wanted = match (self.selection, info.queued_hour) {
            (Selection::QueueHour { .. }, None) => return Verdict::NoQueueHour,
            (Selection::EventTime { .. }, None) => true,
            (
                Selection::EventTime {
                    since,
                    until,
                    lag_hours,
                },
                Some(hour),
            ) => {
                // An event is queued at or after its `time`, so a folder that closed before
                // `since` cannot hold a wanted event.
                let lag = i64::from(lag_hours) * 3_600;
                since.is_none_or(|since| hour + 3_600 > since) && until.is_none_or(|until| hour < until + lag)
            }
            (Selection::QueueHour { since, until }, Some(hour)) => {
                since.is_none_or(|since| hour + 3_600 > since) && until.is_none_or(|until| hour < until)
            }
        };
        if wanted { Verdict::Read } else { Verdict::Pass }
    }

    pub(crate) fn wants_type(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }

    /// Whether a decoded event `time` is kept: in `[since, until)` when selecting by event
    /// time; always when selecting by queue hour (the object's hour already decided).
    pub(crate) fn wants_time(&self, time: i64) -> bool {
        match self.selection {
            Selection::EventTime { since, until, .. } => {
                since.is_none_or(|since| time >= since) && until.is_none_or(|until| time < until)
            }
            Selection::QueueHour { .. } => true,
        }
    }

    /// One line for the summary: the window mode and the `date=` folders it reads, e.g.
    /// `queued hour: every event in the date= folders 2026-03-02-09 to 2026-03-05-17 …`.
    pub(crate) fn describe(&self) -> String {
        let (first, last) = self.folders();
        let folders = format!(
            "date= folders {} to {}",
            first.map_or("(first)".to_owned(), format_hour),
            last.map_or("(last)".to_owned(), format_hour)
        );
        match self.selection {
            Selection::EventTime {
                since,
                until,
                lag_hours,
            } => format!(
                "event time: events whose `time` is in [{}, {}), from the {folders} (--lag-hours {lag_hours})",
                since.map_or("(any)".to_owned(), format_instant),
                until.map_or("(any)".to_owned(), format_instant),
            ),
            Selection::QueueHour { .. } => {
                format!("queued hour: every event in the {folders}, whole hours, whatever its `time`")
            }
        }
    }

    /// The first and last `date=` hour the window reads (start of hour, UNIX seconds).
    fn folders(&self) -> (Option<i64>, Option<i64>) {
        let (since, last_after) = match self.selection {
            Selection::EventTime {
                since,
                until,
                lag_hours,
            } => (since, until.map(|u| u + i64::from(lag_hours) * 3_600)),
            Selection::QueueHour { since, until } => (since, until),
        };
        let hour_of = |t: i64| t.div_euclid(3_600) * 3_600;
        (since.map(hour_of), last_after.map(|end| hour_of(end - 1)))
    }
}

/// UNIX seconds as Braze's `date=` hour, `YYYY-MM-DD-HH` (UTC).
pub(crate) fn format_hour(at: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(at) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}-{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour()
        ),
        Err(_) => at.to_string(),
    }
}

/// UNIX seconds as RFC 3339 (UTC).
fn format_instant(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| at.to_string())
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

    fn reads(filter: &KeyFilter, key: &str) -> bool {
        filter.verdict(key) == Verdict::Read
    }

    /// The hours of 2025-03-07, among 10 to 19, whose `date=` folder the filter reads.
    fn hours_read(filter: &KeyFilter) -> Vec<u32> {
        let at = |hour: u32| KEY.replace("2025-03-07-14", &format!("2025-03-07-{hour:02}"));
        (10..20).filter(|hour| reads(filter, &at(*hour))).collect()
    }

    #[test]
    fn folders_are_pruned_from_since_to_until_plus_lag() {
        let filter = KeyFilter {
            event_types: vec!["users.messages.email.Open".into()],
            selection: Selection::EventTime {
                since: Some(parse_instant("2025-03-07T14:30:00Z").unwrap()),
                until: Some(parse_instant("2025-03-07T16:00:00Z").unwrap()),
                lag_hours: 2,
            },
        };
        assert_eq!(hours_read(&filter), [14, 15, 16, 17]);
        assert!(!reads(&filter, &KEY.replace("email.Open", "email.Send")));
        assert!(!reads(&filter, &KEY.replace(".avro", ".json")));
        assert!(reads(&filter, "any/tree/file.avro"));
        assert!(filter.wants_time(parse_instant("2025-03-07T14:30:00Z").unwrap()));
        assert!(!filter.wants_time(parse_instant("2025-03-07T16:00:00Z").unwrap()));
        assert!(!filter.wants_time(0));
        assert_eq!(
            filter.describe(),
            "event time: events whose `time` is in [2025-03-07T14:30:00Z, 2025-03-07T16:00:00Z), \
             from the date= folders 2025-03-07-14 to 2025-03-07-17 (--lag-hours 2)"
        );
    }

    #[test]
    fn the_queue_hour_reads_every_hour_the_window_overlaps_whole_and_every_event_in_it() {
        let filter = KeyFilter {
            event_types: Vec::new(),
            selection: Selection::QueueHour {
                since: Some(parse_instant("2025-03-07T14:30:00Z").unwrap()),
                until: Some(parse_instant("2025-03-07T16:00:00Z").unwrap()),
            },
        };
        // 14 overlaps [14:30, 16:00) by half an hour: read whole. 16 starts at `until`: not read.
        assert_eq!(hours_read(&filter), [14, 15]);
        assert!(!reads(&filter, &KEY.replace(".avro", ".json")));
        assert_eq!(filter.verdict("any/tree/file.avro"), Verdict::NoQueueHour);
        let day_only = KEY.replace("2025-03-07-14", "2025-03-07");
        assert_eq!(filter.verdict(&day_only), Verdict::NoQueueHour);
        assert!(filter.wants_time(0) && filter.wants_time(i64::MAX));
        assert_eq!(
            filter.describe(),
            "queued hour: every event in the date= folders 2025-03-07-14 to 2025-03-07-15, \
             whole hours, whatever its `time`"
        );
        let open = KeyFilter {
            selection: Selection::QueueHour {
                since: None,
                until: None,
            },
            ..filter
        };
        let at = |hour: &str| KEY.replace("2025-03-07-14", hour);
        assert!(reads(&open, &at("1999-01-01-00")) && reads(&open, &at("2099-12-31-23")));
        assert_eq!(
            open.describe(),
            "queued hour: every event in the date= folders (first) to (last), whole hours, whatever its `time`"
        );
    }

    #[test]
    fn instants_take_rfc3339_or_a_date() {
        assert_eq!(parse_instant("1970-01-02").unwrap(), 86_400);
        assert_eq!(parse_instant("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(parse_instant("yesterday").is_err());
    }
}

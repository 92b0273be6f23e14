//! Times as providers write them: RFC 3339 with an offset, local times without one (which take
//! the time zone of the event's location: a US state's main zone, else the country's capital's),
//! and split date and time fields. Without an offset or a known location, a local time is UTC.

use bitshipper_core::Location;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;

/// US state and territory codes to their main time zone (split states take the zone most of
/// their population lives in).
const US_STATES: &[(&str, Tz)] = &[
    ("AL", Tz::America__Chicago),
    ("AK", Tz::America__Anchorage),
    ("AZ", Tz::America__Phoenix),
    ("AR", Tz::America__Chicago),
    ("CA", Tz::America__Los_Angeles),
    ("CO", Tz::America__Denver),
    ("CT", Tz::America__New_York),
    ("DE", Tz::America__New_York),
    ("DC", Tz::America__New_York),
    ("FL", Tz::America__New_York),
    ("GA", Tz::America__New_York),
    ("HI", Tz::Pacific__Honolulu),
    ("ID", Tz::America__Boise),
    ("IL", Tz::America__Chicago),
    ("IN", Tz::America__Indiana__Indianapolis),
    ("IA", Tz::America__Chicago),
    ("KS", Tz::America__Chicago),
    ("KY", Tz::America__New_York),
    ("LA", Tz::America__Chicago),
    ("ME", Tz::America__New_York),
    ("MD", Tz::America__New_York),
    ("MA", Tz::America__New_York),
    ("MI", Tz::America__Detroit),
    ("MN", Tz::America__Chicago),
    ("MS", Tz::America__Chicago),
    ("MO", Tz::America__Chicago),
    ("MT", Tz::America__Denver),
    ("NE", Tz::America__Chicago),
    ("NV", Tz::America__Los_Angeles),
    ("NH", Tz::America__New_York),
    ("NJ", Tz::America__New_York),
    ("NM", Tz::America__Denver),
    ("NY", Tz::America__New_York),
    ("NC", Tz::America__New_York),
    ("ND", Tz::America__Chicago),
    ("OH", Tz::America__New_York),
    ("OK", Tz::America__Chicago),
    ("OR", Tz::America__Los_Angeles),
    ("PA", Tz::America__New_York),
    ("RI", Tz::America__New_York),
    ("SC", Tz::America__New_York),
    ("SD", Tz::America__Chicago),
    ("TN", Tz::America__Chicago),
    ("TX", Tz::America__Chicago),
    ("UT", Tz::America__Denver),
    ("VT", Tz::America__New_York),
    ("VA", Tz::America__New_York),
    ("WA", Tz::America__Los_Angeles),
    ("WV", Tz::America__New_York),
    ("WI", Tz::America__Chicago),
    ("WY", Tz::America__Denver),
    ("PR", Tz::America__Puerto_Rico),
    ("GU", Tz::Pacific__Guam),
    ("VI", Tz::America__St_Thomas),
];

/// Countries (ISO 3166-1 alpha-2) to their capital's zone.
const COUNTRIES: &[(&str, Tz)] = &[
    ("US", Tz::America__New_York),
    ("CA", Tz::America__Toronto),
    ("MX", Tz::America__Mexico_City),
    ("GB", Tz::Europe__London),
    ("IE", Tz::Europe__Dublin),
    ("DE", Tz::Europe__Berlin),
    ("FR", Tz::Europe__Paris),
    ("NL", Tz::Europe__Amsterdam),
    ("BE", Tz::Europe__Brussels),
    ("ES", Tz::Europe__Madrid),
    ("PT", Tz::Europe__Lisbon),
    ("IT", Tz::Europe__Rome),
    ("CH", Tz::Europe__Zurich),
    ("AT", Tz::Europe__Vienna),
    ("PL", Tz::Europe__Warsaw),
    ("CZ", Tz::Europe__Prague),
    ("DK", Tz::Europe__Copenhagen),
    ("SE", Tz::Europe__Stockholm),
    ("NO", Tz::Europe__Oslo),
    ("FI", Tz::Europe__Helsinki),
    ("GR", Tz::Europe__Athens),
    ("TR", Tz::Europe__Istanbul),
    ("RU", Tz::Europe__Moscow),
    ("UA", Tz::Europe__Kyiv),
    ("CN", Tz::Asia__Shanghai),
    ("HK", Tz::Asia__Hong_Kong),
    ("TW", Tz::Asia__Taipei),
    ("JP", Tz::Asia__Tokyo),
    ("KR", Tz::Asia__Seoul),
    ("SG", Tz::Asia__Singapore),
    ("IN", Tz::Asia__Kolkata),
    ("AE", Tz::Asia__Dubai),
    ("IL", Tz::Asia__Jerusalem),
    ("AU", Tz::Australia__Sydney),
    ("NZ", Tz::Pacific__Auckland),
    ("BR", Tz::America__Sao_Paulo),
    ("AR", Tz::America__Argentina__Buenos_Aires),
    ("CL", Tz::America__Santiago),
    ("CO", Tz::America__Bogota),
    ("ZA", Tz::Africa__Johannesburg),
    ("EG", Tz::Africa__Cairo),
    ("NG", Tz::Africa__Lagos),
    ("TH", Tz::Asia__Bangkok),
    ("VN", Tz::Asia__Ho_Chi_Minh),
    ("MY", Tz::Asia__Kuala_Lumpur),
    ("ID", Tz::Asia__Jakarta),
    ("PH", Tz::Asia__Manila),
];

/// The zone of a location: a US state's, else the country's, else none.
pub fn zone_for(location: Option<&Location>) -> Option<Tz> {
    let location = location?;
    let country = location
        .country
        .as_deref()
        .map(|c| c.trim().to_ascii_uppercase());
    let region = location
        .region
        .as_deref()
        .map(|r| r.trim().to_ascii_uppercase());
    let us = matches!(country.as_deref(), None | Some("US") | Some("USA"));
    if us {
        if let Some(r) = &region {
            if let Some((_, tz)) = US_STATES.iter().find(|(s, _)| s == r) {
                return Some(*tz);
            }
        }
    }
    let country = country?;
    COUNTRIES
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, tz)| *tz)
}

/// Gives a local wall-clock time the offset of `zone` (or UTC). An ambiguous time (the hour
/// repeated when clocks go back) takes the earlier instant; a time that does not exist (the
/// hour skipped when clocks go forward) is read in the offset before the change.
pub fn localize(naive: NaiveDateTime, zone: Option<Tz>) -> DateTime<FixedOffset> {
    let utc = FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("zero is a valid offset"));
    match zone {
        None => utc.from_utc_datetime(&naive),
        Some(tz) => match tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => t.fixed_offset(),
            chrono::LocalResult::Ambiguous(early, _) => early.fixed_offset(),
            chrono::LocalResult::None => {
                let before = tz.offset_from_utc_datetime(&(naive - chrono::Duration::hours(3)));
                let offset = before.fix();
                offset
                    .from_local_datetime(&naive)
                    .single()
                    .unwrap_or_else(|| utc.from_utc_datetime(&naive))
            }
        },
    }
}

/// Parses RFC 3339 (offset kept), or a local ISO date-time (`T` or space, optional fraction,
/// optional trailing `Z`-less form) placed in the location's zone.
pub fn parse_time(
    text: &str,
    location: Option<&Location>,
) -> Result<DateTime<FixedOffset>, String> {
    let t = text.trim();
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(t) {
        return Ok(with_offset);
    }
    // Offsets without a colon (`+0000`, `-0500`), as some providers write them.
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(with_offset) = DateTime::parse_from_str(t, format) {
            return Ok(with_offset);
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(localize(naive, zone_for(location)));
        }
    }
    Err(format!(
        "'{}' is not a date-time (expected ISO 8601, with or without an offset)",
        t.chars().take(40).collect::<String>()
    ))
}

/// A date `YYYYMMDD` and a time `HHMMSS` (or `HHMM`) as separate fields, local to `location`.
pub fn parse_compact(
    date: &str,
    time: &str,
    location: Option<&Location>,
) -> Result<DateTime<FixedOffset>, String> {
    let date = date.trim();
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'{}' is not a date (YYYYMMDD)",
            date.chars().take(20).collect::<String>()
        ));
    }
    let d = NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|_| {
        format!(
            "'{}' is not a date (YYYYMMDD)",
            date.chars().take(20).collect::<String>()
        )
    })?;
    let time = time.trim();
    let t = NaiveTime::parse_from_str(time, "%H%M%S")
        .or_else(|_| NaiveTime::parse_from_str(time, "%H%M"))
        .map_err(|_| {
            format!(
                "'{}' is not a time (HHMMSS)",
                time.chars().take(20).collect::<String>()
            )
        })?;
    Ok(localize(d.and_time(t), zone_for(location)))
}

/// Parses an offset such as `-05:00`, `-0500` or `-5`.
pub fn parse_offset(text: &str) -> Option<FixedOffset> {
    let t = text.trim();
    let (sign, rest) = match t.chars().next()? {
        '+' => (1, &t[1..]),
        '-' => (-1, &t[1..]),
        _ => (1, t),
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None if rest.len() == 4 => (rest[..2].parse().ok()?, rest[2..].parse().ok()?),
        None => (rest.parse().ok()?, 0),
    };
    if h > 14 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(city: &str, region: &str, country: &str) -> Location {
        Location {
            city: Some(city.into()),
            region: Some(region.into()),
            country: Some(country.into()),
            ..Default::default()
        }
    }

    #[test]
    fn offsets_are_kept_and_local_times_take_the_location_zone() {
        let t = parse_time("2026-02-10T14:05:00-05:00", None).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-02-10T14:05:00-05:00");
        let t = parse_time("2026-02-10T14:05:00Z", None).unwrap();
        assert_eq!(t.offset().local_minus_utc(), 0);
        let t = parse_time("2026-02-10T14:05:00", Some(&at("Austin", "TX", "US"))).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-02-10T14:05:00-06:00");
        let t = parse_time("2026-07-10 14:05:00", Some(&at("Louisville", "KY", "US"))).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-07-10T14:05:00-04:00");
        let t = parse_time("2026-07-10T14:05:00", Some(&at("Berlin", "", "DE"))).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-07-10T14:05:00+02:00");
        let t = parse_time("2026-07-10T14:05:00", None).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-07-10T14:05:00+00:00");
        let t = parse_time("2026-07-10T14:05:00+0200", None).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-07-10T14:05:00+02:00");
        assert!(parse_time("yesterday", None).is_err());
    }

    #[test]
    fn compact_dates_times_and_offsets() {
        let t = parse_compact("20260210", "140500", Some(&at("Atlanta", "GA", "US"))).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-02-10T14:05:00-05:00");
        assert!(parse_compact("2026021", "140500", None).is_err());
        assert_eq!(parse_offset("-05:00").unwrap().local_minus_utc(), -5 * 3600);
        assert_eq!(
            parse_offset("+0530").unwrap().local_minus_utc(),
            5 * 3600 + 1800
        );
        assert_eq!(parse_offset("-5").unwrap().local_minus_utc(), -5 * 3600);
        assert!(parse_offset("x").is_none());
    }

    #[test]
    fn skipped_and_repeated_hours_resolve() {
        // 2026-03-08 02:30 does not exist in New York; 2026-11-01 01:30 happens twice.
        let ny = Some(Tz::America__New_York);
        let skipped = NaiveDate::from_ymd_opt(2026, 3, 8)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(localize(skipped, ny).offset().local_minus_utc(), -5 * 3600);
        let repeated = NaiveDate::from_ymd_opt(2026, 11, 1)
            .unwrap()
            .and_hms_opt(1, 30, 0)
            .unwrap();
        assert_eq!(localize(repeated, ny).offset().local_minus_utc(), -4 * 3600);
    }
}

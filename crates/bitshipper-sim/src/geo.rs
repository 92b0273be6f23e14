//! Places: the city table (GeoNames via `data/cities.csv`), great-circle distances, and local
//! time with the daylight-saving rules the cities follow.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc, Weekday};
use std::sync::OnceLock;

const CITIES_CSV: &str = include_str!("../data/cities.csv");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstRule {
    Us,
    Eu,
    None,
}

#[derive(Debug, Clone)]
pub struct City {
    pub name: String,
    /// State or province code (empty outside the US and Canada).
    pub region: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub lat: f64,
    pub lon: f64,
    pub timezone: String,
    pub std_offset_minutes: i32,
    pub dst: DstRule,
    pub population: u64,
}

impl City {
    pub fn is_us(&self) -> bool {
        self.country == "US"
    }

    /// The UTC offset in force at `at`.
    pub fn offset_at(&self, at: DateTime<Utc>) -> FixedOffset {
        let dst = match self.dst {
            DstRule::None => false,
            DstRule::Us => us_dst(at, self.std_offset_minutes),
            DstRule::Eu => eu_dst(at),
        };
        let minutes = self.std_offset_minutes + if dst { 60 } else { 0 };
        FixedOffset::east_opt(minutes * 60)
            .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
    }

    /// An instant given as local wall-clock time on `date` at `minute_of_day` in this city.
    pub fn local(&self, date: NaiveDate, minute_of_day: u32) -> DateTime<FixedOffset> {
        let naive = date.and_hms_opt(0, 0, 0).expect("midnight")
            + Duration::minutes(i64::from(minute_of_day));
        // The standard offset gives a first guess; re-evaluate with the offset in force.
        let guess =
            Utc.from_utc_datetime(&naive) - Duration::minutes(i64::from(self.std_offset_minutes));
        let offset = self.offset_at(guess);
        let utc =
            Utc.from_utc_datetime(&naive) - Duration::seconds(i64::from(offset.local_minus_utc()));
        utc.with_timezone(&offset)
    }
}

/// All cities, parsed once.
pub fn cities() -> &'static [City] {
    static CITIES: OnceLock<Vec<City>> = OnceLock::new();
    CITIES.get_or_init(|| parse_cities(CITIES_CSV))
}

fn parse_cities(text: &str) -> Vec<City> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("name,") && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() != 9 {
                return None;
            }
            Some(City {
                name: f[0].to_string(),
                region: f[1].to_string(),
                country: f[2].to_string(),
                lat: f[3].parse().ok()?,
                lon: f[4].parse().ok()?,
                timezone: f[5].to_string(),
                std_offset_minutes: f[6].parse().ok()?,
                dst: match f[7] {
                    "us" => DstRule::Us,
                    "eu" => DstRule::Eu,
                    _ => DstRule::None,
                },
                population: f[8].parse().ok()?,
            })
        })
        .collect()
}

/// Great-circle distance in kilometres (haversine, mean Earth radius).
pub fn distance_km(a: &City, b: &City) -> f64 {
    great_circle_km((a.lat, a.lon), (b.lat, b.lon))
}

/// Great-circle distance between two (latitude, longitude) points in degrees.
pub fn great_circle_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let dp = p2 - p1;
    let dl = (b.1 - a.1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}

fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, month, 1).expect("valid month");
    let shift = (7 + weekday.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
    first + Duration::days(i64::from(shift + 7 * (n - 1)))
}

fn last_weekday(year: i32, month: u32, weekday: Weekday) -> NaiveDate {
    let next_month = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("valid month");
    let last = next_month - Duration::days(1);
    let back = (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
    last - Duration::days(i64::from(back))
}

/// US rule: from the second Sunday of March 02:00 local to the first Sunday of November 02:00.
fn us_dst(at: DateTime<Utc>, std_offset_minutes: i32) -> bool {
    let local = at + Duration::minutes(i64::from(std_offset_minutes));
    let year = local.year();
    let start = nth_weekday(year, 3, Weekday::Sun, 2)
        .and_hms_opt(2, 0, 0)
        .expect("time");
    let end = nth_weekday(year, 11, Weekday::Sun, 1)
        .and_hms_opt(1, 0, 0)
        .expect("time");
    let l = local.naive_utc();
    l >= start && l < end
}

/// EU rule: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
fn eu_dst(at: DateTime<Utc>) -> bool {
    let year = at.year();
    let start = last_weekday(year, 3, Weekday::Sun)
        .and_hms_opt(1, 0, 0)
        .expect("time");
    let end = last_weekday(year, 10, Weekday::Sun)
        .and_hms_opt(1, 0, 0)
        .expect("time");
    let u = at.naive_utc();
    u >= start && u < end
}

/// US federal holidays on which carriers do not deliver (the ones parcel carriers observe).
pub fn is_us_holiday(d: NaiveDate) -> bool {
    let y = d.year();
    let fixed = |m, day| NaiveDate::from_ymd_opt(y, m, day) == Some(d);
    fixed(1, 1)
        || fixed(7, 4)
        || fixed(12, 25)
        || d == last_weekday(y, 5, Weekday::Mon)
        || d == nth_weekday(y, 9, Weekday::Mon, 1)
        || d == nth_weekday(y, 11, Weekday::Thu, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn city(name: &str) -> &'static City {
        cities().iter().find(|c| c.name == name).expect(name)
    }

    #[test]
    fn the_table_has_enough_real_places() {
        let all = cities();
        assert!(all.iter().filter(|c| c.is_us()).count() >= 150);
        assert!(all.iter().any(|c| !c.is_us()));
        let ny = city("New York City");
        assert!((ny.lat - 40.71).abs() < 0.01 && (ny.lon + 74.0).abs() < 0.01);
    }

    #[test]
    fn distances_are_great_circle() {
        let d = distance_km(city("New York City"), city("Los Angeles"));
        assert!((d - 3936.0).abs() < 15.0, "{d}");
    }

    #[test]
    fn local_time_follows_daylight_saving() {
        let ny = city("New York City");
        let july = ny.local(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(), 9 * 60);
        assert_eq!(july.offset().local_minus_utc(), -4 * 3600);
        let jan = ny.local(NaiveDate::from_ymd_opt(2026, 1, 15).unwrap(), 9 * 60);
        assert_eq!(jan.offset().local_minus_utc(), -5 * 3600);
        assert_eq!(jan.format("%H:%M").to_string(), "09:00");
        let phoenix = city("Phoenix");
        assert_eq!(
            phoenix
                .local(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(), 0)
                .offset()
                .local_minus_utc(),
            -7 * 3600
        );
        let london = city("London");
        assert_eq!(
            london
                .local(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(), 600)
                .offset()
                .local_minus_utc(),
            3600
        );
    }

    #[test]
    fn holidays() {
        assert!(is_us_holiday(
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
        )); // Thanksgiving
        assert!(is_us_holiday(NaiveDate::from_ymd_opt(2026, 5, 25).unwrap())); // Memorial Day
        assert!(!is_us_holiday(
            NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
        ));
    }
}

//! Places to coordinates for the distance features: a city of the gazetteer (GeoNames, the
//! simulator's table) by name and region, else the centroid of the region's cities, else the
//! country's; and the US holidays on which carriers do not deliver.

use bitshipper_sim::geo::{cities, great_circle_km};
use chrono::NaiveDate;
use rustc_hash::FxHashMap as HashMap;
use std::sync::OnceLock;

struct Gazetteer {
    /// City name → (region, country, lat, lon) of each city of that name.
    cities: HashMap<&'static str, Vec<(&'static str, &'static str, f64, f64)>>,
    /// Region code (or country code) → centroid of its cities.
    regions: HashMap<&'static str, (f64, f64)>,
}

fn gazetteer() -> &'static Gazetteer {
    static G: OnceLock<Gazetteer> = OnceLock::new();
    G.get_or_init(|| {
        let mut by_name: HashMap<&'static str, Vec<_>> = HashMap::default();
        let mut sums: HashMap<&'static str, (f64, f64, f64)> = HashMap::default();
        for c in cities() {
            by_name.entry(c.name.as_str()).or_default().push((
                c.region.as_str(),
                c.country.as_str(),
                c.lat,
                c.lon,
            ));
            for key in [c.region.as_str(), c.country.as_str()] {
                if !key.is_empty() {
                    let e = sums.entry(key).or_default();
                    *e = (e.0 + c.lat, e.1 + c.lon, e.2 + 1.0);
                }
            }
        }
        Gazetteer {
            cities: by_name,
            regions: sums
                .into_iter()
                .map(|(k, (lat, lon, n))| (k, (lat / n, lon / n)))
                .collect(),
        }
    })
}

/// Coordinates of a place known by city, region and country (any may be missing).
pub fn coordinates(
    city: Option<&str>,
    region: Option<&str>,
    country: Option<&str>,
) -> Option<(f64, f64)> {
    let g = gazetteer();
    let exact = city.and_then(|name| {
        g.cities.get(name)?.iter().find(|(r, c, _, _)| {
            region.is_none_or(|want| want == *r) && country.is_none_or(|want| want == *c)
        })
    });
    if let Some((_, _, lat, lon)) = exact {
        return Some((*lat, *lon));
    }
    region
        .and_then(|r| g.regions.get(r))
        .or_else(|| country.and_then(|c| g.regions.get(c)))
        .copied()
}

/// Kilometres between two places, when both are known.
pub fn distance_km(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => great_circle_km(a, b),
        _ => f64::NAN,
    }
}

/// US carrier holidays from `from` to `to`, both included (0 when `to` is before `from`).
pub fn holidays_between(from: NaiveDate, to: NaiveDate) -> u32 {
    if to < from {
        return 0;
    }
    let days = holidays();
    let count = days.partition_point(|d| *d <= to) - days.partition_point(|d| *d < from);
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// Every US carrier holiday from 2000 to 2100, in order (computed once).
fn holidays() -> &'static [NaiveDate] {
    static DAYS: OnceLock<Vec<NaiveDate>> = OnceLock::new();
    DAYS.get_or_init(|| {
        let (Some(first), Some(last)) = (
            NaiveDate::from_ymd_opt(2000, 1, 1),
            NaiveDate::from_ymd_opt(2100, 12, 31),
        ) else {
            return Vec::new();
        };
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .filter(|d| bitshipper_sim::geo::is_us_holiday(*d))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_resolve_to_cities_then_regions_then_countries() {
        let ny = coordinates(Some("New York City"), Some("NY"), Some("US"));
        let la = coordinates(Some("Los Angeles"), Some("CA"), Some("US"));
        let km = distance_km(ny, la);
        assert!((3900.0..4000.0).contains(&km), "{km}");
        // An unknown city falls back to its region's centroid, then to the country's.
        assert!(coordinates(Some("Nowhere"), Some("CA"), Some("US")).is_some());
        assert!(coordinates(None, None, Some("US")).is_some());
        assert!(coordinates(None, None, None).is_none());
        assert!(distance_km(ny, None).is_nan());
    }

    #[test]
    fn holidays_are_counted_inclusively() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap_or_default();
        assert_eq!(
            holidays_between(d(11, 20), d(11, 30)),
            1,
            "Thanksgiving 2026-11-26"
        );
        assert_eq!(holidays_between(d(12, 20), d(12, 31)), 1);
        assert_eq!(holidays_between(d(11, 27), d(11, 30)), 0);
        assert_eq!(holidays_between(d(11, 30), d(11, 20)), 0);
    }
}

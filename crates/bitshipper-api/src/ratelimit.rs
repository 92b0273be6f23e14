//! Rate limits, in process (GCRA token buckets from `governor`): requests per API key, and
//! failed authentications per client IP so keys cannot be guessed at speed. A refusal is a
//! `429` problem with `Retry-After`.

use bitshipper_core::ApiKeyId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RateLimitSettings {
    /// Sustained requests per second per key (0: no limit); bursts of twice that pass.
    pub per_key_per_second: u32,
    /// Failed authentications per minute per IP (0: no limit); bursts of a third of that pass.
    pub failed_auth_per_minute: u32,
}

#[derive(Debug)]
pub struct RateLimits {
    per_key: Option<DefaultKeyedRateLimiter<ApiKeyId>>,
    failed_auth: Option<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(s: RateLimitSettings) -> Self {
        let per_key = NonZeroU32::new(s.per_key_per_second).map(|rate| {
            let burst = NonZeroU32::new(s.per_key_per_second.saturating_mul(2)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        let failed_auth = NonZeroU32::new(s.failed_auth_per_minute).map(|rate| {
            let burst = NonZeroU32::new((s.failed_auth_per_minute / 3).max(1)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        Self {
            per_key,
            failed_auth,
            clock: DefaultClock::default(),
        }
    }

    /// `Err(seconds to wait)` when the key has used its allowance.
    pub fn check_key(&self, key: ApiKeyId) -> Result<(), u32> {
        match &self.per_key {
            None => Ok(()),
            Some(l) => l
                .check_key(&key)
                .map_err(|n| seconds(n.wait_time_from(self.clock.now()))),
        }
    }

    /// Counts a failed authentication from `ip`; `Err(seconds)` once it has failed too often.
    pub fn failed_auth(&self, ip: IpAddr) -> Result<(), u32> {
        match &self.failed_auth {
            None => Ok(()),
            Some(l) => l
                .check_key(&ip)
                .map_err(|n| seconds(n.wait_time_from(self.clock.now()))),
        }
    }

    /// Drops state of keys and IPs that are back to a full allowance (bounds memory).
    pub fn prune(&self) {
        if let Some(l) = &self.per_key {
            l.retain_recent();
        }
        if let Some(l) = &self.failed_auth {
            l.retain_recent();
        }
    }
}

fn seconds(d: Duration) -> u32 {
    u32::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0))
        .unwrap_or(u32::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits_and_keys_are_independent() {
        let limits = RateLimits::new(RateLimitSettings {
            per_key_per_second: 2,
            failed_auth_per_minute: 3,
        });
        let (a, b) = (ApiKeyId::new(), ApiKeyId::new());
        for _ in 0..4 {
            assert_eq!(limits.check_key(a), Ok(()));
        }
        assert!(limits.check_key(a).is_err());
        assert_eq!(limits.check_key(b), Ok(()));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(limits.failed_auth(ip), Ok(()));
        assert!(limits.failed_auth(ip).unwrap_err() >= 1);
    }

    #[test]
    fn zero_means_no_limit() {
        let limits = RateLimits::new(RateLimitSettings {
            per_key_per_second: 0,
            failed_auth_per_minute: 0,
        });
        let a = ApiKeyId::new();
        assert!((0..10_000).all(|_| limits.check_key(a).is_ok()));
    }
}

//! Per-client-IP rate limits (API §1.6): `login` burst 10 then 1 per 3 s, `refresh` burst 15
//! then 1 per 2 s, API-key creation burst 5 then 1 per 10 s. Token buckets in memory, per
//! server process; the clock is passed in, so tests step it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle ones (full again) are dropped.
const MAX_TRACKED: usize = 10_000;

/// One limit: `burst` requests at once, then one per `every`. The generic cell rate algorithm:
/// each client has a theoretical arrival time that every admitted request moves `every`
/// further; a request is refused while that time is more than `burst - 1` intervals ahead.
#[derive(Debug)]
pub struct RateLimit {
    burst: u32,
    every: Duration,
    arrivals: Mutex<HashMap<IpAddr, Instant>>,
}

impl RateLimit {
    pub fn new(burst: u32, every: Duration) -> Self {
        RateLimit {
            burst: burst.max(1),
            every,
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    pub fn login() -> Self {
        RateLimit::new(10, Duration::from_secs(3))
    }

    pub fn refresh() -> Self {
        RateLimit::new(15, Duration::from_secs(2))
    }

    pub fn api_key_creation() -> Self {
        RateLimit::new(5, Duration::from_secs(10))
    }

    /// Admits one request from `ip`, or says in how many whole seconds (at least 1) the next
    /// one will be admitted. Requests without a known address share one allowance.
    pub fn check(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let ip = ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let mut arrivals = self
            .arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if arrivals.len() >= MAX_TRACKED {
            // Clients whose allowance is whole again need no entry.
            arrivals.retain(|_, arrival| *arrival > now);
        }
        let arrival = arrivals.get(&ip).copied().unwrap_or(now).max(now);
        let tolerance = self.every * (self.burst - 1);
        let ahead = arrival - now;
        if ahead > tolerance {
            let wait = ahead - tolerance;
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(secs.max(1));
        }
        arrivals.insert(ip, arrival + self.every);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_request_per_interval() {
        let limit = RateLimit::login();
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        let start = Instant::now();
        for _ in 0..10 {
            assert_eq!(limit.check(ip, start), Ok(()));
        }
        assert_eq!(limit.check(ip, start), Err(3));
        // Another client is not affected.
        assert_eq!(
            limit.check(Some(IpAddr::from([192, 0, 2, 2])), start),
            Ok(())
        );
        assert_eq!(limit.check(ip, start + Duration::from_secs(2)), Err(1));
        assert_eq!(limit.check(ip, start + Duration::from_secs(3)), Ok(()));
        assert_eq!(limit.check(ip, start + Duration::from_secs(3)), Err(3));
    }
}

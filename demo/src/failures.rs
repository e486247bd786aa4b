//! Which requests fail: per-service rates, applied deterministically.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Rates are kept in parts per million so that "every tenth request" is exact.
const PPM: u64 = 1_000_000;

/// A bad `--error-rate` value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RateError {
    /// A rate that is not a number in `[0, 1]`.
    #[error("error rate {0:?}: expected a number between 0 and 1")]
    Invalid(String),
    /// A `service=rate` entry naming no known service.
    #[error("error rate {entry:?}: unknown service {service:?} (expected one of {known})")]
    UnknownService {
        /// The whole entry.
        entry: String,
        /// The service it names.
        service: String,
        /// The services there are, comma separated.
        known: String,
    },
}

/// Error rates per service, parsed from `0.05` (every service) or
/// `orders=0.1,pricing=0.02` (some services; a bare number sets the others).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorRates {
    default_ppm: u64,
    per_service: BTreeMap<String, u64>,
}

impl ErrorRates {
    /// Parses `spec`; `services` are the names a `service=rate` entry may use.
    pub fn parse(spec: &str, services: &[&str]) -> Result<Self, RateError> {
        let mut rates = Self::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.split_once('=') {
                Some((service, rate)) => {
                    let service = service.trim();
                    if !services.contains(&service) {
                        return Err(RateError::UnknownService {
                            entry: entry.to_owned(),
                            service: service.to_owned(),
                            known: services.join(", "),
                        });
                    }
                    rates
                        .per_service
                        .insert(service.to_owned(), parse_ppm(rate.trim())?);
                }
                None => rates.default_ppm = parse_ppm(entry)?,
            }
        }
        Ok(rates)
    }

    /// The failure schedule of `service`.
    pub fn schedule(&self, service: &str) -> Schedule {
        Schedule {
            ppm: self
                .per_service
                .get(service)
                .copied()
                .unwrap_or(self.default_ppm),
            seen: AtomicU64::new(0),
        }
    }
}

fn parse_ppm(rate: &str) -> Result<u64, RateError> {
    match rate.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok((r * PPM as f64).round() as u64),
        _ => Err(RateError::Invalid(rate.to_owned())),
    }
}

/// Decides, request by request, whether a service fails: request `n` (from 0) fails when
/// `floor((n + 1) · rate) > floor(n · rate)`, so any `k / rate` consecutive requests hold
/// exactly `k` failures.
#[derive(Debug)]
pub struct Schedule {
    ppm: u64,
    seen: AtomicU64,
}

impl Schedule {
    /// Counts one request and tells whether it fails.
    pub fn next_fails(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        (n + 1) * self.ppm / PPM > n * self.ppm / PPM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: [&str; 2] = ["orders", "pricing"];

    #[test]
    fn a_tenth_fails_every_tenth_request() {
        let rates = ErrorRates::parse("0.1", &SERVICES).unwrap();
        for service in SERVICES {
            let schedule = rates.schedule(service);
            let failed: Vec<usize> = (0..30).filter(|_| schedule.next_fails()).collect();
            assert_eq!(failed, [9, 19, 29], "{service}");
        }
    }

    #[test]
    fn failing_requests_are_evenly_spread() {
        let schedule = ErrorRates::parse("0.25", &SERVICES)
            .unwrap()
            .schedule("orders");
        let outcomes: Vec<bool> = (0..8).map(|_| schedule.next_fails()).collect();
        assert_eq!(
            outcomes,
            [false, false, false, true, false, false, false, true]
        );
    }

    #[test]
    fn per_service_rates_override_the_default() {
        let rates = ErrorRates::parse("orders=1, 0", &SERVICES).unwrap();
        let orders = rates.schedule("orders");
        assert!((0..5).all(|_| orders.next_fails()));
        let pricing = rates.schedule("pricing");
        assert!((0..5).all(|_| !pricing.next_fails()));
    }

    #[test]
    fn bad_rates_name_the_entry() {
        assert_eq!(
            ErrorRates::parse("1.5", &SERVICES),
            Err(RateError::Invalid("1.5".into()))
        );
        assert_eq!(
            ErrorRates::parse("cart=0.1", &SERVICES)
                .unwrap_err()
                .to_string(),
            "error rate \"cart=0.1\": unknown service \"cart\" (expected one of orders, pricing)"
        );
    }
}

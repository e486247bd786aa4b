//! The route mix of the traffic generator: `/orders=4,/inventory=3`, sent in a fixed,
//! interleaved order (smooth weighted round robin), so that any run of `sum(weights)`
//! requests holds each route exactly `weight` times.

/// A bad `--mix` value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MixError {
    /// An entry that is not `path=weight` with a path starting with `/`.
    #[error("mix entry {0:?}: expected /path=weight (e.g. /orders=4)")]
    Entry(String),
    /// No route with a weight above 0.
    #[error("the mix has no route with a weight above 0")]
    Empty,
}

/// Routes and their weights, and the position in the interleaved order.
#[derive(Clone, Debug)]
pub struct Mix {
    routes: Vec<(String, u32)>,
    current: Vec<i64>,
}

impl Mix {
    /// Parses `/orders=4,/inventory=3,/pricing`; a path without a weight weighs 1.
    pub fn parse(spec: &str) -> Result<Self, MixError> {
        let mut routes = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (path, weight) = match entry.split_once('=') {
                Some((path, weight)) => (
                    path.trim(),
                    weight
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| MixError::Entry(entry.to_owned()))?,
                ),
                None => (entry, 1),
            };
            if !path.starts_with('/') {
                return Err(MixError::Entry(entry.to_owned()));
            }
            if weight > 0 {
                routes.push((path.to_owned(), weight));
            }
        }
        if routes.is_empty() {
            return Err(MixError::Empty);
        }
        let current = vec![0; routes.len()];
        Ok(Self { routes, current })
    }

    /// The routes, in the order given.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(p, _)| p.as_str())
    }

    /// The next route to request.
    pub fn next_path(&mut self) -> &str {
        let total: i64 = self.routes.iter().map(|(_, w)| i64::from(*w)).sum();
        let mut best = 0;
        for (i, (_, weight)) in self.routes.iter().enumerate() {
            self.current[i] += i64::from(*weight);
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= total;
        &self.routes[best].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_holds_each_route_its_weight_interleaved() {
        let mut mix = Mix::parse("/orders=3, /inventory=1 ,/pricing=2").unwrap();
        let round: Vec<String> = (0..6).map(|_| mix.next_path().to_owned()).collect();
        assert_eq!(
            round,
            [
                "/orders",
                "/pricing",
                "/orders",
                "/inventory",
                "/pricing",
                "/orders"
            ]
        );
        let next: Vec<String> = (0..6).map(|_| mix.next_path().to_owned()).collect();
        assert_eq!(next, round);
    }

    #[test]
    fn weights_default_to_one_and_zero_drops_a_route() {
        let mut mix = Mix::parse("/a,/b=0,/c").unwrap();
        assert_eq!(mix.paths().collect::<Vec<_>>(), ["/a", "/c"]);
        let round: Vec<String> = (0..4).map(|_| mix.next_path().to_owned()).collect();
        assert_eq!(round, ["/a", "/c", "/a", "/c"]);
    }

    #[test]
    fn bad_entries_are_named() {
        assert_eq!(
            Mix::parse("orders=1").unwrap_err(),
            MixError::Entry("orders=1".into())
        );
        assert_eq!(
            Mix::parse("/orders=x").unwrap_err(),
            MixError::Entry("/orders=x".into())
        );
        assert_eq!(Mix::parse("/a=0").unwrap_err(), MixError::Empty);
    }
}

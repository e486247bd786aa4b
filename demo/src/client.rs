//! The HTTP client of the shop's calls and of the traffic generator.

use std::time::Duration;

/// A client with a per-request `timeout`. Plain HTTP only; the process-wide rustls crypto
/// provider is installed first (ring), because a workspace build enables reqwest's rustls
/// backend without a provider, and reqwest refuses to build a client without one.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // Err means a provider is already installed: that one is used.
    drop(rustls::crypto::ring::default_provider().install_default());
    reqwest::Client::builder().timeout(timeout).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_twice() {
        assert!(http_client(Duration::from_secs(1)).is_ok());
        assert!(http_client(Duration::from_secs(1)).is_ok());
    }
}

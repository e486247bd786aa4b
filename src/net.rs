//! Listening sockets, shared by every component that binds one.

use tokio::net::TcpListener;

use crate::component::ComponentError;

/// Binds a TCP listener for an otelcol-style endpoint: `host:port`, `:port` (all
/// interfaces, as Go reads it), `localhost:port` (loopback), `[::1]:port`.
///
/// # Errors
/// [`ComponentError::Bind`] naming the endpoint.
pub async fn bind(endpoint: &str) -> Result<TcpListener, ComponentError> {
    let address = if endpoint.starts_with(':') {
        format!("0.0.0.0{endpoint}")
    } else {
        endpoint.to_owned()
    };
    TcpListener::bind(&address)
        .await
        .map_err(|source| ComponentError::Bind {
            endpoint: endpoint.to_owned(),
            source,
        })
}

/// The port of an endpoint (`localhost:4317` → 4317), for port-conflict checks.
pub fn port(endpoint: &str) -> Option<u16> {
    endpoint.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_loopback_and_reports_bind_errors() {
        let listener = bind("localhost:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let err = bind(&addr.to_string()).await.unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("listen on {addr}:")),
            "{err}"
        );
    }

    #[test]
    fn port_of_endpoints() {
        assert_eq!(port("localhost:4317"), Some(4317));
        assert_eq!(port(":8888"), Some(8888));
        assert_eq!(port("[::1]:13133"), Some(13133));
        assert_eq!(port("nohost"), None);
    }
}

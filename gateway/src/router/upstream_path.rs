//! Upstream path composition, Kong's `get_upstream_uri_v0` (Kong/kong:kong/router/utils.lua),
//! the only algorithm under `router_flavor = traditional_compatible`.

/// The upstream path for a request.
///
/// `base` is the service path (`/` when unset), `req` the normalized request path, `prefix`
/// the matched path text when the route strips it, `None` otherwise.
pub fn compose(base: &str, req: &str, prefix: Option<&str>) -> String {
    let Some(prefix) = prefix else {
        return if base.ends_with('/') {
            format!("{base}{}", req.strip_prefix('/').unwrap_or(req))
        } else if req == "/" {
            base.to_owned()
        } else {
            format!("{base}{req}")
        };
    };
    let mut rest = req.strip_prefix(prefix).unwrap_or(req);
    for dots in ["./", "../"] {
        if let Some(r) = rest.strip_prefix(dots) {
            rest = r;
        }
    }
    if rest == "." || rest == ".." {
        rest = "";
    }
    if let Some(trimmed) = base.strip_suffix('/') {
        if rest.is_empty() {
            if base == "/" {
                "/".to_owned()
            } else if req.ends_with('/') {
                base.to_owned()
            } else {
                trimmed.to_owned()
            }
        } else if rest.starts_with('/') {
            format!("{trimmed}{rest}")
        } else {
            format!("{base}{rest}")
        }
    } else if rest.is_empty() {
        if req.len() > 1 && req.ends_with('/') {
            format!("{base}/")
        } else {
            base.to_owned()
        }
    } else if rest.starts_with('/') {
        format!("{base}{rest}")
    } else {
        format!("{base}/{rest}")
    }
}

//! Small network helpers the client and the probes share: where a URL points, and an error's
//! whole chain of causes in one line.

use http::Uri;

/// The `host` and `port` (80 when not given) of an `http://` URL.
pub fn host_port(uri: &Uri) -> Option<(&str, u16)> {
    Some((uri.host()?, uri.port_u16().unwrap_or(80)))
}

/// An error and its causes, `: `-separated (hyper's own message alone says little: "client
/// error (Connect)").
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
}

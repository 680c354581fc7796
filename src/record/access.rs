//! Who may use the recorder. It binds loopback by default; on any other address it needs
//! `--proxy-auth USER:PASS` (or `--i-know-this-is-open`), because a forward proxy reachable
//! from the network forwards anything to anywhere this machine reaches, its loopback services
//! included, and a reverse proxy opens its target to the network.
//!
//! Forward mode checks `Proxy-Authorization` (a proxy's own credentials: a browser asks for
//! them once, on a 407, and sends them with every request and CONNECT; the relay never
//! passes them on). Reverse mode checks HTTP basic `Authorization`, since a browser sees a
//! reverse proxy as a web site; the header is removed before the request reaches the
//! application and is not recorded, so an application that uses `Authorization` itself
//! (Bearer tokens) cannot be recorded this way: record it on loopback (through an SSH
//! tunnel) or in forward mode. Plain functions over a request head, no IO.

use std::net::SocketAddr;

use base64::Engine as _;

use super::relay::wire::{self, Head};

/// The credentials the recorder asks for (`--proxy-auth USER:PASS`).
#[derive(Clone)]
pub struct ProxyAuth {
    /// `Basic base64(user:pass)`, as the header carries it.
    expected: String,
}

impl std::fmt::Debug for ProxyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxyAuth(..)")
    }
}

impl ProxyAuth {
    /// `USER:PASS`, neither empty.
    pub fn parse(text: &str) -> Result<ProxyAuth, String> {
        match text.split_once(':') {
            Some((user, pass)) if !user.is_empty() && !pass.is_empty() => Ok(ProxyAuth {
                expected: format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(text)
                ),
            }),
            _ => Err(format!(
                "--proxy-auth expects USER:PASS with neither empty, got {text:?}"
            )),
        }
    }

    /// The header this mode checks: `Proxy-Authorization` for a forward proxy,
    /// `Authorization` for a reverse proxy.
    pub(crate) fn header(forward: bool) -> &'static str {
        if forward {
            "proxy-authorization"
        } else {
            "authorization"
        }
    }

    /// The answer refusing `head`, or `None` when it carries the credentials. The answer
    /// closes the connection (its body, if any, is not read).
    pub(crate) fn refusal(&self, forward: bool, head: &Head) -> Option<Vec<u8>> {
        let given = head.header(Self::header(forward)).unwrap_or_default();
        if given.len() == self.expected.len()
            && given
                .iter()
                .zip(self.expected.as_bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
        {
            return None;
        }
        let (status, reason, challenge) = if forward {
            (407, "Proxy Authentication Required", "proxy-authenticate")
        } else {
            (401, "Unauthorized", "www-authenticate")
        };
        let text = format!(
            "chorus record asks for the user and password given with --proxy-auth{}\n",
            if forward {
                " (set them in the browser's or the client's proxy settings)"
            } else {
                ""
            }
        );
        let answer = wire::answer(status, reason, "text/plain; charset=utf-8", text.as_bytes());
        // The status line and the headers, then ours, then the blank line and the body.
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(answer.len(), |at| at + 2);
        let mut out = answer[..split].to_vec();
        out.extend_from_slice(challenge.as_bytes());
        out.extend_from_slice(b": Basic realm=\"chorus record\", charset=\"UTF-8\"\r\n");
        out.extend_from_slice(b"connection: close\r\n");
        out.extend_from_slice(&answer[split..]);
        Some(out)
    }
}

/// Refuses to listen beyond loopback without credentials, unless told it is meant to be
/// open; the message says what to do.
pub fn check_listen(listen: SocketAddr, auth: bool, open: bool) -> Result<(), String> {
    if listen.ip().is_loopback() || auth || open {
        return Ok(());
    }
    Err(format!(
        "--listen {listen}: the recorder would be reachable from other machines without a \
         password (in forward mode, an open proxy to everything this machine reaches, its \
         loopback services included); add --proxy-auth USER:PASS, or listen on 127.0.0.1 and \
         reach it through an SSH tunnel (ssh -L 9090:127.0.0.1:9090 ...); \
         --i-know-this-is-open listens open anyway"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn head(text: &str) -> Head {
        wire::parse_request(
            &mut BytesMut::from(text.as_bytes()),
            &mut Default::default(),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn forward_mode_asks_with_407_and_reverse_mode_with_401() {
        let auth = ProxyAuth::parse("rec:s3cret").unwrap();
        let good = base64::engine::general_purpose::STANDARD.encode("rec:s3cret");
        let forward = head(&format!(
            "GET http://a/ HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic {good}\r\n\r\n"
        ));
        assert!(auth.refusal(true, &forward).is_none());
        // The same credentials in the other header do not count.
        assert!(auth.refusal(false, &forward).is_some());
        let missing = head("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n");
        let answer = String::from_utf8(auth.refusal(true, &missing).unwrap()).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"),
            "{answer}"
        );
        assert!(
            answer.contains("\r\nproxy-authenticate: Basic realm=\"chorus record\""),
            "{answer}"
        );
        assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nchorus record asks for the user and password given with --proxy-auth (set them in the browser's or the client's proxy settings)\n"), "{answer}");

        let wrong = base64::engine::general_purpose::STANDARD.encode("rec:guess");
        let reverse = head(&format!(
            "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic {wrong}\r\n\r\n"
        ));
        let answer = String::from_utf8(auth.refusal(false, &reverse).unwrap()).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
            "{answer}"
        );
        assert!(answer.contains("\r\nwww-authenticate: Basic"), "{answer}");
    }

    #[test]
    fn listening_beyond_loopback_needs_a_password_or_the_open_flag() {
        let open: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        let message = check_listen(open, false, false).unwrap_err();
        assert!(message.contains("add --proxy-auth USER:PASS"), "{message}");
        assert!(check_listen(open, true, false).is_ok());
        assert!(check_listen(open, false, true).is_ok());
        assert!(check_listen("127.0.0.1:9090".parse().unwrap(), false, false).is_ok());
        assert!(check_listen("[::1]:9090".parse().unwrap(), false, false).is_ok());
        assert!(ProxyAuth::parse("nopass").is_err());
        assert!(ProxyAuth::parse(":x").is_err());
    }
}

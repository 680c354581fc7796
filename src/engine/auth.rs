//! HTTP authentication as a browser does it, for one user (RFC 7235, 7617, 7616): a `401`
//! whose `WWW-Authenticate` offers `Basic` or `Digest` is answered once with the scenario's
//! `auth:` credentials; after that the user sends `Basic` credentials with every request
//! under the challenged folder without waiting to be asked, and `Digest` ones reusing the
//! server's nonce with an increasing nonce count (a `stale=true` answer gets one fresh try).
//! Plain state over headers; `step` sends and decides what counts.

use http::{HeaderMap, HeaderValue, Method};
use http_auth::{PasswordClient, PasswordParams};

use super::http::Endpoint;

/// One user's protection spaces, learnt from challenges.
#[derive(Debug, Default)]
pub(super) struct Auth {
    spaces: Vec<Space>,
}

/// Where credentials are sent without a challenge, and how.
#[derive(Debug)]
struct Space {
    origin: Endpoint,
    /// Paths that start with one of these are inside (`/trac/` for `/trac/login`).
    prefixes: Vec<String>,
    scheme: Scheme,
}

#[derive(Debug)]
enum Scheme {
    /// The `Authorization` value, computed once.
    Basic(HeaderValue),
    /// Digest computes a value per request (the nonce count and the request line are in
    /// it), so it keeps the credentials.
    Digest {
        client: Box<http_auth::DigestClient>,
        username: String,
        password: String,
    },
}

/// What credentials an exchange carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carried {
    /// None: a challenge to it is answered.
    Nothing,
    /// The scenario's own `Authorization` header: the engine leaves it alone.
    Explicit,
    Basic,
    Digest,
}

/// What to do about a `401`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// Send the request again: the user now has credentials for it.
    Retry,
    /// Nothing to answer (no challenge the engine speaks, or the credentials sent were
    /// refused): the `401` is the response.
    Refused,
}

impl Auth {
    /// A copy for a parallel `repeat` iteration. Basic spaces carry over; a Digest nonce
    /// count cannot be shared by two senders, so the copy answers its own first challenge.
    pub(super) fn fork(&self) -> Auth {
        Auth {
            spaces: self
                .spaces
                .iter()
                .filter_map(|space| match &space.scheme {
                    Scheme::Basic(value) => Some(Space {
                        origin: space.origin.clone(),
                        prefixes: space.prefixes.clone(),
                        scheme: Scheme::Basic(value.clone()),
                    }),
                    Scheme::Digest { .. } => None,
                })
                .collect(),
        }
    }

    /// The `Authorization` value for a request, when the user has credentials for where it
    /// goes: the space with the longest prefix of the path. `uri` is the request target as
    /// sent (path and query).
    pub(super) fn authorize(
        &mut self,
        origin: &Endpoint,
        method: &Method,
        uri: &str,
        body: &[u8],
    ) -> Option<(HeaderValue, Carried)> {
        let path = uri.split('?').next().unwrap_or(uri);
        let space = self
            .spaces
            .iter_mut()
            .filter(|space| space.origin == *origin)
            .filter_map(|space| {
                let longest = space
                    .prefixes
                    .iter()
                    .filter(|prefix| path.starts_with(prefix.as_str()))
                    .map(String::len)
                    .max()?;
                Some((longest, space))
            })
            .max_by_key(|(longest, _)| *longest)
            .map(|(_, space)| space)?;
        match &mut space.scheme {
            Scheme::Basic(value) => Some((value.clone(), Carried::Basic)),
            Scheme::Digest {
                client,
                username,
                password,
            } => {
                let value = respond_digest(client, username, password, method, uri, body).ok()?;
                Some((value, Carried::Digest))
            }
        }
    }

    /// Learns from a `401` to a request for `uri` at `origin` that carried `carried`:
    /// `Retry` when the request should go again with credentials. `credentials` renders the
    /// user's (username, password), only when they are needed. `stale_retried`: this request
    /// already had its one fresh try after a `stale=true`.
    pub(super) fn challenged(
        &mut self,
        origin: &Endpoint,
        uri: &str,
        headers: &HeaderMap,
        sent: Carried,
        stale_retried: bool,
        credentials: impl FnOnce() -> Result<(String, String), String>,
    ) -> Result<Answer, String> {
        let mut builder = PasswordClient::builder();
        for value in headers.get_all(http::header::WWW_AUTHENTICATE) {
            if let Ok(text) = value.to_str() {
                builder = builder.challenges(text);
            }
        }
        let Ok(client) = builder.build() else {
            return Ok(Answer::Refused);
        };
        let stale = matches!(&client, PasswordClient::Digest(digest) if digest.stale());
        let answer = match sent {
            Carried::Nothing => true,
            // The server forgot the nonce, not the password: a fresh nonce, once.
            Carried::Digest => stale && !stale_retried,
            Carried::Explicit | Carried::Basic => false,
        };
        if !answer {
            return Ok(Answer::Refused);
        }
        let (username, password) = credentials()?;
        let path = uri.split('?').next().unwrap_or(uri);
        let (prefixes, scheme) = match client {
            PasswordClient::Basic(_) => {
                let value = http_auth::basic::encode_credentials(&username, &password);
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| "the credentials do not make a valid header".to_owned())?;
                (vec![folder(path).to_owned()], Scheme::Basic(value))
            }
            PasswordClient::Digest(client) => {
                let prefixes = domain_prefixes(client.domain(), origin);
                let scheme = Scheme::Digest {
                    client: Box::new(client),
                    username,
                    password,
                };
                (prefixes, scheme)
            }
            _ => return Ok(Answer::Refused),
        };
        // A space with the same prefixes is replaced (a new nonce, new credentials).
        self.spaces
            .retain(|space| !(space.origin == *origin && space.prefixes == prefixes));
        self.spaces.push(Space {
            origin: origin.clone(),
            prefixes,
            scheme,
        });
        Ok(Answer::Retry)
    }
}

fn respond_digest(
    client: &mut http_auth::DigestClient,
    username: &str,
    password: &str,
    method: &Method,
    uri: &str,
    body: &[u8],
) -> Result<HeaderValue, String> {
    use http_auth::digest::Qop;
    // `auth`, as browsers answer; `auth-int` (a hash of the body) only when it is all the
    // server offers.
    let body = (!(client.qop() & Qop::Auth)).then_some(body);
    let value = client.respond(&PasswordParams {
        username,
        password,
        uri,
        method: method.as_str(),
        body,
    })?;
    HeaderValue::from_str(&value).map_err(|_| "the Digest answer is not a valid header".to_owned())
}

/// The folder of a path, which Basic credentials are sent under (RFC 7617 §2.2):
/// `/a/b/c` gives `/a/b/`, `/a/b/` itself.
fn folder(path: &str) -> &str {
    match path.rfind('/') {
        Some(at) => &path[..=at],
        None => "/",
    }
}

/// A Digest challenge's `domain` (space-separated URIs) as path prefixes on `origin`; none
/// given means the whole origin (RFC 7616 §3.3).
fn domain_prefixes(domain: &str, origin: &Endpoint) -> Vec<String> {
    let prefixes: Vec<String> = domain
        .split_whitespace()
        .filter_map(|uri| {
            if uri.starts_with('/') {
                return Some(uri.to_owned());
            }
            let url = url::Url::parse(uri).ok()?;
            (Endpoint::of(&url).as_ref() == Some(origin)).then(|| url.path().to_owned())
        })
        .collect();
    if prefixes.is_empty() {
        vec!["/".to_owned()]
    } else {
        prefixes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Endpoint {
        Endpoint {
            https: false,
            host: "127.0.0.1".to_owned(),
            port: 8000,
        }
    }

    fn challenge(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    fn mufasa() -> Result<(String, String), String> {
        Ok(("Mufasa".to_owned(), "Circle of Life".to_owned()))
    }

    /// RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
    #[test]
    fn digest_answers_match_rfc_7616_examples() {
        const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (algorithm, response) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let text = format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={algorithm}, \
                 nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            );
            let PasswordClient::Digest(mut client) =
                PasswordClient::try_from(text.as_str()).unwrap()
            else {
                panic!("a Digest client");
            };
            let value = client
                .respond_with_testing_cnonce(
                    &PasswordParams {
                        username: "Mufasa",
                        password: "Circle of Life",
                        uri: "/dir/index.html",
                        method: "GET",
                        body: None,
                    },
                    CNONCE,
                )
                .unwrap();
            assert!(
                value.contains(&format!("response=\"{response}\"")),
                "{algorithm}: {value}"
            );
            assert!(
                value.contains("nc=00000001") && value.contains("qop=auth,"),
                "{value}"
            );
            assert!(value.contains("opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""));
        }
    }

    #[test]
    fn basic_is_answered_once_then_sent_under_the_folder() {
        let mut auth = Auth::default();
        let get = Method::GET;
        assert_eq!(auth.authorize(&origin(), &get, "/trac/login", b""), None);
        let answer = auth
            .challenged(
                &origin(),
                "/trac/login?x=1",
                &challenge("Basic realm=\"trac\""),
                Carried::Nothing,
                false,
                mufasa,
            )
            .unwrap();
        assert_eq!(answer, Answer::Retry);
        let (value, sent) = auth
            .authorize(&origin(), &get, "/trac/ticket/6", b"")
            .unwrap();
        assert_eq!(value, "Basic TXVmYXNhOkNpcmNsZSBvZiBMaWZl");
        assert_eq!(sent, Carried::Basic);
        assert_eq!(auth.authorize(&origin(), &get, "/other", b""), None);
        let elsewhere = Endpoint {
            port: 8001,
            ..origin()
        };
        assert_eq!(auth.authorize(&elsewhere, &get, "/trac/x", b""), None);
        // Refused credentials are not sent again and again.
        let again = auth
            .challenged(
                &origin(),
                "/trac/login",
                &challenge("Basic realm=\"trac\""),
                Carried::Basic,
                false,
                mufasa,
            )
            .unwrap();
        assert_eq!(again, Answer::Refused);
        // An explicit header, or a scheme the engine does not speak, is left alone.
        for (sent, value) in [
            (Carried::Explicit, "Basic realm=\"x\""),
            (Carried::Nothing, "Bearer realm=\"x\""),
        ] {
            let answer = Auth::default()
                .challenged(&origin(), "/", &challenge(value), sent, false, mufasa)
                .unwrap();
            assert_eq!(answer, Answer::Refused);
        }
    }

    #[test]
    fn digest_counts_nonce_uses_and_retries_a_stale_nonce_once() {
        let mut auth = Auth::default();
        let offer =
            "Basic realm=\"r\", Digest realm=\"r\", qop=\"auth\", nonce=\"n1\", opaque=\"o\"";
        let answer = auth
            .challenged(
                &origin(),
                "/a/b",
                &challenge(offer),
                Carried::Nothing,
                false,
                mufasa,
            )
            .unwrap();
        assert_eq!(answer, Answer::Retry, "Digest preferred over Basic");
        let (first, sent) = auth
            .authorize(&origin(), &Method::GET, "/a/b", b"")
            .unwrap();
        assert_eq!(sent, Carried::Digest);
        let first = first.to_str().unwrap().to_owned();
        assert!(
            first.contains("nc=00000001") && first.contains("uri=\"/a/b\""),
            "{first}"
        );
        // No `domain`: the whole origin.
        let (second, _) = auth
            .authorize(&origin(), &Method::POST, "/x?y=1", b"z")
            .unwrap();
        let second = second.to_str().unwrap().to_owned();
        assert!(
            second.contains("nc=00000002") && second.contains("nonce=\"n1\""),
            "{second}"
        );
        let stale = "Digest realm=\"r\", qop=\"auth\", nonce=\"n2\", stale=true";
        let retry = auth
            .challenged(
                &origin(),
                "/x",
                &challenge(stale),
                Carried::Digest,
                false,
                mufasa,
            )
            .unwrap();
        assert_eq!(retry, Answer::Retry);
        let (third, _) = auth.authorize(&origin(), &Method::GET, "/x", b"").unwrap();
        let third = third.to_str().unwrap().to_owned();
        assert!(
            third.contains("nc=00000001") && third.contains("nonce=\"n2\""),
            "{third}"
        );
        let refused = auth
            .challenged(
                &origin(),
                "/x",
                &challenge(stale),
                Carried::Digest,
                true,
                mufasa,
            )
            .unwrap();
        assert_eq!(refused, Answer::Refused, "one fresh try only");
        let not_stale = "Digest realm=\"r\", qop=\"auth\", nonce=\"n3\"";
        let refused = auth
            .challenged(
                &origin(),
                "/x",
                &challenge(not_stale),
                Carried::Digest,
                false,
                mufasa,
            )
            .unwrap();
        assert_eq!(refused, Answer::Refused, "wrong credentials are a failure");
        assert!(
            auth.fork().spaces.is_empty(),
            "a fork answers its own Digest challenge"
        );
    }

    #[test]
    fn folders_and_domains() {
        assert_eq!(folder("/a/b/c"), "/a/b/");
        assert_eq!(folder("/a/b/"), "/a/b/");
        assert_eq!(folder("/"), "/");
        assert_eq!(
            domain_prefixes("/x/ http://127.0.0.1:8000/y/ http://other/z/", &origin()),
            ["/x/", "/y/"]
        );
        assert_eq!(domain_prefixes("", &origin()), ["/"]);
    }
}

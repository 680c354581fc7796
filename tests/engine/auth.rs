//! `auth:` against real servers: Debian's nginx with `auth_basic` (its access log says which
//! requests carried whose credentials and which were refused), and a Digest server written
//! here from RFC 7616's formulas (MD5 and SHA-256, qop=auth, nonce counts checked, nonces
//! that go stale), which counts what it served to whom.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chorus::stats::FailureKind;

use super::{failures_of, load_yaml, requests_by_name, run_rounds};
use crate::util::nginx::Nginx;
use crate::util::output_dir;

const USERS_CSV: &str = "username,password\nalice,pw-alice\nbob,pw-bob\n";

fn auth_scenario(host: &str, steps: &str) -> String {
    format!(
        "host: {host}\n\
         data:\n  users: {{ file: users.csv, as: user }}\n\
         auth:\n  username: \"{{{{ user.username }}}}\"\n  password: \"{{{{ user.password }}}}\"\n\
         flows:\n  - name: browse\n    steps:\n{steps}"
    )
}

/// (status, remote user, request line) of each line of nginx's `combined` log.
fn log_entries(nginx: &Nginx) -> Vec<(u16, String, String)> {
    nginx
        .access_log()
        .iter()
        .map(|line| {
            let user = line.split(' ').nth(2).unwrap_or("-").to_owned();
            let request = line.split('"').nth(1).unwrap_or_default().to_owned();
            let status = line
                .split('"')
                .nth(2)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|status| status.parse().ok())
                .unwrap_or(0);
            (status, user, request)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_challenges_are_answered_once_then_credentials_go_with_every_request_under_the_folder()
 {
    let dir = output_dir("auth_basic_nginx");
    std::fs::write(dir.join("users.csv"), USERS_CSV).unwrap();
    std::fs::write(
        dir.join("htpasswd"),
        "alice:{PLAIN}pw-alice\nbob:{PLAIN}pw-bob\ncarol:{PLAIN}pw-carol\n",
    )
    .unwrap();
    // Files, not `return`: nginx runs `return` before the access phase that checks them.
    let www = dir.join("www");
    std::fs::create_dir_all(www.join("private/sub")).unwrap();
    for page in ["private/a", "private/b", "private/sub/c"] {
        std::fs::write(www.join(page), "private\n").unwrap();
    }
    let locations = format!(
        "location /private/ {{ auth_basic \"chorus\"; auth_basic_user_file {}; root {}; default_type text/plain; }}",
        dir.join("htpasswd").display(),
        www.display()
    );
    let nginx = Nginx::start_with(&dir.join("nginx"), true, None, &locations);
    let steps = "      - get: /private/a\n      - get: /private/b\n      - get: /private/sub/c\n      - get: /public\n";
    let scenario = load_yaml(&dir, &auth_scenario(&nginx.url(""), steps));
    let result = run_rounds(scenario, 2, 3).await;

    let entries = log_entries(&nginx);
    for user in ["alice", "bob"] {
        let served: Vec<&str> = entries
            .iter()
            .filter(|(status, who, _)| *status == 200 && who == user)
            .map(|(_, _, request)| request.as_str())
            .collect();
        assert_eq!(
            served.len(),
            9,
            "{user}: 3 rounds of 3 private pages, each served with its credentials: {entries:#?}"
        );
        assert!(served.iter().all(|request| request.contains("/private/")));
    }
    let refused: Vec<&(u16, String, String)> = entries
        .iter()
        .filter(|(status, ..)| *status == 401)
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "one challenge per user (the first request), then credentials without being asked: {entries:#?}"
    );
    assert!(
        refused
            .iter()
            .all(|(_, who, request)| who == "-" && request.starts_with("GET /private/a ")),
        "{refused:#?}"
    );
    let public: Vec<&(u16, String, String)> = entries
        .iter()
        .filter(|(_, _, request)| request.starts_with("GET /public "))
        .collect();
    assert_eq!(public.len(), 6);
    assert!(
        public.iter().all(|(_, who, _)| who == "-"),
        "credentials stay inside the challenged folder: {public:#?}"
    );
    assert_eq!(result.total.failures, 0, "{:#?}", result.entries);
    let counted = requests_by_name(&result);
    assert_eq!(
        counted["/private/a"],
        2 * 3 + 2,
        "the challenges count, as exchanges"
    );
    assert_eq!(result.total.requests as usize, entries.len());

    // Credentials the server refuses are a failure, not a loop.
    std::fs::write(dir.join("users.csv"), "username,password\nalice,wrong\n").unwrap();
    let before = nginx.access_log().len();
    let scenario = load_yaml(&dir, &auth_scenario(&nginx.url(""), steps));
    let result = run_rounds(scenario, 1, 1).await;
    let entries = &log_entries(&nginx)[before..];
    let statuses: Vec<(u16, &str)> = entries
        .iter()
        .map(|(status, _, request)| (*status, request.split(' ').nth(1).unwrap_or_default()))
        .collect();
    assert_eq!(
        statuses,
        [
            (401, "/private/a"),
            (401, "/private/a"),
            (401, "/private/b"),
            (401, "/private/sub/c"),
            (200, "/public"),
        ]
    );
    assert_eq!(result.total.failures, 3);
    let failures = failures_of(&result, "/private/a");
    assert_eq!(failures[0].0, FailureKind::Status(401), "{failures:?}");
}

/// A Digest server (RFC 7616) with one realm: every request needs credentials; a nonce
/// answers `uses` requests, then a valid answer with it gets `401 stale=true` and a new
/// nonce.
struct DigestServer {
    algorithm: &'static str,
    uses: u32,
    users: BTreeMap<&'static str, &'static str>,
    seen: Mutex<DigestSeen>,
}

#[derive(Default, Debug)]
struct DigestSeen {
    /// Nonce -> the highest nonce count used with it.
    nonces: HashMap<String, u32>,
    issued: u64,
    /// 401s to requests without credentials.
    challenges: u32,
    /// 401s with `stale=true`.
    stale: u32,
    /// Why a request with credentials was refused.
    refused: Vec<String>,
    /// Requests served, by user: (method, path and query).
    served: BTreeMap<String, Vec<(String, String)>>,
}

const REALM: &str = "chorus@127.0.0.1";
const OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

fn hash(algorithm: &str, text: &str) -> String {
    use md5::Digest as _;
    let bytes: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(text.as_bytes()).to_vec(),
        _ => ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
            .as_ref()
            .to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 7616 §3.4.1 with qop=auth: KD(H(A1), nonce:nc:cnonce:qop:H(A2)).
#[allow(clippy::too_many_arguments)]
fn expected_response(
    algorithm: &str,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
) -> String {
    let a1 = hash(algorithm, &format!("{username}:{realm}:{password}"));
    let a2 = hash(algorithm, &format!("{method}:{uri}"));
    hash(algorithm, &format!("{a1}:{nonce}:{nc}:{cnonce}:auth:{a2}"))
}

/// `Digest a=b, c="d, e"` -> {a: b, c: "d, e"}.
fn digest_params(value: &str) -> Option<HashMap<String, String>> {
    let rest = value.trim().strip_prefix("Digest ")?;
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() {
            return Some(params);
        }
        chars.next()?;
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
}

impl DigestServer {
    fn challenge(&self, seen: &mut DigestSeen, stale: bool) -> Response {
        seen.issued += 1;
        let nonce = format!("nonce-{}-{}", seen.issued, rand::random::<u32>());
        seen.nonces.insert(nonce.clone(), 0);
        let value = format!(
            "Digest realm=\"{REALM}\", qop=\"auth\", algorithm={}, nonce=\"{nonce}\", opaque=\"{OPAQUE}\"{}",
            self.algorithm,
            if stale { ", stale=true" } else { "" }
        );
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, value)],
            "who are you?",
        )
            .into_response()
    }

    fn handle(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        let mut seen = self.seen.lock().unwrap();
        let Some(params) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(digest_params)
        else {
            seen.challenges += 1;
            return self.challenge(&mut seen, false);
        };
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
        let refuse = |seen: &mut DigestSeen, why: String| {
            seen.refused.push(why);
            (StatusCode::UNAUTHORIZED, "refused").into_response()
        };
        let username = param("username");
        let Some(password) = self.users.get(username) else {
            return refuse(&mut seen, format!("unknown user {username:?}"));
        };
        let (nonce, nc) = (param("nonce"), param("nc"));
        let Ok(count) = u32::from_str_radix(nc, 16) else {
            return refuse(&mut seen, format!("bad nc {nc:?}"));
        };
        for (name, wanted) in [
            ("realm", REALM),
            ("uri", target),
            ("qop", "auth"),
            ("opaque", OPAQUE),
            ("algorithm", self.algorithm),
        ] {
            if !param(name).eq_ignore_ascii_case(wanted) {
                return refuse(
                    &mut seen,
                    format!("{name} {:?}, expected {wanted:?}", param(name)),
                );
            }
        }
        let expected = expected_response(
            self.algorithm,
            username,
            REALM,
            password,
            method.as_str(),
            target,
            nonce,
            nc,
            param("cnonce"),
        );
        if param("response") != expected {
            return refuse(
                &mut seen,
                format!("bad response from {username} for {target}"),
            );
        }
        let Some(&last) = seen.nonces.get(nonce) else {
            return refuse(&mut seen, format!("unknown nonce {nonce:?}"));
        };
        if count <= last {
            return refuse(
                &mut seen,
                format!("nonce count {count} replayed (last {last})"),
            );
        }
        if count > self.uses {
            seen.stale += 1;
            return self.challenge(&mut seen, true);
        }
        seen.nonces.insert(nonce.to_owned(), count);
        seen.served
            .entry(username.to_owned())
            .or_default()
            .push((method.to_string(), target.to_owned()));
        format!("hello {username}").into_response()
    }
}

async fn digest_handler(
    State(server): State<Arc<DigestServer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    server.handle(&method, &uri, &headers)
}

async fn start_digest(algorithm: &'static str, uses: u32) -> (SocketAddr, Arc<DigestServer>) {
    let server = Arc::new(DigestServer {
        algorithm,
        uses,
        users: BTreeMap::from([("alice", "pw-alice"), ("bob", "pw-bob")]),
        seen: Mutex::default(),
    });
    let app = axum::Router::new()
        .fallback(digest_handler)
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, server)
}

#[test]
fn the_test_servers_digest_matches_rfc_7616_examples() {
    for (algorithm, response) in [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        (
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        assert_eq!(
            expected_response(
                algorithm,
                "Mufasa",
                "http-auth@example.org",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                "00000001",
                "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            ),
            response
        );
    }
    let params = digest_params("Digest username=\"a\\\"b\", nc=00000001, qop=auth").unwrap();
    assert_eq!(params["username"], "a\"b");
    assert_eq!(params["nc"], "00000001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_answers_count_their_nonce_uses_and_a_stale_nonce_gets_one_fresh_try() {
    for algorithm in ["MD5", "SHA-256"] {
        let dir = output_dir(&format!("auth_digest_{algorithm}"));
        std::fs::write(dir.join("users.csv"), USERS_CSV).unwrap();
        let (addr, server) = start_digest(algorithm, 4).await;
        let steps = "      - get: /dir/index.html\n      - post: /dir/save?draft=1\n        form: { text: hi }\n      - get: /other/page\n";
        let scenario = load_yaml(&dir, &auth_scenario(&format!("http://{addr}"), steps));
        let result = run_rounds(scenario, 2, 3).await;
        let seen = server.seen.lock().unwrap();
        assert!(seen.refused.is_empty(), "{algorithm}: {:#?}", seen.refused);
        for user in ["alice", "bob"] {
            let served = &seen.served[user];
            assert_eq!(served.len(), 9, "{algorithm} {user}: {served:?}");
            assert_eq!(
                served.iter().filter(|(method, _)| method == "POST").count(),
                3
            );
        }
        assert_eq!(seen.challenges, 2, "{algorithm}: one challenge per user");
        // 9 requests on nonces good for 4 uses each: requests 5 and 9 meet a stale nonce.
        assert_eq!(seen.stale, 4, "{algorithm}: {seen:#?}");
        assert_eq!(
            result.total.failures, 0,
            "{algorithm}: {:#?}",
            result.entries
        );
        assert_eq!(result.total.requests, 2 * (9 + 1 + 2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_digest_credentials_are_failures() {
    let dir = output_dir("auth_digest_refused");
    std::fs::write(dir.join("users.csv"), "username,password\nalice,wrong\n").unwrap();
    let (addr, server) = start_digest("SHA-256", 100).await;
    let steps = "      - get: /a\n      - get: /b\n";
    let scenario = load_yaml(&dir, &auth_scenario(&format!("http://{addr}"), steps));
    let result = run_rounds(scenario, 1, 1).await;
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.challenges, 1);
    assert_eq!(
        seen.refused,
        [
            "bad response from alice for /a",
            "bad response from alice for /b"
        ]
    );
    assert_eq!(result.total.requests, 3);
    assert_eq!(result.total.failures, 2);
    assert_eq!(failures_of(&result, "/b")[0].0, FailureKind::Status(401));
}

//! A realistic capture, made up in the process, of any size: what a person using a
//! server-rendered issue tracker with a JSON API and a small game records in Chromium.
//!
//! Sessions follow each other (three accounts in turn): the login page and its form POST
//! with a per-page CSRF token (a 302 and a session cookie), a dashboard page with links,
//! project pages whose forms carry a new token each time, issues created by form (the new id
//! handed over in `Location`) and by JSON (`{"id": ...}`), edited and deleted, a bearer token
//! from a JSON answer sent in `Authorization`, list APIs with ids, a game whose telemetry is
//! posted every `eventsPeriodSecs` (a steady loop), client-made UUIDs and timestamps, a
//! cookie a script set, static assets, another host, a CORS preflight, and a logout that
//! expires the session cookie. Deterministic: the same size gives the same capture.

use chorus::har::{Content, Entry, Header, PostData, Request, Response};

const ORIGIN: &str = "http://127.0.0.1:8001";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// The recording starts on 2026-11-25 at 09:00 UTC.
const START_MS: f64 = 1_795_597_200_000.0;
const ACCOUNTS: [(&str, &str); 3] = [
    ("alice.martin", "correct horse 1"),
    ("bob_k", "hunter2-but-longer"),
    ("carol.n@example.org", "s3cret-pass!"),
];

/// A small, fast, seeded generator (splitmix64): the capture is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from_digit(self.below(16) as u32, 16).expect("a hex digit"))
            .collect()
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
}

/// The recording being made: the clock, the browser's cookies, the server's ids.
struct Recording {
    rng: Rng,
    now_ms: f64,
    entries: Vec<Entry>,
    /// Cookies the browser sends (name, value), in the order they were set.
    cookies: Vec<(String, String)>,
    next_issue: u64,
    bearer: Option<String>,
    referer: String,
}

/// An exchange to record.
struct Exchange<'a> {
    method: &'a str,
    path: String,
    headers: Vec<(&'a str, String)>,
    body: Option<(&'a str, String)>,
    status: u16,
    response_headers: Vec<(&'a str, String)>,
    mime: &'a str,
    response: String,
}

fn get(path: impl Into<String>, mime: &str, response: String) -> Exchange<'_> {
    Exchange {
        method: "GET",
        path: path.into(),
        headers: Vec::new(),
        body: None,
        status: 200,
        response_headers: Vec::new(),
        mime,
        response,
    }
}

fn iso(ms: f64) -> String {
    let ms = ms as i64;
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

fn header(name: &str, value: impl Into<String>) -> Header {
    Header::new(name, value)
}

impl Recording {
    fn new(seed: u64) -> Self {
        Self {
            rng: Rng(seed),
            now_ms: START_MS,
            entries: Vec::new(),
            cookies: vec![("theme".to_owned(), "dark".to_owned())],
            next_issue: 1000,
            bearer: None,
            referer: format!("{ORIGIN}/"),
        }
    }

    fn pause(&mut self, min_ms: u64, max_ms: u64) {
        self.now_ms += (min_ms + self.rng.below(max_ms - min_ms + 1)) as f64;
    }

    fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(n, _)| n != name);
        if !value.is_empty() {
            self.cookies.push((name.to_owned(), value.to_owned()));
        }
    }

    /// Records one exchange to the app, as Chromium sends it, and moves the clock on.
    fn record(&mut self, exchange: Exchange<'_>) {
        let url = format!("{ORIGIN}{}", exchange.path);
        let mut headers = vec![
            header("Host", "127.0.0.1:8001"),
            header("Connection", "keep-alive"),
            header("User-Agent", UA),
            header(
                "Accept",
                if exchange.mime.contains("html") {
                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
                } else {
                    "application/json, text/plain, */*"
                },
            ),
            header("Accept-Encoding", "gzip, deflate, br, zstd"),
            header("Accept-Language", "en-US,en;q=0.9"),
            header("Referer", self.referer.clone()),
            header("Sec-Fetch-Site", "same-origin"),
        ];
        if !self.cookies.is_empty() {
            let pairs: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            headers.push(header("Cookie", pairs.join("; ")));
        }
        headers.extend(exchange.headers.iter().map(|(n, v)| header(n, v.clone())));
        let post_data = exchange.body.map(|(mime, text)| {
            headers.push(header("Content-Type", mime));
            headers.push(header("Content-Length", text.len().to_string()));
            headers.push(header("Origin", ORIGIN));
            PostData {
                mime_type: mime.to_owned(),
                text,
                ..PostData::default()
            }
        });
        let query_string = url::Url::parse(&url)
            .map(|u| {
                u.query_pairs()
                    .map(|(n, v)| header(&n, v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let mut response_headers = vec![
            header("Date", "Wed, 25 Nov 2026 09:00:00 GMT"),
            header("Server", "gunicorn"),
            header("Content-Type", exchange.mime),
            header("Content-Length", exchange.response.len().to_string()),
            header("Vary", "Cookie, Accept-Language"),
            header("X-Frame-Options", "DENY"),
            header("X-Request-Id", self.rng.hex(16)),
        ];
        for (name, value) in &exchange.response_headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                if let Some((cookie, rest)) = value.split_once('=') {
                    let cookie_value = rest.split(';').next().unwrap_or_default();
                    let expired = value.contains("Max-Age=0");
                    self.set_cookie(cookie, if expired { "" } else { cookie_value });
                }
            }
            response_headers.push(header(name, value.clone()));
        }
        let duration = 5.0 + self.rng.below(60) as f64;
        let status_text = match exchange.status {
            200 => "OK",
            201 => "Created",
            204 => "No Content",
            302 => "Found",
            _ => "",
        };
        self.entries.push(Entry {
            started_date_time: iso(self.now_ms),
            time: duration,
            request: Request {
                method: exchange.method.to_owned(),
                url: url.clone(),
                http_version: "HTTP/1.1".to_owned(),
                headers,
                query_string,
                post_data,
                headers_size: -1,
                body_size: -1,
                ..Request::default()
            },
            response: Response {
                status: exchange.status,
                status_text: status_text.to_owned(),
                http_version: "HTTP/1.1".to_owned(),
                headers: response_headers,
                content: Content {
                    size: exchange.response.len() as i64,
                    mime_type: exchange.mime.to_owned(),
                    text: (!exchange.response.is_empty()).then_some(exchange.response),
                    ..Content::default()
                },
                ..Response::default()
            },
            server_ip_address: Some("127.0.0.1".to_owned()),
            connection: Some("8001".to_owned()),
            ..Entry::default()
        });
        if exchange.mime.contains("html") && exchange.method == "GET" {
            self.referer = url;
        }
        self.now_ms += duration;
    }

    /// What a page loads besides itself: left out by convert unless `--keep-static`.
    fn assets(&mut self) {
        for (path, mime) in [
            ("/static/app.css", "text/css"),
            ("/static/app.js", "application/javascript"),
        ] {
            self.record(get(path, mime, "/* asset */".repeat(8)));
        }
        if self.rng.below(4) == 0 {
            let mut cdn = get(
                "/fonts.css",
                "text/css",
                "@font-face{font-family:x}".to_owned(),
            );
            cdn.path = "/css?family=Inter".to_owned();
            self.record(cdn);
            // Rewritten to another host after the fact: a request convert counts and leaves out.
            let last = self.entries.last_mut().expect("just recorded");
            last.request.url = "https://fonts.example.com/css?family=Inter".to_owned();
        }
    }

    fn page(&mut self, title: &str, body: &str) -> String {
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title} | Tracker</title>\
             <link rel=\"stylesheet\" href=\"/static/app.css\"><script src=\"/static/app.js\"></script></head>\
             <body><nav><a href=\"/\">Home</a> <a href=\"/dashboard/\">Dashboard</a> <a href=\"/help/\">Help</a></nav>\
             <main>{body}</main><footer>Tracker 4.2 &middot; build {}</footer></body></html>",
            self.rng.hex(8)
        )
    }

    fn csrf_form(&mut self, action: &str, fields: &str) -> (String, String) {
        let token = self.rng.token(64);
        (
            format!(
                "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"{token}\">{fields}<button type=\"submit\">Save</button></form>"
            ),
            token,
        )
    }

    fn login(&mut self, account: usize) {
        let (username, password) = ACCOUNTS[account % ACCOUNTS.len()];
        let (form, token) = self.csrf_form(
            "/accounts/login/",
            "<input name=\"username\" autofocus><input type=\"password\" name=\"password\">",
        );
        let html = self.page("Log in", &form);
        let csrf_cookie = self.rng.token(32);
        self.set_cookie("csrftoken", &csrf_cookie);
        self.record(get("/accounts/login/?next=/dashboard/", "text/html", html));
        self.assets();
        self.pause(2000, 6000);
        let session = self.rng.token(32);
        let body = format!(
            "csrfmiddlewaretoken={token}&username={}&password={}",
            urlencode(username),
            urlencode(password)
        );
        self.record(Exchange {
            method: "POST",
            path: "/accounts/login/".to_owned(),
            headers: Vec::new(),
            body: Some(("application/x-www-form-urlencoded", body)),
            status: 302,
            response_headers: vec![
                ("Location", "/dashboard/".to_owned()),
                (
                    "Set-Cookie",
                    format!("sessionid={session}; HttpOnly; Path=/; SameSite=Lax"),
                ),
            ],
            mime: "text/html",
            response: String::new(),
        });
        // The single-page part asks for an API token once.
        let access = format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.{}",
            self.rng.token(48),
            self.rng.token(43)
        );
        self.record(Exchange {
            method: "POST",
            path: "/api/token/".to_owned(),
            headers: vec![("X-CSRFToken", token)],
            body: Some(("application/json", "{}".to_owned())),
            status: 200,
            response_headers: Vec::new(),
            mime: "application/json",
            response: format!(
                "{{\"access_token\":\"{access}\",\"token_type\":\"Bearer\",\"expires_in\":3600,\"user\":{{\"id\":{},\"username\":\"{username}\"}}}}",
                account + 1
            ),
        });
        self.bearer = Some(access);
    }

    fn dashboard(&mut self, projects: &[u64]) {
        let links: String = projects
            .iter()
            .map(|p| format!("<li><a href=\"/projects/{p}/\">Project {p}</a> <span class=\"count\">{} open</span></li>", p * 3 % 17))
            .collect();
        let html = self.page(
            "Dashboard",
            &format!("<h1>Your projects</h1><ul>{links}</ul>"),
        );
        self.record(get("/dashboard/", "text/html", html));
        self.assets();
    }

    fn api_get(&mut self, path: String, response: String) {
        let bearer = self.bearer.clone().unwrap_or_default();
        let mut exchange = get(path, "application/json", response);
        exchange
            .headers
            .push(("Authorization", format!("Bearer {bearer}")));
        self.record(exchange);
    }

    fn api_send(&mut self, method: &'static str, path: String, body: String, response: String) {
        let bearer = self.bearer.clone().unwrap_or_default();
        self.record(Exchange {
            method,
            path,
            headers: vec![("Authorization", format!("Bearer {bearer}"))],
            body: Some(("application/json", body)),
            status: if method == "POST" { 201 } else { 200 },
            response_headers: Vec::new(),
            mime: "application/json",
            response,
        });
    }

    /// A project's page, an issue created by form, read, commented on by JSON, closed.
    fn project_visit(&mut self, project: u64, username: &str) {
        let issues: Vec<u64> = (0..6).map(|k| 100 + project * 10 + k).collect();
        let rows: String = issues
            .iter()
            .map(|i| format!("<tr><td><a href=\"/projects/{project}/issues/{i}/\">#{i}</a></td><td>Issue {i} of project {project}</td><td>open</td></tr>"))
            .collect();
        let (form, token) = self.csrf_form(
            &format!("/projects/{project}/issues/new/"),
            "<input name=\"title\"><textarea name=\"description\"></textarea><select name=\"priority\"><option value=\"1\">low</option><option value=\"2\" selected>normal</option></select>",
        );
        let html = self.page(
            &format!("Project {project}"),
            &format!("<h1>Project {project}</h1><table>{rows}</table><h2>New issue</h2>{form}"),
        );
        self.record(get(format!("/projects/{project}/"), "text/html", html));
        self.assets();
        self.api_get(
            format!("/api/projects/{project}/issues/?state=open&page=1"),
            format!(
                "{{\"count\":{},\"next\":null,\"results\":[{}]}}",
                issues.len(),
                issues
                    .iter()
                    .map(|i| format!("{{\"id\":{i},\"title\":\"Issue {i}\",\"state\":\"open\",\"assignee\":{{\"id\":{},\"username\":\"dev{}\"}},\"reporter\":{{\"email\":\"reporter{}@example.org\"}}}}", i % 7, i % 7, i % 97))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
        self.pause(3000, 15000);
        let issue = self.next_issue;
        self.next_issue += 1 + self.rng.below(3);
        let title = format!("Printer on floor {} jams", self.rng.below(9) + 1);
        self.record(Exchange {
            method: "POST",
            path: format!("/projects/{project}/issues/new/"),
            headers: Vec::new(),
            body: Some((
                "application/x-www-form-urlencoded",
                format!(
                    "csrfmiddlewaretoken={token}&title={}&description=Reported+by+{}&priority=2",
                    urlencode(&title),
                    urlencode(username)
                ),
            )),
            status: 302,
            response_headers: vec![("Location", format!("/projects/{project}/issues/{issue}/"))],
            mime: "text/html",
            response: String::new(),
        });
        let (form, token) = self.csrf_form(
            &format!("/projects/{project}/issues/{issue}/comment/"),
            "<textarea name=\"text\"></textarea>",
        );
        let html = self.page(
            &format!("#{issue} {title}"),
            &format!("<h1>#{issue} {title}</h1><p>Reported by {username}</p>{form}<a href=\"/projects/{project}/issues/{issue}/edit/\">Edit</a>"),
        );
        self.record(get(
            format!("/projects/{project}/issues/{issue}/"),
            "text/html",
            html,
        ));
        self.assets();
        self.pause(2000, 9000);
        self.record(Exchange {
            method: "POST",
            path: format!("/projects/{project}/issues/{issue}/comment/"),
            headers: Vec::new(),
            body: Some((
                "application/x-www-form-urlencoded",
                format!("csrfmiddlewaretoken={token}&text=Seen+it+too"),
            )),
            status: 302,
            response_headers: vec![("Location", format!("/projects/{project}/issues/{issue}/"))],
            mime: "text/html",
            response: String::new(),
        });
        let request_id = self.rng.uuid();
        let label = 5000 + self.rng.below(90_000);
        self.api_send(
            "POST",
            format!("/api/issues/{issue}/labels/"),
            format!("{{\"label\":\"triage\",\"clientRequestId\":\"{request_id}\",\"at\":{}}}", self.now_ms as u64),
            format!("{{\"id\":{label},\"issue\":{issue},\"label\":\"triage\",\"createdBy\":\"{username}\"}}"),
        );
        self.pause(1000, 4000);
        self.api_send(
            "PATCH",
            format!("/api/issues/{issue}/"),
            format!("{{\"state\":\"closed\",\"labels\":[{label}],\"version\":1}}"),
            format!("{{\"id\":{issue},\"state\":\"closed\",\"version\":2}}"),
        );
        if self.rng.below(3) == 0 {
            self.record(Exchange {
                method: "DELETE",
                path: format!("/api/issues/{issue}/labels/{label}/"),
                headers: vec![(
                    "Authorization",
                    format!("Bearer {}", self.bearer.clone().unwrap_or_default()),
                )],
                body: None,
                status: 204,
                response_headers: Vec::new(),
                mime: "application/json",
                response: String::new(),
            });
        }
    }

    /// A game session: started, then telemetry every 2 s, then ended.
    fn game(&mut self, device: &str) {
        self.api_get(
            "/api/game/config/AA-1".to_owned(),
            "{\"gameId\":\"AA-1\",\"eventsPeriodSecs\":2,\"eventsDetailLevel\":2,\"levels\":12}"
                .to_owned(),
        );
        let game = format!("g{}", self.rng.hex(17));
        self.api_send(
            "POST",
            "/api/game/sessions/".to_owned(),
            format!("{{\"gameId\":\"AA-1\",\"deviceId\":\"{device}\"}}"),
            format!("{{\"gameSessionId\":\"{game}\",\"eventsPeriodSecs\":2}}"),
        );
        let events = 3 + self.rng.below(5);
        for step in 0..events {
            self.now_ms += 1990.0 + self.rng.below(20) as f64;
            let body = format!(
                "[{{\"gameSessionId\":\"{game}\",\"name\":\"move\",\"data\":{{\"step\":{step},\"x\":{},\"y\":{}}},\"clientTimeStamp\":{}}}]",
                self.rng.below(100),
                self.rng.below(100),
                self.now_ms as u64
            );
            self.api_send(
                "POST",
                format!("/api/game/events/?gameSessionId={game}"),
                body,
                "{\"received\":1}".to_owned(),
            );
        }
        self.pause(100, 400);
        self.api_send(
            "POST",
            "/api/game/sessions/end/".to_owned(),
            format!("{{\"gameSessionId\":\"{game}\"}}"),
            "{\"ok\":true}".to_owned(),
        );
    }

    fn logout(&mut self) {
        let (form, token) = self.csrf_form("/accounts/logout/", "");
        let html = self.page("Help", &format!("<p>Questions?</p>{form}"));
        self.record(get("/help/", "text/html", html));
        self.pause(1000, 3000);
        self.record(Exchange {
            method: "POST",
            path: "/accounts/logout/".to_owned(),
            headers: Vec::new(),
            body: Some((
                "application/x-www-form-urlencoded",
                format!("csrfmiddlewaretoken={token}"),
            )),
            status: 302,
            response_headers: vec![
                ("Location", "/accounts/login/".to_owned()),
                (
                    "Set-Cookie",
                    "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
                        .to_owned(),
                ),
            ],
            mime: "text/html",
            response: String::new(),
        });
        self.bearer = None;
    }

    /// One account's session: about `length` entries between its login and its logout.
    fn session(&mut self, account: usize, length: usize) {
        let start = self.entries.len();
        let username = ACCOUNTS[account % ACCOUNTS.len()].0;
        self.login(account);
        let projects: Vec<u64> = (0..8).map(|_| 1 + self.rng.below(40)).collect();
        let device = format!("dev-{}", self.rng.token(12).to_ascii_lowercase());
        self.dashboard(&projects);
        if self.rng.below(5) == 0 {
            // A CORS preflight the page's script caused.
            let mut preflight = get("/api/projects/", "text/plain", String::new());
            preflight.method = "OPTIONS";
            preflight.status = 204;
            preflight
                .headers
                .push(("Access-Control-Request-Method", "GET".to_owned()));
            self.record(preflight);
        }
        self.api_get(
            "/api/projects/".to_owned(),
            format!(
                "[{}]",
                projects
                    .iter()
                    .map(|p| format!("{{\"id\":{p},\"name\":\"Project {p}\",\"owner\":\"{username}\",\"open\":{}}}", p * 3 % 17))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
        while self.entries.len() - start + 8 < length {
            self.pause(1000, 8000);
            match self.rng.below(4) {
                0 => self.game(&device),
                _ => {
                    let project = projects[self.rng.below(projects.len() as u64) as usize];
                    self.project_visit(project, username);
                }
            }
        }
        self.logout();
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// How long a capture to make.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Until {
    /// At least this many entries (the last session ends with its logout).
    Entries(usize),
    /// At least this many bytes of HAR text.
    Bytes(u64),
}

/// Writes a capture to `path` session by session, never holding more than one session's
/// entries; returns how many entries and bytes it has.
pub(crate) fn write_capture(path: &std::path::Path, until: Until) -> (usize, u64) {
    use std::io::Write as _;
    let file = std::fs::File::create(path).expect("the capture can be created");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let head =
        br#"{"log":{"version":"1.2","creator":{"name":"chorus bench","version":"1"},"entries":["#;
    out.write_all(head).expect("the capture is written");
    let mut bytes = head.len() as u64;
    let mut written = 0;
    let seed = match until {
        Until::Entries(n) => n as u64,
        Until::Bytes(n) => n,
    };
    let mut recording = Recording::new(0x5eed_c0de ^ seed);
    let mut account = 0;
    loop {
        let left = match until {
            Until::Entries(n) if written < n => n - written,
            Until::Bytes(n) if bytes < n => usize::MAX,
            _ => break,
        };
        let length = (1500 + recording.rng.below(1500) as usize).min(left.max(60));
        recording.session(account, length);
        account += 1;
        recording.pause(10_000, 60_000);
        for entry in recording.entries.drain(..) {
            let text = serde_json::to_vec(&entry).expect("an entry serializes");
            if written > 0 {
                out.write_all(b",").expect("the capture is written");
                bytes += 1;
            }
            out.write_all(&text).expect("the capture is written");
            bytes += text.len() as u64;
            written += 1;
        }
    }
    out.write_all(b"]}}").expect("the capture is written");
    out.flush().expect("the capture is written");
    (written, bytes + 3)
}

//! HAR entries -> exchanges: the one place convert reads the HAR types. Entries that cannot be
//! replayed (no URL, an unparsable URL) become warnings naming the entry, never a panic.

use base64::Engine as _;

use super::model::{Exchange, RecordedBody, RecordedMessage, RecordedSocket};
use crate::har::Entry;
use crate::har::read::EntrySink;

/// Exchanges in recorded order (by start time; HAR files are usually but not always sorted),
/// and a warning per entry that was left out. Takes the entries so that their bodies move
/// into the exchanges instead of being copied: a large capture is held once, not twice.
pub(crate) fn exchanges(entries: Vec<Entry>) -> (Vec<Exchange>, Vec<String>) {
    let mut read = Exchanges::default();
    for entry in entries {
        read.entry(entry);
    }
    read.finish()
}

/// Entries made exchanges as they are read ([`crate::har::read::read_file_each`]): an entry
/// is held in full only until its exchange is made.
#[derive(Debug, Default)]
pub(crate) struct Exchanges {
    list: Vec<Exchange>,
    warnings: Vec<String>,
    /// Entries read so far.
    pub(crate) read: usize,
    used: UsedHeaders,
}

/// Whether convert reads the headers of each name, found out once per name.
#[derive(Debug, Default)]
struct UsedHeaders {
    request: std::collections::HashMap<String, bool>,
    response: std::collections::HashMap<String, bool>,
}

impl UsedHeaders {
    /// The headers of `list` convert reads, in a list of their own size (a list collected in
    /// place would keep the room of every header the browser sent).
    fn keep(&mut self, list: Vec<crate::har::Header>, request: bool) -> Vec<(String, String)> {
        let (known, used): (_, fn(&str) -> bool) = if request {
            (&mut self.request, request_header_used)
        } else {
            (&mut self.response, response_header_used)
        };
        let mut kept: Vec<(String, String)> = list
            .into_iter()
            .filter(|h| match known.get(&h.name) {
                Some(&used) => used,
                None => *known.entry(h.name.clone()).or_insert(used(&h.name)),
            })
            .map(|h| (h.name, h.value))
            .collect();
        kept.shrink_to_fit();
        kept
    }
}

impl EntrySink for Exchanges {
    fn entry(&mut self, entry: Entry) {
        let index = self.read;
        self.read += 1;
        // The entry is described only when it is left out (not formatted for every entry).
        match replayable(&entry) {
            Ok((url, wall_ms)) => {
                self.list
                    .push(exchange(index, entry, url, wall_ms, &mut self.used))
            }
            Err(problem) => self.warnings.push(format!(
                "entry {} ({} {}): {problem}; left out",
                index + 1,
                entry.request.method,
                entry.request.url
            )),
        }
    }

    fn restart(&mut self) {
        *self = Self::default();
    }
}

impl Exchanges {
    /// The exchanges in recorded order, and the warnings.
    pub(crate) fn finish(self) -> (Vec<Exchange>, Vec<String>) {
        let mut list = self.list;
        let mut warnings = self.warnings;
        // By start, then by place in the file: the order a stable sort gives, without the
        // stable sort's buffer (up to 8 MB, whose release would raise glibc's threshold for
        // returning freed memory and leave the conversion's peak higher; see
        // benches/convert.rs).
        list.sort_unstable_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms).then(a.entry.cmp(&b.entry)));
        one_websocket_at_a_time(&mut list, &mut warnings);
        list.shrink_to_fit();
        polls_after_their_posts(&mut list);
        let first = list.first().map_or(0.0, |exchange| exchange.wall_ms);
        for exchange in &mut list {
            exchange.started_ms = exchange.wall_ms - first;
        }
        (list, warnings)
    }
}

/// A replayed user holds one WebSocket at a time (a `ws:` closes the one before it), while a
/// page may keep several open at once (Jupyter's notebook: the server's event stream and three
/// connections to the kernel's channels). Of WebSockets whose lifetimes overlap, the one whose
/// browser sent the most text messages is kept (ties: the most messages, then the first
/// opened); the others are left out with a warning, since their steps would run on the kept
/// socket or wait on a closed one. `list` is in recorded order.
fn one_websocket_at_a_time(list: &mut Vec<Exchange>, warnings: &mut Vec<String>) {
    let is_websocket = |e: &Exchange| e.socket.as_ref().is_some_and(|s| !s.events);
    let span = |e: &Exchange| {
        let last = e.socket.as_ref().map_or(0.0, |s| {
            s.messages.iter().map(|m| m.wall_ms).fold(0.0, f64::max)
        });
        (e.wall_ms, (e.wall_ms + e.duration_ms).max(last))
    };
    let rank = |e: &Exchange| {
        let messages = &e.socket.as_ref().expect("a socket").messages;
        (messages.iter().filter(|m| m.sent).count(), messages.len())
    };
    // Groups of overlapping WebSockets, as indexes into `list`.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_end = f64::NEG_INFINITY;
    for (at, exchange) in list.iter().enumerate().filter(|(_, e)| is_websocket(e)) {
        let (start, end) = span(exchange);
        match groups.last_mut() {
            Some(group) if start < group_end => group.push(at),
            _ => groups.push(vec![at]),
        }
        group_end = if groups.last().is_some_and(|g| g.len() > 1) {
            group_end.max(end)
        } else {
            end
        };
    }
    let mut left_out = std::collections::BTreeSet::new();
    for group in groups.iter().filter(|group| group.len() > 1) {
        let kept = *group
            .iter()
            .rev()
            .max_by_key(|&&at| rank(&list[at]))
            .expect("a group has a socket");
        for &at in group.iter().filter(|&&at| at != kept) {
            let (exchange, keeper) = (&list[at], &list[kept]);
            warnings.push(format!(
                "entry {} ({} {}): a WebSocket open while entry {}'s was, and a replayed user \
                 holds one at a time; left out (entry {}'s, with more messages sent, is kept)",
                exchange.entry + 1,
                exchange.method,
                exchange.url,
                keeper.entry + 1,
                keeper.entry + 1,
            ));
            left_out.insert(at);
        }
    }
    let mut at = 0;
    list.retain(|_| {
        at += 1;
        !left_out.contains(&(at - 1))
    });
}

/// The Engine.IO session a long-polling request belongs to: its `sid`, when the URL has
/// `EIO`, `transport=polling` and `sid`.
fn engine_io_session(exchange: &Exchange) -> Option<String> {
    let mut eio = false;
    let mut polling = false;
    let mut sid = None;
    for (key, value) in exchange.url.query_pairs() {
        match key.as_ref() {
            "EIO" => eio = true,
            "transport" => polling = value == "polling",
            "sid" => sid = Some(value.into_owned()),
            _ => {}
        }
    }
    sid.filter(|_| eio && polling)
}

/// Puts each Engine.IO long-poll (a `GET` that waits for what the server has to send) after
/// the posts of the same session that the browser sent while it waited: the poll's answer is
/// often what a post brought (an event's acknowledgement), and a replay sends one request at
/// a time, so the poll sent first would wait for a post that only comes after it (until the
/// server's ping, 25 s). A post never depends on the poll's answer: it started before that
/// came.
fn polls_after_their_posts(list: &mut [Exchange]) {
    let mut i = 0;
    while i < list.len() {
        let poll = &list[i];
        let session = (poll.method == "GET")
            .then(|| engine_io_session(poll))
            .flatten();
        let Some(session) = session else {
            i += 1;
            continue;
        };
        let done = poll.wall_ms + poll.duration_ms.max(0.0);
        let mut j = i + 1;
        let mut moved = 0;
        while j < list.len() && list[j].wall_ms < done {
            let post = list[j].method == "POST"
                && engine_io_session(&list[j]).as_deref() == Some(session.as_str());
            if post {
                // The post goes just before the poll (and the posts moved before it).
                list[i + moved..=j].rotate_right(1);
                moved += 1;
            }
            j += 1;
        }
        i += moved + 1;
    }
}

/// Whether convert ever reads a request header of this name: the ones a scenario keeps, the
/// cookies, and whatever `--redact` must find. The others (the browser's `User-Agent`,
/// `Accept-*`, `Sec-*`, ...) are not kept past reading.
fn request_header_used(name: &str) -> bool {
    name.eq_ignore_ascii_case("cookie")
        || super::request::keep_header(
            name,
            &super::model::DraftBody::Raw {
                mime: String::new(),
                text: String::new(),
            },
        )
        || super::redact::secret_key(name)
}

/// Whether convert ever reads a response header of this name: all but the ones that never
/// carry a value worth correlating, which it reads for no other reason either.
fn response_header_used(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "location" | "set-cookie" | "www-authenticate"
    ) || !super::offers::PLAIN_RESPONSE_HEADERS.contains(&lower.as_str())
        || super::redact::secret_key(name)
}

/// The entry's URL (a WebSocket's in its http(s) form) and start time, or why it cannot be
/// replayed.
fn replayable(entry: &Entry) -> Result<(url::Url, f64), String> {
    if entry.request.method.is_empty() {
        return Err("the request has no method".to_owned());
    }
    let mut url: url::Url = entry
        .request
        .url
        .parse()
        .map_err(|err| format!("the URL is not valid ({err})"))?;
    // Chromium writes a WebSocket's URL as ws(s)://; the scenario opens it from its http(s)
    // form (the host is the same host).
    let web_scheme = match url.scheme() {
        "ws" => Some("http"),
        "wss" => Some("https"),
        _ => None,
    };
    if let Some(scheme) = web_scheme {
        let text = format!("{scheme}{}", &url.as_str()[url.scheme().len()..]);
        url = text
            .parse()
            .map_err(|err| format!("the URL is not valid ({err})"))?;
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{} URLs are not replayed", url.scheme()));
    }
    let wall_ms = parse_date_ms(&entry.started_date_time).ok_or_else(|| {
        format!(
            "startedDateTime {:?} is not an ISO 8601 date",
            entry.started_date_time
        )
    })?;
    Ok((url, wall_ms))
}

fn exchange(
    index: usize,
    entry: Entry,
    url: url::Url,
    wall_ms: f64,
    used: &mut UsedHeaders,
) -> Exchange {
    let websocket = upgraded_to_websocket(&entry);
    let request_body = entry.request.post_data.map(|post| {
        let text = if !post.text.is_empty() {
            decode_text(post.text, post.encoding.as_deref())
        } else {
            // Some tools write only `params` for a form.
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for param in &post.params {
                form.append_pair(&param.name, param.value.as_deref().unwrap_or(""));
            }
            form.finish()
        };
        RecordedBody {
            mime: post.mime_type,
            text,
        }
    });
    let socket = recorded_socket(
        websocket,
        entry.web_socket_messages,
        entry.event_source_messages,
    );
    let content = entry.response.content;
    let encoding = content.encoding;
    let response_body = content
        .text
        .map(|text| decode_text(text, encoding.as_deref()));
    Exchange {
        entry: index,
        started_ms: 0.0,
        wall_ms,
        duration_ms: entry.time.max(0.0),
        method: entry.request.method.to_ascii_uppercase(),
        url,
        request_headers: used.keep(entry.request.headers, true),
        request_body,
        status: entry.response.status,
        response_headers: used.keep(entry.response.headers, false),
        response_mime: content.mime_type,
        response_body,
        page: Default::default(),
        socket,
    }
}

/// Whether the entry is a WebSocket's handshake that the server accepted (`101` to a request
/// asking to upgrade to `websocket`, or Chromium's `_resourceType: websocket`), messages or
/// not.
fn upgraded_to_websocket(entry: &Entry) -> bool {
    let asked = entry.resource_type.as_deref() == Some("websocket")
        || entry.request.headers.iter().any(|header| {
            header.name.eq_ignore_ascii_case("upgrade")
                && header.value.eq_ignore_ascii_case("websocket")
        });
    asked && entry.response.status == 101
}

/// A socket's text messages (binary, control and close frames are not replayed), or its
/// events. A WebSocket that carried no message is a socket all the same: the page opened it
/// (and a replay that sent its handshake as a plain GET would be refused).
fn recorded_socket(
    websocket: bool,
    messages: Vec<crate::har::WebSocketMessage>,
    events: Vec<crate::har::EventSourceMessage>,
) -> Option<Box<RecordedSocket>> {
    if !events.is_empty() {
        let messages = events
            .into_iter()
            .map(|event| RecordedMessage {
                sent: false,
                wall_ms: event.time * 1000.0,
                event: Some(event.event_name).filter(|name| !name.is_empty() && name != "message"),
                text: event.data,
            })
            .collect();
        return Some(Box::new(RecordedSocket {
            events: true,
            messages,
        }));
    }
    if messages.is_empty() && !websocket {
        return None;
    }
    let messages = messages
        .into_iter()
        .filter(|message| message.opcode == 1)
        .map(|message| RecordedMessage {
            sent: message.kind == "send",
            wall_ms: message.time * 1000.0,
            event: None,
            text: message.data,
        })
        .collect();
    Some(Box::new(RecordedSocket {
        events: false,
        messages,
    }))
}

/// Base64 bodies that are UTF-8 text are treated as text; others as their base64 form.
fn decode_text(text: String, encoding: Option<&str>) -> String {
    if encoding == Some("base64") {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim()) {
            if let Ok(text) = String::from_utf8(bytes) {
                return text;
            }
        }
    }
    text
}

/// `2026-11-25T06:31:14.123Z`, `2026-11-25T07:31:14.123+01:00`, with or without fractions.
pub(crate) fn parse_date_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let (date, rest) = text.split_once(['T', ' '])?;
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let (time, offset_minutes) =
        if let Some(time) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix('z')) {
            (time, 0)
        } else if let Some(position) = rest.rfind(['+', '-']) {
            let (time, offset) = rest.split_at(position);
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = offset[1..]
                .split_once(':')
                .unwrap_or((&offset[1..3.min(offset.len())], "0"));
            (
                time,
                sign * (hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?),
            )
        } else {
            (rest, 0)
        };
    let mut clock = time.split(':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: f64 = clock.next().unwrap_or("0").parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 - offset_minutes * 60;
    Some(seconds as f64 * 1000.0 + second * 1000.0)
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_engine_io_poll_goes_after_the_posts_sent_while_it_waited() {
        use crate::convert::testing::exchange;
        let at = |method: &str, query: &str, start: f64, duration: f64| {
            let mut exchange = exchange(
                method,
                &format!("http://app/socket.io/?EIO=4&transport={query}"),
                200,
                "",
                "",
            );
            exchange.wall_ms = start;
            exchange.duration_ms = duration;
            exchange
        };
        let mut list = vec![
            at("GET", "polling&t=a&sid=S", 0.0, 10.0),
            // Waited for: the poll's answer was this post's acknowledgement.
            at("GET", "polling&t=b&sid=S", 20.0, 11.0),
            at("GET", "websocket&sid=S", 22.0, 900.0),
            at("POST", "polling&t=c&sid=S", 25.0, 6.0),
            at("POST", "polling&t=d&sid=OTHER", 26.0, 1.0),
            at("POST", "polling&t=e&sid=S", 29.0, 1.0),
            // After the poll's answer: stays after it.
            at("POST", "polling&t=f&sid=S", 40.0, 1.0),
        ];
        polls_after_their_posts(&mut list);
        let order: Vec<String> = list
            .iter()
            .map(|e| {
                let t = e.url.query_pairs().find(|(k, _)| k == "t");
                t.map_or("ws".to_owned(), |(_, v)| v.into_owned())
            })
            .collect();
        assert_eq!(order, ["a", "c", "e", "b", "ws", "d", "f"]);
    }

    use super::*;

    #[test]
    fn of_websockets_open_at_once_the_one_that_sent_most_is_kept() {
        use crate::convert::testing::exchange;
        let socket = |path: &str, start: f64, sent: &[f64], received: &[f64]| {
            let mut e = exchange("GET", &format!("http://app{path}"), 101, "", "");
            e.wall_ms = start;
            e.duration_ms = 2.0;
            let message = |sent: bool, wall_ms: f64| RecordedMessage {
                sent,
                wall_ms,
                event: None,
                text: "{}".to_owned(),
            };
            let mut messages: Vec<RecordedMessage> =
                sent.iter().map(|&t| message(true, t)).collect();
            messages.extend(received.iter().map(|&t| message(false, t)));
            e.socket = Some(Box::new(RecordedSocket {
                events: false,
                messages,
            }));
            e
        };
        let mut list = vec![
            // A page's event feed, open all along, only read.
            socket("/events", 0.0, &[], &[50.0, 400.0]),
            exchange("GET", "http://app/api", 200, "", ""),
            socket("/channels?s=a", 100.0, &[], &[]),
            socket("/channels?s=b", 110.0, &[120.0], &[130.0]),
            socket("/channels?s=c", 115.0, &[116.0, 200.0, 300.0], &[310.0]),
            // Opened after the others closed: a group of its own.
            socket("/later", 1000.0, &[1001.0], &[]),
        ];
        list[1].wall_ms = 90.0;
        let mut warnings = Vec::new();
        one_websocket_at_a_time(&mut list, &mut warnings);
        let paths: Vec<String> = list.iter().map(|e| e.url.path().to_owned()).collect();
        assert_eq!(paths, ["/api", "/channels", "/later"]);
        assert_eq!(list[1].url.query(), Some("s=c"));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("holds one at a time"), "{warnings:?}");
    }

    #[test]
    fn a_websocket_that_carried_no_message_is_still_a_socket() {
        let entry = |status: u16, resource: Option<&str>, upgrade: bool| {
            let mut entry = Entry::default();
            entry.response.status = status;
            entry.resource_type = resource.map(str::to_owned);
            if upgrade {
                entry.request.headers.push(crate::har::Header {
                    name: "Upgrade".to_owned(),
                    value: "websocket".to_owned(),
                    ..Default::default()
                });
            }
            entry
        };
        assert!(upgraded_to_websocket(&entry(101, Some("websocket"), false)));
        assert!(upgraded_to_websocket(&entry(101, None, true)));
        // Refused, or not a WebSocket: an ordinary request.
        assert!(!upgraded_to_websocket(&entry(400, Some("websocket"), true)));
        assert!(!upgraded_to_websocket(&entry(101, None, false)));
        let socket = recorded_socket(true, Vec::new(), Vec::new()).expect("a socket");
        assert!(socket.messages.is_empty() && !socket.events);
        assert!(recorded_socket(false, Vec::new(), Vec::new()).is_none());
    }

    #[test]
    fn dates_with_zones_and_fractions() {
        assert_eq!(parse_date_ms("1970-01-01T00:00:01.500Z"), Some(1500.0));
        assert_eq!(
            parse_date_ms("2026-11-25T06:31:14.123Z"),
            Some(1_795_588_274_123.0)
        );
        assert_eq!(
            parse_date_ms("2026-11-25T07:31:14.123+01:00"),
            Some(1_795_588_274_123.0)
        );
        assert_eq!(parse_date_ms("yesterday"), None);
    }
}

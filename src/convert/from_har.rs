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
        let described = format!(
            "entry {} ({} {})",
            index + 1,
            entry.request.method,
            entry.request.url
        );
        match exchange(index, entry, &mut self.used) {
            Ok(exchange) => self.list.push(exchange),
            Err(problem) => self
                .warnings
                .push(format!("{described}: {problem}; left out")),
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
        list.shrink_to_fit();
        list.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
        polls_after_their_posts(&mut list);
        let first = list.first().map_or(0.0, |exchange| exchange.wall_ms);
        for exchange in &mut list {
            exchange.started_ms = exchange.wall_ms - first;
        }
        (list, self.warnings)
    }
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

fn exchange(index: usize, entry: Entry, used: &mut UsedHeaders) -> Result<Exchange, String> {
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
    let socket = recorded_socket(entry.web_socket_messages, entry.event_source_messages);
    let content = entry.response.content;
    let encoding = content.encoding;
    let response_body = content
        .text
        .map(|text| decode_text(text, encoding.as_deref()));
    Ok(Exchange {
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
    })
}

/// A socket's text messages (binary, control and close frames are not replayed), or its
/// events.
fn recorded_socket(
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
    if messages.is_empty() {
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

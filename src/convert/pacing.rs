//! Time: think times from the gaps in the recording, loops from requests repeated at a steady
//! interval, and server-directed pacing — a loop whose interval matches a number an earlier
//! response returned (like `eventsPeriodSecs`) waits for that number, not a constant.

use super::model::{
    DraftExtract, DraftRequest, DraftStep, Exchange, ExtractSource, MessageStep, Think,
};
use std::collections::BTreeMap;

use super::offers::offers_where;

/// Gaps shorter than this are the browser's own pace (parallel fetches, rendering), not a
/// person thinking.
const MIN_THINK_MS: f64 = 500.0;
/// A loop needs this many repetitions in a row.
const MIN_LOOP: usize = 3;
/// Intervals within this fraction of their median count as steady.
const STEADY: f64 = 0.2;
/// A response number matches an interval within this fraction.
const MATCH: f64 = 0.15;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    pub(crate) think_scale: f64,
    pub(crate) no_think: bool,
}

fn signature(request: &DraftRequest) -> String {
    let keys: Vec<&str> = request.query.iter().map(|(k, _)| k.as_str()).collect();
    format!(
        "{} /{}?{}",
        request.method,
        request.path.join("/"),
        keys.join("&")
    )
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// Milliseconds as seconds with one decimal, at most the longest think a scenario may hold
/// (a capture left open overnight pauses a day, not longer).
fn round_secs(ms: f64) -> f64 {
    ((ms / 100.0).round() / 10.0).min(crate::units::MAX_THINK.as_secs_f64())
}

/// A step that refers to a request by its position; `materialize` makes it a `DraftStep`
/// once every pass has added its extracts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Planned {
    Request(usize),
    Think(Think),
    Repeat {
        count: u64,
        comment: String,
        steps: Vec<Planned>,
    },
}

/// The steps of a plan; `request_at` gives the request at a position.
pub(crate) fn materialize<F: FnMut(usize) -> DraftRequest>(
    planned: &[Planned],
    request_at: &mut F,
) -> Vec<DraftStep> {
    planned
        .iter()
        .map(|step| match step {
            Planned::Request(index) => DraftStep::Request(Box::new(request_at(*index))),
            Planned::Think(think) => DraftStep::Think(think.clone()),
            Planned::Repeat {
                count,
                comment,
                steps,
            } => DraftStep::Repeat {
                count: *count,
                comment: comment.clone(),
                steps: materialize(steps, request_at),
            },
        })
        .collect()
}

/// Adds one to `counts[position]` for each step of the plan that sends the request at
/// `position`.
pub(crate) fn count_requests(planned: &[Planned], counts: &mut [usize]) {
    for step in planned {
        match step {
            Planned::Request(index) => counts[*index] += 1,
            Planned::Repeat { steps, .. } => count_requests(steps, counts),
            Planned::Think(_) => {}
        }
    }
}

/// The steps for `indices` (positions in `requests`/`exchanges`, in recorded order).
/// May add extracts to earlier requests for server-directed pacing.
pub(crate) fn plan(
    indices: &[usize],
    requests: &mut [DraftRequest],
    exchanges: &[Exchange],
    pacing: Pacing,
    thinks: &SocketThinks,
    numbers: &mut ServerNumbers,
) -> Vec<Planned> {
    let mut steps = Vec::new();
    let mut k = 0;
    while k < indices.len() {
        let first = indices[k];
        let sig = signature(&requests[first]);
        let mut end = k + 1;
        while end < indices.len() && signature(&requests[indices[end]]) == sig {
            end += 1;
        }
        let run = &indices[k..end];
        if run.len() >= MIN_LOOP {
            if let Some(interval) = steady_interval(run, exchanges) {
                let gap_before = first
                    .checked_sub(1)
                    .map(|prev| gap_ms(prev, first, thinks, exchanges, pacing));
                let leading =
                    gap_before.is_some_and(|gap| (gap - interval).abs() <= interval * 0.25);
                if !leading {
                    push_think(&mut steps, gap_before, pacing);
                }
                let think = server_directed(first, interval, requests, exchanges, numbers)
                    .unwrap_or(Think::Seconds(round_secs(interval * pacing.think_scale)));
                let think_step = if pacing.no_think && matches!(think, Think::Seconds(_)) {
                    None
                } else {
                    Some(Planned::Think(think))
                };
                let request = Planned::Request(first);
                let body = match (leading, think_step) {
                    (true, Some(think)) => vec![think, request],
                    (false, Some(think)) => vec![request, think],
                    (_, None) => vec![request],
                };
                steps.push(Planned::Repeat {
                    count: run.len() as u64,
                    comment: format!(
                        "recorded {} times in a row, every {:.1} s (entries {}-{})",
                        run.len(),
                        interval / 1000.0,
                        requests[first].entry + 1,
                        requests[*run.last().expect("non-empty")].entry + 1
                    ),
                    steps: body,
                });
                k = end;
                continue;
            }
        }
        let gap = first
            .checked_sub(1)
            .map(|prev| gap_ms(prev, first, thinks, exchanges, pacing));
        if k > 0 || first > 0 {
            push_think(&mut steps, gap, pacing);
        }
        steps.push(Planned::Request(first));
        k += 1;
    }
    steps
}

/// The pause between the end of request `prev` and the start of `next`, less the pauses a
/// socket's steps already take in it: a socket's `think:` steps are written among the
/// requests (convert's writer puts them where they were recorded), and the user would
/// otherwise wait twice.
fn gap_ms(
    prev: usize,
    next: usize,
    thinks: &SocketThinks,
    exchanges: &[Exchange],
    pacing: Pacing,
) -> f64 {
    let gap = exchanges[next].started_ms - exchanges[prev].ended_ms();
    if pacing.think_scale <= 0.0 {
        return gap;
    }
    let from = exchanges[prev].wall_ms + exchanges[prev].duration_ms;
    let to = exchanges[next].wall_ms;
    gap - thinks.between_ms(from, to, pacing.think_scale)
}

/// The `think:` steps of every socket, by when they were recorded, so that the pauses
/// between two requests are found without reading every request's socket again for each gap
/// (that made planning quadratic in the capture: 46 % of a 50,000-entry convert).
#[derive(Debug, Default)]
pub(crate) struct SocketThinks {
    /// `(recorded at, order, seconds)`, sorted by the time; `order` is the step's place
    /// among all sockets' steps (requests in order, then steps in order).
    thinks: Vec<(f64, usize, f64)>,
}

impl SocketThinks {
    pub(crate) fn of(requests: &[DraftRequest]) -> Self {
        let steps = (requests.iter())
            .filter_map(|request| request.socket.as_deref())
            .flat_map(|socket| socket.at_ms.iter().zip(&socket.steps));
        let mut thinks: Vec<(f64, usize, f64)> = steps
            .enumerate()
            .filter_map(|(order, (at, step))| match step {
                // A time that is not a number is never within a gap.
                MessageStep::Think(seconds) if !at.is_nan() => Some((*at, order, *seconds)),
                _ => None,
            })
            .collect();
        thinks.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Self { thinks }
    }

    /// The milliseconds the thinks recorded in `(from, to]` take at `think_scale`, summed in
    /// the sockets' order (the same sum, to the last bit, as reading them in that order).
    fn between_ms(&self, from: f64, to: f64, think_scale: f64) -> f64 {
        let start = self.thinks.partition_point(|(at, _, _)| *at <= from);
        let end = self.thinks.partition_point(|(at, _, _)| *at <= to);
        let mut within = self.thinks[start..end.max(start)].to_vec();
        within.sort_by_key(|(_, order, _)| *order);
        within
            .iter()
            .map(|(_, _, seconds)| seconds * 1000.0 / think_scale)
            .sum()
    }
}

fn push_think(steps: &mut Vec<Planned>, gap_ms: Option<f64>, pacing: Pacing) {
    let Some(gap) = gap_ms else { return };
    if pacing.no_think || gap < MIN_THINK_MS {
        return;
    }
    let seconds = round_secs(gap * pacing.think_scale);
    if seconds > 0.0 {
        steps.push(Planned::Think(Think::Seconds(seconds)));
    }
}

/// The median start-to-start interval of a run, when every interval is within 20 % of it.
fn steady_interval(run: &[usize], exchanges: &[Exchange]) -> Option<f64> {
    let mut intervals: Vec<f64> = run
        .windows(2)
        .map(|w| exchanges[w[1]].started_ms - exchanges[w[0]].started_ms)
        .collect();
    let median = median(&mut intervals);
    (median >= MIN_THINK_MS
        && intervals
            .iter()
            .all(|i| (i - median).abs() <= median * STEADY))
    .then_some(median)
}

/// (key, JSONPath, number) of every positive number a response's JSON holds (numbers written
/// as strings too).
fn json_numbers(exchange: &Exchange) -> impl Iterator<Item = (Option<String>, String, f64)> {
    let positive = &mut |value: &str| value.parse::<f64>().is_ok_and(|n| n > 0.0);
    offers_where(exchange, positive)
        .into_iter()
        .filter_map(|(_, offer)| {
            let ExtractSource::JsonPath(path) = offer.source else {
                return None;
            };
            let number = offer.value.parse::<f64>().ok()?;
            (number > 0.0).then_some((offer.key, path, number))
        })
}

fn matches_interval(number: f64, interval_ms: f64) -> bool {
    (number * 1000.0 - interval_ms).abs() <= interval_ms * MATCH
        || (number - interval_ms).abs() <= interval_ms * MATCH
}

/// The positive numbers the responses' JSON held, read once in recorded order, each with the
/// newest response that held it: the newest response before a loop with a number near its
/// interval is found without reading every earlier response again for each loop.
#[derive(Debug, Default)]
pub(crate) struct ServerNumbers {
    /// A number's bits (ordered as the numbers are, all being positive) -> newest response.
    newest: BTreeMap<u64, usize>,
    read: usize,
}

impl ServerNumbers {
    /// The newest of `exchanges[..before]` whose JSON holds a number matching the interval.
    fn newest_matching(
        &mut self,
        before: usize,
        interval_ms: f64,
        exchanges: &[Exchange],
    ) -> Lookup {
        let before = before.min(exchanges.len());
        if before < self.read {
            return Lookup::Behind;
        }
        for (i, exchange) in exchanges.iter().enumerate().take(before).skip(self.read) {
            for (_, _, number) in json_numbers(exchange) {
                if number.is_finite() {
                    self.newest.insert(number.to_bits(), i);
                }
            }
        }
        self.read = before;
        // The bands a match lies in, a little wider than exact: each found number is judged
        // by the exact rule.
        let band = |center: f64| {
            let low = center * (1.0 - MATCH) * (1.0 - 1e-9);
            let high = center * (1.0 + MATCH) * (1.0 + 1e-9);
            low.to_bits()..=high.to_bits()
        };
        let newest = [band(interval_ms / 1000.0), band(interval_ms)]
            .into_iter()
            .flat_map(|bits| self.newest.range(bits))
            .filter(|(bits, _)| matches_interval(f64::from_bits(**bits), interval_ms))
            .map(|(_, &i)| i)
            .max();
        newest.map_or(Lookup::NoneMatch, Lookup::Newest)
    }
}

enum Lookup {
    Newest(usize),
    NoneMatch,
    /// Asked about an earlier point than was read (loops are planned in recorded order, but
    /// for the pages added at the end): the caller reads back itself.
    Behind,
}

/// A number an earlier response returned that matches the interval, in seconds or in
/// milliseconds; the newest such response wins, and names that say "period", "interval",
/// "delay" or "wait" win within a response.
fn server_directed(
    before: usize,
    interval_ms: f64,
    requests: &mut [DraftRequest],
    exchanges: &[Exchange],
    numbers: &mut ServerNumbers,
) -> Option<Think> {
    let from = match numbers.newest_matching(before, interval_ms, exchanges) {
        Lookup::Newest(i) => i + 1,
        Lookup::NoneMatch => return None,
        Lookup::Behind => before,
    };
    for i in (0..from).rev() {
        let mut candidates: Vec<(String, String, f64)> = Vec::new();
        for (key, path, number) in json_numbers(&exchanges[i]) {
            let key = key.unwrap_or_else(|| "period".to_owned());
            if (number * 1000.0 - interval_ms).abs() <= interval_ms * MATCH {
                candidates.push((key, path, 1.0));
            } else if (number - interval_ms).abs() <= interval_ms * MATCH {
                candidates.push((key, path, 1000.0));
            }
        }
        let named = |key: &str| {
            let lower = key.to_ascii_lowercase();
            [
                "period", "interval", "delay", "wait", "poll", "secs", "seconds",
            ]
            .iter()
            .any(|word| lower.contains(word))
        };
        candidates.sort_by_key(|(key, _, _)| !named(key));
        let Some((key, path, divisor)) = candidates.into_iter().next() else {
            continue;
        };
        let source = ExtractSource::JsonPath(path);
        let var = match requests[i].extracts.iter().find(|e| e.source == source) {
            Some(existing) => existing.var.clone(),
            None => {
                let var: String = key
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                let (method, path) = (requests[i].method.clone(), requests[i].path.join("/"));
                requests[i].extracts.push(DraftExtract {
                    var: var.clone(),
                    source,
                    comment: format!(
                        "from the response to {method} /{path} (entry {}); paces the loop below",
                        requests[i].entry + 1
                    ),
                });
                var
            }
        };
        let template = if divisor == 1.0 {
            format!("{{{{ {var} }}}}")
        } else {
            format!("{{{{ {var} / 1000 }}}}")
        };
        let comment = format!(
            "the server's {var} (entry {}): the recording waited {:.1} s between these requests",
            requests[i].entry + 1,
            interval_ms / 1000.0
        );
        return Some(Think::Template { template, comment });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::request::draft_request;
    use crate::convert::testing::exchange;

    fn timed(list: Vec<(f64, Exchange)>) -> Vec<Exchange> {
        list.into_iter()
            .enumerate()
            .map(|(entry, (at, mut ex))| {
                ex.entry = entry;
                ex.started_ms = at;
                ex
            })
            .collect()
    }

    #[test]
    fn a_steady_repeat_paced_by_the_server_becomes_a_loop_with_a_template_think() {
        let list = timed(vec![
            (
                0.0,
                exchange(
                    "POST",
                    "http://app/start",
                    200,
                    "{}",
                    r#"{"gameSessionId":"g","eventsPeriodSecs":2}"#,
                ),
            ),
            (
                2005.0,
                exchange("POST", "http://app/events", 200, "[]", "{}"),
            ),
            (
                4010.0,
                exchange("POST", "http://app/events", 200, "[]", "{}"),
            ),
            (
                6020.0,
                exchange("POST", "http://app/events", 200, "[]", "{}"),
            ),
            (9000.0, exchange("POST", "http://app/end", 200, "{}", "{}")),
        ]);
        let mut requests: Vec<_> = list.iter().map(draft_request).collect();
        let thinks = SocketThinks::of(&requests);
        let steps = plan(
            &[0, 1, 2, 3, 4],
            &mut requests,
            &list,
            Pacing {
                think_scale: 1.0,
                no_think: false,
            },
            &thinks,
            &mut ServerNumbers::default(),
        );
        assert_eq!(requests[0].extracts[0].var, "eventsPeriodSecs");
        let Planned::Repeat {
            count, steps: body, ..
        } = &steps[1]
        else {
            panic!("expected a loop: {steps:#?}")
        };
        assert_eq!(*count, 3);
        let Planned::Think(Think::Template { template, .. }) = &body[0] else {
            panic!("{body:#?}")
        };
        assert_eq!(template, "{{ eventsPeriodSecs }}");
        assert_eq!(body[1], Planned::Request(1));
        assert!(
            matches!(&steps[2], Planned::Think(Think::Seconds(s)) if (*s - 3.0).abs() < 0.01),
            "{:?}",
            steps[2]
        );
        assert_eq!(steps[3], Planned::Request(4));
    }

    #[test]
    fn the_pacing_number_is_found_however_far_back_and_only_when_it_matches() {
        let mut list = vec![(
            0.0,
            exchange(
                "GET",
                "http://app/config",
                200,
                "",
                r#"{"pollSeconds":"5"}"#,
            ),
        )];
        for k in 1..50 {
            list.push((
                k as f64 * 10.0,
                exchange("GET", "http://app/other", 200, "", r#"{"n":7}"#),
            ));
        }
        for k in 0..4 {
            list.push((
                1000.0 + k as f64 * 5000.0,
                exchange("GET", "http://app/poll", 200, "", "{}"),
            ));
        }
        for k in 0..3 {
            list.push((
                30_000.0 + k as f64 * 3000.0,
                exchange("GET", "http://app/tick", 200, "", "{}"),
            ));
        }
        let list = timed(list);
        let mut requests: Vec<_> = list.iter().map(draft_request).collect();
        let positions: Vec<usize> = (0..list.len()).collect();
        let pacing = Pacing {
            think_scale: 1.0,
            no_think: false,
        };
        let socket_thinks = SocketThinks::of(&requests);
        let steps = plan(
            &positions,
            &mut requests,
            &list,
            pacing,
            &socket_thinks,
            &mut ServerNumbers::default(),
        );
        let thinks: Vec<&Think> = steps
            .iter()
            .filter_map(|step| match step {
                Planned::Repeat { steps, .. } => steps.iter().find_map(|s| match s {
                    Planned::Think(think) => Some(think),
                    _ => None,
                }),
                _ => None,
            })
            .collect();
        assert_eq!(thinks.len(), 2, "{steps:#?}");
        assert!(
            matches!(thinks[0], Think::Template { template, .. } if template == "{{ pollSeconds }}"),
            "{thinks:?}"
        );
        // Nothing the server sent matches 3 s: a constant.
        assert_eq!(*thinks[1], Think::Seconds(3.0));
        // Asked again about an earlier point: read back from there, the same answer.
        let mut numbers = ServerNumbers::default();
        plan(
            &positions[40..],
            &mut requests,
            &list,
            pacing,
            &socket_thinks,
            &mut numbers,
        );
        let early = plan(
            &positions,
            &mut requests,
            &list,
            pacing,
            &socket_thinks,
            &mut numbers,
        );
        assert_eq!(early, steps);
    }

    #[test]
    fn gaps_become_scaled_think_times_and_short_gaps_none() {
        let list = timed(vec![
            (0.0, exchange("GET", "http://app/a", 200, "", "{}")),
            (100.0, exchange("GET", "http://app/b", 200, "", "{}")),
            (3105.0, exchange("GET", "http://app/c", 200, "", "{}")),
        ]);
        let mut requests: Vec<_> = list.iter().map(draft_request).collect();
        let thinks = SocketThinks::of(&requests);
        let steps = plan(
            &[0, 1, 2],
            &mut requests,
            &list,
            Pacing {
                think_scale: 0.5,
                no_think: false,
            },
            &thinks,
            &mut ServerNumbers::default(),
        );
        assert_eq!(steps.len(), 4);
        assert!(
            matches!(&steps[2], Planned::Think(Think::Seconds(s)) if (*s - 1.5).abs() < 0.01),
            "{:?}",
            steps[2]
        );
        let thinks = SocketThinks::of(&requests);
        let none = plan(
            &[0, 1, 2],
            &mut requests,
            &list,
            Pacing {
                think_scale: 1.0,
                no_think: true,
            },
            &thinks,
            &mut ServerNumbers::default(),
        );
        assert_eq!(none.len(), 3);
    }

    #[test]
    fn a_socket_s_thinks_are_not_waited_twice() {
        use crate::convert::model::{DraftSocket, SendBody};
        let mut list = timed(vec![
            (0.0, exchange("GET", "http://app/ws", 101, "", "")),
            (100.0, exchange("GET", "http://app/a", 200, "", "{}")),
            (5105.0, exchange("POST", "http://app/logout", 200, "", "{}")),
        ]);
        for exchange in &mut list {
            exchange.wall_ms = 1_700_000_000_000.0 + exchange.started_ms;
        }
        let mut requests: Vec<_> = list.iter().map(draft_request).collect();
        // The socket paused 3 s before a send between the two requests.
        let send = MessageStep::Send(SendBody::Text("hi".to_owned()));
        requests[0].socket = Some(Box::new(DraftSocket {
            events: false,
            steps: vec![MessageStep::Think(3.0), send],
            at_ms: vec![1_700_000_003_000.0; 2],
        }));
        let thinks = SocketThinks::of(&requests);
        let steps = plan(
            &[0, 1, 2],
            &mut requests,
            &list,
            Pacing {
                think_scale: 1.0,
                no_think: false,
            },
            &thinks,
            &mut ServerNumbers::default(),
        );
        let thinks: Vec<f64> = steps
            .iter()
            .filter_map(|step| match step {
                Planned::Think(Think::Seconds(s)) => Some(*s),
                _ => None,
            })
            .collect();
        assert_eq!(thinks, [2.0]);
    }

    #[test]
    fn socket_thinks_between_two_times_are_summed_as_reading_every_socket_would() {
        use crate::convert::model::{DraftSocket, SendBody};
        let list = timed(vec![
            (0.0, exchange("GET", "http://app/ws", 101, "", "")),
            (1.0, exchange("GET", "http://app/a", 200, "", "{}")),
            (2.0, exchange("GET", "http://app/ws2", 101, "", "")),
        ]);
        let mut requests: Vec<_> = list.iter().map(draft_request).collect();
        let send = || MessageStep::Send(SendBody::Text("hi".to_owned()));
        // Two sockets whose steps interleave in time; thinks that do not add up exactly in
        // floating point, a send between them, a time that is not a number.
        requests[0].socket = Some(Box::new(DraftSocket {
            events: false,
            steps: vec![
                MessageStep::Think(0.1),
                send(),
                MessageStep::Think(0.7),
                MessageStep::Think(1e-9),
                MessageStep::Think(5.0),
            ],
            at_ms: vec![100.0, 150.0, 300.0, 300.0, f64::NAN],
        }));
        requests[2].socket = Some(Box::new(DraftSocket {
            events: false,
            steps: vec![MessageStep::Think(0.2), MessageStep::Think(0.3)],
            at_ms: vec![200.0, 400.0],
        }));
        // What reading every socket for each gap finds (the way it was done before).
        let naive = |from: f64, to: f64, scale: f64| -> f64 {
            (requests.iter())
                .filter_map(|request| request.socket.as_deref())
                .flat_map(|socket| socket.at_ms.iter().zip(&socket.steps))
                .filter(|(at, _)| **at > from && **at <= to)
                .map(|(_, step)| match step {
                    MessageStep::Think(seconds) => seconds * 1000.0 / scale,
                    _ => 0.0,
                })
                .sum()
        };
        let thinks = SocketThinks::of(&requests);
        let times = [0.0, 99.0, 100.0, 150.0, 200.0, 300.0, 350.0, 400.0, 1e9];
        for from in times {
            for to in times {
                for scale in [1.0, 0.3] {
                    let (got, want) = (thinks.between_ms(from, to, scale), naive(from, to, scale));
                    // Equal to the last bit (but for the sign of a zero, which no gap sees).
                    assert_eq!(got, want, "({from}, {to}] at {scale}");
                }
            }
        }
        // From after the first think, up to and with the last one.
        assert!((thinks.between_ms(100.0, 400.0, 1.0) - 1200.000001).abs() < 1e-6);
    }
}

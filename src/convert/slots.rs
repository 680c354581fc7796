//! The "slots" of a request: every place a value can be replaced by a template (a path
//! segment, a query value, a JSON leaf, a form field, a header, a bearer token, a cookie),
//! walked without copying the values, and written by [`set_slot`].

use std::borrow::Cow;

use serde_json::Value;

use super::model::{DraftBody, DraftRequest};

/// A place in a request that holds one value. Positions are stable under [`set_slot`]: a
/// template written into a slot keeps every other slot where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    PathSegment(usize),
    Query(usize),
    /// The n-th string or number leaf of a JSON body, in document order.
    Json(usize),
    /// The n-th leaf (counted as [`Slot::Json`]'s, only strings are slots) of the JSON in a
    /// raw body framed as Socket.IO and Engine.IO frame their packets over long-polling: a
    /// packet number, then JSON (`40{"token":"..."}`).
    Packet(usize),
    Form(usize),
    /// A text part of a multipart body.
    Multipart(usize),
    Header(usize),
    /// The token after `Bearer ` in a header.
    Bearer(usize),
    /// The `index`-th `name=value` pair of the `Cookie` header at `header`.
    Cookie {
        header: usize,
        index: usize,
    },
}

/// A slot, its current value, and the name it goes by (a field or parameter name, a
/// cookie's name), if any: borrowed from the request but for decoded path segments and
/// numbers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlotValue<'a> {
    pub(crate) slot: Slot,
    pub(crate) value: Cow<'a, str>,
    pub(crate) key: Option<Cow<'a, str>>,
    /// For JSON leaves: whether the value is a number (kept as a number when templated).
    pub(crate) number: bool,
}

impl SlotValue<'_> {
    /// The same slot holding its own copies, for a caller that changes the request.
    pub(crate) fn into_owned(self) -> SlotValue<'static> {
        SlotValue {
            slot: self.slot,
            value: Cow::Owned(self.value.into_owned()),
            key: self.key.map(|key| Cow::Owned(key.into_owned())),
            number: self.number,
        }
    }
}

fn slot<'a>(slot: Slot, value: impl Into<Cow<'a, str>>, key: Option<&'a str>) -> SlotValue<'a> {
    SlotValue {
        slot,
        value: value.into(),
        key: key.map(Cow::Borrowed),
        number: false,
    }
}

/// Every slot of `request`, in order: path, query, headers, body.
pub(crate) fn slots(request: &DraftRequest) -> Vec<SlotValue<'_>> {
    let mut out = Vec::new();
    for (index, segment) in request.path.iter().enumerate() {
        let decoded = percent_decode(segment);
        if !decoded.is_empty() {
            let key = index
                .checked_sub(1)
                .and_then(|prev| request.path.get(prev))
                .map(String::as_str);
            out.push(slot(Slot::PathSegment(index), decoded, key));
        }
    }
    for (index, (name, value)) in request.query.iter().enumerate() {
        out.push(slot(Slot::Query(index), value.as_str(), Some(name)));
    }
    for (index, (name, value)) in request.headers.iter().enumerate() {
        if name.eq_ignore_ascii_case("cookie") {
            // Each cookie is a value of its own: a token a script copied from a response.
            for (at, (cookie, value)) in cookie_pairs(value).enumerate() {
                let place = Slot::Cookie {
                    header: index,
                    index: at,
                };
                out.push(slot(place, value, Some(cookie)));
            }
        } else if let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            out.push(slot(Slot::Bearer(index), token, Some(name)));
        } else {
            out.push(slot(Slot::Header(index), value.as_str(), Some(name)));
        }
    }
    match &request.body {
        DraftBody::Json(value) => json_leaves(value, None, &mut 0, &mut out),
        DraftBody::Form(pairs) => {
            for (index, (name, value)) in pairs.iter().enumerate() {
                out.push(slot(Slot::Form(index), value.as_str(), Some(name)));
            }
        }
        DraftBody::Multipart(parts) => {
            for (index, part) in parts.iter().enumerate() {
                if part.file.is_none() {
                    out.push(slot(
                        Slot::Multipart(index),
                        part.value.as_str(),
                        Some(&part.name),
                    ));
                }
            }
        }
        DraftBody::Raw { text, .. } => {
            if let Some((_, json)) = packet(text) {
                let mut leaves = Vec::new();
                json_leaves(&json, None, &mut 0, &mut leaves);
                for leaf in leaves.into_iter().filter(|leaf| !leaf.number) {
                    let Slot::Json(index) = leaf.slot else {
                        continue;
                    };
                    out.push(SlotValue {
                        slot: Slot::Packet(index),
                        ..leaf.into_owned()
                    });
                }
            }
        }
        DraftBody::None => {}
    }
    out
}

/// A packet's number and JSON (`42["chat",{}]`: `42`), when the text is one.
fn packet(text: &str) -> Option<(&str, Value)> {
    let payload = text.trim_start_matches(|c: char| c.is_ascii_digit());
    let number = &text[..text.len() - payload.len()];
    if number.is_empty() || !payload.starts_with(['[', '{']) {
        return None;
    }
    Some((number, serde_json::from_str(payload).ok()?))
}

fn json_leaves<'a>(
    value: &'a Value,
    key: Option<&'a str>,
    next: &mut usize,
    out: &mut Vec<SlotValue<'a>>,
) {
    let (text, number): (Cow<'a, str>, bool) = match value {
        Value::Object(map) => {
            for (name, child) in map {
                json_leaves(child, Some(name), next, out);
            }
            return;
        }
        Value::Array(items) => {
            for child in items {
                json_leaves(child, key, next, out);
            }
            return;
        }
        Value::String(text) => (Cow::Borrowed(text), false),
        Value::Number(number) => (Cow::Owned(number.to_string()), true),
        Value::Bool(_) | Value::Null => return,
    };
    out.push(SlotValue {
        slot: Slot::Json(*next),
        value: text,
        key: key.map(Cow::Borrowed),
        number,
    });
    *next += 1;
}

/// Replaces the value in `slot` by `template`.
pub(crate) fn set_slot(request: &mut DraftRequest, slot: &Slot, template: &str) {
    match *slot {
        Slot::PathSegment(index) => request.path[index] = template.to_owned(),
        Slot::Query(index) => request.query[index].1 = template.to_owned(),
        Slot::Form(index) => {
            if let DraftBody::Form(pairs) = &mut request.body {
                pairs[index].1 = template.to_owned();
            }
        }
        Slot::Multipart(index) => {
            if let DraftBody::Multipart(parts) = &mut request.body {
                parts[index].value = template.to_owned();
            }
        }
        Slot::Header(index) => request.headers[index].1 = template.to_owned(),
        Slot::Bearer(index) => request.headers[index].1 = format!("Bearer {template}"),
        Slot::Cookie { header, index } => {
            let pairs: Vec<String> = cookie_pairs(&request.headers[header].1)
                .enumerate()
                .map(|(at, (cookie, value))| {
                    let value = if at == index { template } else { value };
                    format!("{cookie}={value}")
                })
                .collect();
            request.headers[header].1 = pairs.join("; ");
        }
        Slot::Json(leaf) => {
            if let DraftBody::Json(value) = &mut request.body {
                if let Some(found) = json_leaf(value, leaf, &mut 0) {
                    *found = Value::String(template.to_owned());
                }
            }
        }
        Slot::Packet(leaf) => {
            if let DraftBody::Raw { text, .. } = &mut request.body {
                if let Some((number, mut json)) = packet(text) {
                    if let Some(found) = json_leaf(&mut json, leaf, &mut 0) {
                        *found = Value::String(template.to_owned());
                        *text = format!("{number}{json}");
                    }
                }
            }
        }
    }
}

/// The `wanted`-th string or number leaf, counting from `seen`, in [`json_leaves`]' order.
fn json_leaf<'a>(value: &'a mut Value, wanted: usize, seen: &mut usize) -> Option<&'a mut Value> {
    if value.is_string() || value.is_number() {
        if *seen == wanted {
            return Some(value);
        }
        *seen += 1;
        return None;
    }
    match value {
        Value::Object(map) => map
            .values_mut()
            .find_map(|child| json_leaf(child, wanted, seen)),
        Value::Array(items) => items
            .iter_mut()
            .find_map(|child| json_leaf(child, wanted, seen)),
        _ => None,
    }
}

/// A URL's text percent-decoded as a form value is (`+` kept); borrowed when there is
/// nothing to decode.
pub(crate) fn percent_decode(text: &str) -> Cow<'_, str> {
    // Nothing to decode (the form parser below would give the text back as it is: `+` is
    // sent to it as `%2B`).
    if !text.contains(['%', '&']) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default(),
    )
}

/// The `name=value` pairs of a `Cookie` header.
pub(crate) fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::request::draft_request;
    use crate::convert::testing::exchange;

    #[test]
    fn slots_cover_path_query_json_and_bearer() {
        let mut ex = exchange(
            "POST",
            "http://app/api/items/42?cb=1382584603667",
            200,
            r#"{"gameSessionId":"g1","n":[3]}"#,
            "{}",
        );
        ex.request_headers
            .push(("Authorization".to_owned(), "Bearer tok123".to_owned()));
        let mut request = draft_request(&ex);
        let found: Vec<SlotValue<'static>> = slots(&request)
            .into_iter()
            .map(SlotValue::into_owned)
            .collect();
        let values: Vec<&str> = found.iter().map(|s| s.value.as_ref()).collect();
        assert_eq!(
            values,
            ["api", "items", "42", "1382584603667", "tok123", "g1", "3"]
        );
        assert_eq!(found[2].key.as_deref(), Some("items"));
        assert!(found[6].number);
        set_slot(&mut request, &found[5].slot, "{{ gameSessionId }}");
        set_slot(&mut request, &found[4].slot, "{{ token }}");
        assert_eq!(
            request.body,
            DraftBody::Json(serde_json::json!({"gameSessionId": "{{ gameSessionId }}", "n": [3]}))
        );
        assert_eq!(request.headers.last().unwrap().1, "Bearer {{ token }}");
        // A leaf after a templated one is still found where it was.
        set_slot(&mut request, &found[6].slot, "{{ n }}");
        assert_eq!(
            request.body,
            DraftBody::Json(
                serde_json::json!({"gameSessionId": "{{ gameSessionId }}", "n": ["{{ n }}"]})
            )
        );
    }

    #[test]
    fn the_json_inside_a_packet_body_is_slots() {
        // Engine.IO's long-polling posts Socket.IO packets: the CONNECT packet carries the
        // login's token, an event its arguments.
        let mut request = DraftRequest {
            body: DraftBody::Raw {
                mime: "text/plain;charset=UTF-8".to_owned(),
                text: r#"40{"token":"d6d1d57a803f","n":1234}"#.to_owned(),
            },
            ..DraftRequest::default()
        };
        let found: Vec<(Slot, String, Option<String>)> = slots(&request)
            .into_iter()
            .map(|s| (s.slot, s.value.into_owned(), s.key.map(|k| k.into_owned())))
            .collect();
        // Numbers are left alone: a template in the text would send them as strings.
        assert_eq!(
            found,
            [(
                Slot::Packet(0),
                "d6d1d57a803f".to_owned(),
                Some("token".to_owned())
            )]
        );
        set_slot(&mut request, &Slot::Packet(0), "{{ token }}");
        let DraftBody::Raw { text, .. } = &request.body else {
            panic!("still raw")
        };
        assert_eq!(text, r#"40{"token":"{{ token }}","n":1234}"#);
        for plain in ["2probe", "ok", "40", "{\"a\":1}x"] {
            request.body = DraftBody::Raw {
                mime: "text/plain".to_owned(),
                text: plain.to_owned(),
            };
            assert!(slots(&request).is_empty(), "{plain}");
        }
    }

    #[test]
    fn each_cookie_of_a_cookie_header_is_a_slot() {
        let mut request = draft_request(&exchange("GET", "http://app/a", 200, "", "{}"));
        request.headers.push((
            "Cookie".to_owned(),
            "theme=dark; csrf=Xy12ab34Cd".to_owned(),
        ));
        let found: Vec<SlotValue<'static>> = slots(&request)
            .into_iter()
            .map(SlotValue::into_owned)
            .collect();
        let cookies: Vec<(&str, &str)> = found
            .iter()
            .filter(|s| matches!(s.slot, Slot::Cookie { .. }))
            .map(|s| (s.key.as_deref().unwrap(), s.value.as_ref()))
            .collect();
        assert_eq!(cookies, [("theme", "dark"), ("csrf", "Xy12ab34Cd")]);
        set_slot(&mut request, &found[2].slot, "{{ csrf }}");
        assert_eq!(request.headers[0].1, "theme=dark; csrf={{ csrf }}");
    }

    #[test]
    fn values_are_borrowed_from_the_request() {
        let request = draft_request(&exchange(
            "POST",
            "http://app/a%20b/c?q=1",
            200,
            r#"{"s":"x","n":2}"#,
            "{}",
        ));
        let found = slots(&request);
        let borrowed: Vec<bool> = found
            .iter()
            .map(|s| matches!(s.value, Cow::Borrowed(_)))
            .collect();
        // A decoded segment and a number are made; the rest is the request's own text.
        assert_eq!(borrowed, [false, true, true, true, false]);
    }
}

//! The scenario file as written: serde types that refuse unknown fields, before validation
//! and compilation. Sections that are validated node by node (steps, `json:`, `think:`,
//! `vars:`) are read as `IgnoredAny` here and taken from the YAML tree by `load`, so one
//! mistake does not hide the next.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A mapping read in file order.
#[derive(Debug)]
pub(super) struct Ordered<T>(pub(super) Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OrderedVisitor<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, T>()? {
                    entries.push((key, value));
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) host: Option<String>,
    pub(super) capture: Option<String>,
    pub(super) headers: Option<Ordered<String>>,
    pub(super) timeouts: Option<RawTimeouts>,
    pub(super) max_body: Option<String>,
    pub(super) trace_headers: Option<bool>,
    pub(super) http: Option<Http>,
    #[expect(
        dead_code,
        reason = "present so the key is known; load reads it from the tree"
    )]
    pub(super) data: Option<IgnoredAny>,
    #[expect(
        dead_code,
        reason = "present so the key is known; load reads it from the tree"
    )]
    pub(super) vars: Option<IgnoredAny>,
    #[expect(
        dead_code,
        reason = "present so the key is known; load reads it from the tree"
    )]
    pub(super) on_start: Option<IgnoredAny>,
    #[expect(
        dead_code,
        reason = "present so the key is known; load reads it from the tree"
    )]
    pub(super) flows: Option<IgnoredAny>,
    #[expect(
        dead_code,
        reason = "present so the key is known; load reads it from the tree"
    )]
    pub(super) on_stop: Option<IgnoredAny>,
    pub(super) thresholds: Option<Vec<String>>,
    pub(super) monitors: Option<Vec<String>>,
    pub(super) otlp: Option<String>,
    pub(super) auth: Option<RawAuth>,
    pub(super) relogin: Option<RawRelogin>,
    #[expect(
        dead_code,
        reason = "present so the key is known; scripts reads it from the tree"
    )]
    pub(super) scripts: Option<IgnoredAny>,
    #[expect(
        dead_code,
        reason = "present so the key is known; scripts reads it from the tree"
    )]
    pub(super) script_time_limit: Option<IgnoredAny>,
}

/// `auth:`: the credentials HTTP authentication challenges are answered with (templates).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) username: String,
    pub(super) password: String,
}

/// `relogin:`: what says a user's session ended.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelogin {
    pub(super) status: Option<Statuses>,
    pub(super) redirect: Option<RawText>,
}

/// A file part of a `multipart:` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilePart {
    pub(super) filename: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) content: Option<String>,
    pub(super) file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub(super) connect: Option<String>,
    pub(super) request: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawMode {
    Unique,
    Cycle,
    Random,
    Shared,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawData {
    pub(super) file: String,
    pub(super) mode: Option<RawMode>,
    #[serde(rename = "as")]
    pub(super) as_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlow {
    pub(super) name: Option<String>,
    pub(super) weight: Option<Weight>,
    pub(super) steps: Option<IgnoredAny>,
}

/// A flow's weight: a whole number of at least 1.
#[derive(Debug, Clone, Copy)]
pub(super) struct Weight(pub(super) u32);

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WeightVisitor;
        impl Visitor<'_> for WeightVisitor {
            type Value = Weight;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Weight, E> {
                match u32::try_from(v) {
                    Ok(w) if w >= 1 => Ok(Weight(w)),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Weight, E> {
                match u32::try_from(v) {
                    Ok(w) if w >= 1 => Ok(Weight(w)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(WeightVisitor)
    }
}

/// `http: 1.1 | 2 | auto` (YAML reads `1.1` and `2` as numbers).
#[derive(Debug)]
pub(super) struct Http(pub(super) super::HttpVersion);

impl<'de> Deserialize<'de> for Http {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Clone, Copy)]
        struct HttpVisitor;
        const EXPECTED: &str = "1.1, 2 or auto";
        impl Visitor<'_> for HttpVisitor {
            type Value = Http;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Http, E> {
                super::HttpVersion::parse(v)
                    .map(Http)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Http, E> {
                self.visit_str(&v.to_string())
                    .map_err(|_: E| E::invalid_value(de::Unexpected::Float(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Http, E> {
                self.visit_str(&v.to_string())
                    .map_err(|_: E| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Http, E> {
                self.visit_str(&v.to_string())
                    .map_err(|_: E| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }
        deserializer.deserialize_any(HttpVisitor)
    }
}

/// Status codes: one or a list.
#[derive(Debug, Clone)]
pub(super) struct Statuses(pub(super) Vec<u16>);

impl<'de> Deserialize<'de> for Statuses {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusesVisitor;
        fn status<E: de::Error>(v: i64) -> Result<u16, E> {
            match u16::try_from(v) {
                Ok(code) if (100..=599).contains(&code) => Ok(code),
                _ => Err(E::invalid_value(
                    de::Unexpected::Signed(v),
                    &"an HTTP status code (100 to 599)",
                )),
            }
        }
        impl<'de> Visitor<'de> for StatusesVisitor {
            type Value = Statuses;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status code or a list of status codes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Statuses, E> {
                status(v).map(|code| Statuses(vec![code]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Statuses, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Statuses, A::Error> {
                let mut codes = Vec::new();
                while let Some(code) = seq.next_element::<i64>()? {
                    codes.push(status(code)?);
                }
                if codes.is_empty() {
                    return Err(de::Error::invalid_length(0, &"at least one status code"));
                }
                Ok(Statuses(codes))
            }
        }
        deserializer.deserialize_any(StatusesVisitor)
    }
}

/// One step. Which kind it is follows from which key it has; `load` checks that exactly
/// one kind is given and that request fields only come with a request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub(super) get: Option<String>,
    pub(super) post: Option<String>,
    pub(super) put: Option<String>,
    pub(super) patch: Option<String>,
    pub(super) delete: Option<String>,
    pub(super) head: Option<String>,
    pub(super) options: Option<String>,
    pub(super) request: Option<RawRequestLine>,
    pub(super) name: Option<String>,
    pub(super) headers: Option<Ordered<String>>,
    pub(super) json: Option<IgnoredAny>,
    pub(super) form: Option<Ordered<String>>,
    pub(super) body: Option<String>,
    pub(super) multipart: Option<IgnoredAny>,
    pub(super) extract: Option<Ordered<RawExtract>>,
    pub(super) check: Option<Vec<RawCheck>>,
    pub(super) expect_status: Option<Statuses>,
    pub(super) recorded: Option<u32>,
    pub(super) http: Option<Http>,
    pub(super) think: Option<IgnoredAny>,
    pub(super) repeat: Option<IgnoredAny>,
    pub(super) steps: Option<IgnoredAny>,
    #[serde(rename = "as")]
    pub(super) index_as: Option<String>,
    pub(super) parallel: Option<IgnoredAny>,
    pub(super) emit: Option<Ordered<String>>,
    pub(super) outcome: Option<String>,
    pub(super) when: Option<String>,
    pub(super) js: Option<String>,
    pub(super) ws: Option<String>,
    pub(super) sse: Option<String>,
    pub(super) subprotocols: Option<Vec<String>>,
    pub(super) send: Option<IgnoredAny>,
    pub(super) receive: Option<IgnoredAny>,
    pub(super) every: Option<String>,
    pub(super) close: Option<String>,
    pub(super) timeout: Option<String>,
    pub(super) from: Option<String>,
}

/// `receive:`'s condition: every part given must hold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMessageCondition {
    pub(super) event: Option<String>,
    pub(super) jsonpath: Option<String>,
    pub(super) equals: Option<serde_json::Value>,
    pub(super) matches: Option<String>,
    pub(super) regex: Option<String>,
}

/// The keys that say a step is a request with that method.
pub(super) const METHOD_KEYS: &[&str] =
    &["get", "post", "put", "patch", "delete", "head", "options"];

impl RawStep {
    /// (key, URL) of each method shorthand present.
    pub(super) fn methods(&self) -> Vec<(&'static str, &str)> {
        [
            ("get", &self.get),
            ("post", &self.post),
            ("put", &self.put),
            ("patch", &self.patch),
            ("delete", &self.delete),
            ("head", &self.head),
            ("options", &self.options),
        ]
        .into_iter()
        .filter_map(|(key, url)| url.as_deref().map(|url| (key, url)))
        .collect()
    }

    /// The request-only keys present.
    pub(super) fn request_fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        let present = [
            ("name", self.name.is_some()),
            ("headers", self.headers.is_some()),
            ("json", self.json.is_some()),
            ("form", self.form.is_some()),
            ("body", self.body.is_some()),
            ("multipart", self.multipart.is_some()),
            ("extract", self.extract.is_some()),
            ("check", self.check.is_some()),
            ("expect_status", self.expect_status.is_some()),
            ("recorded", self.recorded.is_some()),
            ("http", self.http.is_some()),
        ];
        for (key, here) in present {
            if here {
                fields.push(key);
            }
        }
        fields
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequestLine {
    pub(super) method: String,
    pub(super) url: String,
}

/// `name: $.path` (JSONPath shorthand) or `name: {jsonpath|regex|header|cookie|form_field: X}`.
#[derive(Debug)]
pub(super) enum RawExtract {
    Short(String),
    Full(Box<RawExtractFull>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExtractFull {
    pub(super) jsonpath: Option<String>,
    pub(super) regex: Option<String>,
    pub(super) header: Option<String>,
    pub(super) cookie: Option<String>,
    pub(super) form_field: Option<String>,
    pub(super) meta: Option<String>,
    pub(super) link: Option<String>,
    pub(super) default: Option<serde_json::Value>,
}

impl<'de> Deserialize<'de> for RawExtract {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExtractVisitor;
        impl<'de> Visitor<'de> for ExtractVisitor {
            type Value = RawExtract;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSONPath such as `$.id` or a map such as `{regex: \"id=(\\\\w+)\"}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawExtract, E> {
                Ok(RawExtract::Short(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawExtract, A::Error> {
                RawExtractFull::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|full| RawExtract::Full(Box::new(full)))
            }
        }
        deserializer.deserialize_any(ExtractVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    pub(super) status: Option<Statuses>,
    pub(super) jsonpath: Option<String>,
    pub(super) equals: Option<serde_json::Value>,
    pub(super) matches: Option<String>,
    pub(super) body_contains: Option<String>,
    pub(super) body_not_contains: Option<String>,
    pub(super) header: Option<String>,
    pub(super) redirect: Option<RawText>,
    pub(super) url: Option<RawText>,
    pub(super) title: Option<RawText>,
    pub(super) json_keys: Option<Vec<String>>,
    pub(super) js: Option<String>,
}

/// `text` or `{matches: regex}`.
#[derive(Debug)]
pub(super) enum RawText {
    Text(String),
    Matches(String),
}

impl<'de> Deserialize<'de> for RawText {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Matches {
            matches: String,
        }
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = RawText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a text or `{matches: \"regex\"}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawText, E> {
                Ok(RawText::Text(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawText, A::Error> {
                Matches::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|m| RawText::Matches(m.matches))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

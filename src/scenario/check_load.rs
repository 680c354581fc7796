//! Compiling a request step's `extract:` rules and `check:`s (JSONPath, regexes, expected
//! values, URL patterns): part of loading; problems go to the `Context` at their place.

use regex::Regex;
use serde_json_path::JsonPath;

use super::check::{Check, CheckKind, Expected, UrlPattern};
use super::extract::{Extract, ExtractKind};
use super::load::{Context, is_identifier};
use super::raw::{RawCheck, RawExtract, RawText};
use super::template::Template;
use super::yaml::join;

impl Context<'_> {
    pub(super) fn extract(&mut self, name: &str, rule: RawExtract, path: &str) -> Option<Extract> {
        if !is_identifier(name) {
            self.problem(
                path,
                true,
                format!("`{name}` cannot be a variable name: use letters, digits and _"),
            );
            return None;
        }
        let (kind, default) = match rule {
            RawExtract::Short(source) => (self.jsonpath_kind(&source, path)?, None),
            RawExtract::Full(full) => {
                // A regex may refine a header or a link:
                // `{header: Location, regex: "id=(\\d+)"}`, `{link: "Notes", regex: "/(\\d+)/"}`.
                let refined = full.header.is_some() || full.link.is_some();
                let refinement = full.regex.clone().filter(|_| refined);
                let given: Vec<(&str, String)> = [
                    ("jsonpath", full.jsonpath),
                    ("regex", full.regex.filter(|_| !refined)),
                    ("header", full.header),
                    ("cookie", full.cookie),
                    ("form_field", full.form_field),
                    ("meta", full.meta),
                    ("link", full.link),
                ]
                .into_iter()
                .filter_map(|(key, value)| value.map(|value| (key, value)))
                .collect();
                let (key, source) = match given.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        self.problem(
                            path,
                            false,
                            "say where the value comes from: jsonpath, regex, header, cookie, form_field, meta or link",
                        );
                        return None;
                    }
                    [first, second, ..] => {
                        self.problem(
                            &join(path, second.0),
                            true,
                            format!(
                                "one source per value: `{}` and `{}` are both here",
                                first.0, second.0
                            ),
                        );
                        return None;
                    }
                };
                let here = join(path, key);
                let refinement = match refinement {
                    Some(pattern) => Some(self.regex(&join(path, "regex"), &pattern)?),
                    None => None,
                };
                let kind = match key {
                    "jsonpath" => self.jsonpath_kind(&source, &here)?,
                    "regex" => ExtractKind::Regex(self.regex(&here, &source)?),
                    "header" => match http::HeaderName::from_bytes(source.as_bytes()) {
                        Ok(header) => match refinement {
                            None => ExtractKind::Header(header),
                            Some(regex) => ExtractKind::HeaderRegex { header, regex },
                        },
                        Err(_) => {
                            self.problem(
                                &here,
                                false,
                                format!("`{source}` is not a valid header name"),
                            );
                            return None;
                        }
                    },
                    "cookie" => ExtractKind::Cookie(source),
                    "meta" => ExtractKind::Meta(source),
                    "link" => ExtractKind::Link {
                        text: self.template(&here, &source)?,
                        regex: refinement,
                    },
                    _ => ExtractKind::FormField(source),
                };
                (kind, full.default)
            }
        };
        Some(Extract {
            name: name.to_owned(),
            kind,
            default,
        })
    }

    pub(super) fn jsonpath(&mut self, source: &str, path: &str) -> Option<JsonPath> {
        // The JSONPath parser recurses once per bracket: refuse before it can run out of stack.
        if let Some(why) = super::precheck::too_deep(source) {
            self.problem(path, false, format!("bad JSONPath: {why}"));
            return None;
        }
        match JsonPath::parse(source) {
            Ok(compiled) => Some(compiled),
            Err(err) => {
                self.problem(
                    path,
                    false,
                    format!(
                        "bad JSONPath {source:?}: {} at character {}",
                        one_line(err.message()),
                        err.position() + 1
                    ),
                );
                None
            }
        }
    }

    fn jsonpath_kind(&mut self, source: &str, path: &str) -> Option<ExtractKind> {
        let path_compiled = self.jsonpath(source, path)?;
        Some(ExtractKind::JsonPath {
            path: path_compiled,
            source: source.to_owned(),
        })
    }

    pub(super) fn check(&mut self, raw: RawCheck, path: &str) -> Option<Check> {
        const KINDS: &str = "status, jsonpath, body_contains, body_not_contains, header, redirect, url, title, json_keys, js";
        let given: Vec<&str> = [
            ("status", raw.status.is_some()),
            ("jsonpath", raw.jsonpath.is_some()),
            ("body_contains", raw.body_contains.is_some()),
            ("body_not_contains", raw.body_not_contains.is_some()),
            ("header", raw.header.is_some()),
            ("redirect", raw.redirect.is_some()),
            ("url", raw.url.is_some()),
            ("title", raw.title.is_some()),
            ("json_keys", raw.json_keys.is_some()),
            ("js", raw.js.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, here)| here.then_some(key))
        .collect();
        if given.len() != 1 {
            let message = if given.is_empty() {
                format!("a check needs one of {KINDS}")
            } else {
                format!(
                    "one check per item: `{}` and `{}` are both here; use two items",
                    given[0], given[1]
                )
            };
            self.problem(path, false, message);
            return None;
        }
        let kind = given[0];
        if raw.equals.is_some() && !matches!(kind, "jsonpath" | "header") {
            self.problem(
                &join(path, "equals"),
                true,
                "`equals` goes with `jsonpath` or `header`",
            );
            return None;
        }
        if raw.matches.is_some() && kind != "header" {
            self.problem(
                &join(path, "matches"),
                true,
                format!("`matches` goes with `header`; write `{kind}: {{matches: ...}}`"),
            );
            return None;
        }
        let here = join(path, kind);
        let kind = if let Some(statuses) = raw.status {
            CheckKind::Status(statuses.0)
        } else if let Some(source) = raw.jsonpath {
            let compiled = self.jsonpath(&source, &here)?;
            CheckKind::JsonPath {
                path: compiled,
                source,
                equals: raw.equals,
            }
        } else if let Some(text) = raw.body_contains {
            CheckKind::BodyContains(text)
        } else if let Some(text) = raw.body_not_contains {
            CheckKind::BodyNotContains(text)
        } else if let Some(header) = raw.header {
            let Ok(name) = http::HeaderName::from_bytes(header.as_bytes()) else {
                self.problem(
                    &here,
                    false,
                    format!("`{header}` is not a valid header name"),
                );
                return None;
            };
            let expected = self.expected(raw.equals, raw.matches, path)?;
            CheckKind::Header { name, expected }
        } else if let Some(text) = raw.redirect {
            CheckKind::Redirect(self.url_pattern(text, &here)?)
        } else if let Some(text) = raw.url {
            CheckKind::Url(self.url_pattern(text, &here)?)
        } else if let Some(text) = raw.title {
            CheckKind::Title(match text {
                RawText::Text(text) => Expected::Equals(self.template(&here, &text)?),
                RawText::Matches(source) => {
                    Expected::Matches(self.regex(&join(&here, "matches"), &source)?)
                }
            })
        } else if let Some(source) = raw.js {
            CheckKind::Script(self.script_call(&here, &source, false)?)
        } else {
            let keys = raw.json_keys.unwrap_or_default();
            if keys.is_empty() {
                self.problem(&here, false, "`json_keys` needs at least one key");
                return None;
            }
            CheckKind::JsonKeys(keys)
        };
        Some(Check { kind })
    }

    fn url_pattern(&mut self, text: RawText, path: &str) -> Option<UrlPattern> {
        Some(match text {
            RawText::Text(glob) => UrlPattern::glob(&glob),
            RawText::Matches(source) => {
                UrlPattern::regex(self.regex(&join(path, "matches"), &source)?)
            }
        })
    }

    pub(super) fn regex(&mut self, path: &str, source: &str) -> Option<Regex> {
        match Regex::new(source) {
            Ok(regex) => Some(regex),
            Err(err) => {
                self.problem(
                    path,
                    false,
                    format!("bad regex: {}", one_line(&err.to_string())),
                );
                None
            }
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Context<'_> {
    /// `equals:` (a template when it is text, the value as written otherwise) or `matches:`
    /// (a regex), not both, under `path`: `Some(None)` when neither is given, `None` after a
    /// problem.
    pub(super) fn expected(
        &mut self,
        equals: Option<serde_json::Value>,
        matches: Option<String>,
        path: &str,
    ) -> Option<Option<Expected>> {
        Some(match (equals, matches) {
            (Some(_), Some(_)) => {
                self.problem(
                    &join(path, "matches"),
                    true,
                    "`equals` or `matches`, not both",
                );
                return None;
            }
            (Some(serde_json::Value::String(text)), None) => Some(Expected::Equals(
                self.template(&join(path, "equals"), &text)?,
            )),
            (Some(other), None) => Some(Expected::Equals(Template::literal(&other.to_string()))),
            (None, Some(source)) => Some(Expected::Matches(
                self.regex(&join(path, "matches"), &source)?,
            )),
            (None, None) => None,
        })
    }
}

//! Compiling steps: requests (method shorthand or `request:`), `think`, `repeat`, `emit`,
//! `when` (their `extract:` and `check:` rules are read in `check_load`). Part of loading;
//! problems go to the `Context`.

use super::load::{Context, authority, is_identifier};
use super::raw::RawFilePart;
use super::raw::{METHOD_KEYS, RawStep};
use super::socket::SocketStep;
use super::socket_load::SOCKET_KEYS;
use super::template::Template;
use super::yaml::{self, Node, join};
use super::{Body, Count, Emit, Repeat, Request, Step, StepKind, Think};
use super::{FileContent, FilePart, Part};
use crate::units::{self, UnitError};

const STEP_KINDS: &str = "get/post/put/patch/delete/head/options, request, think, repeat, emit, js, ws, sse, send, receive, every or close";

impl Context<'_> {
    pub(super) fn steps(&mut self, node: Option<&Node>, path: &str) -> Vec<Step> {
        let Some(node) = node else { return Vec::new() };
        let items = match &node.value {
            yaml::Value::Seq(items) => items,
            yaml::Value::Null => return Vec::new(),
            _ => {
                self.problem(
                    path,
                    false,
                    format!(
                        "expected a list of steps (`- get: /path`, `- think: 2s` ...), found {}",
                        node.describe()
                    ),
                );
                return Vec::new();
            }
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.step(item, &format!("{path}[{i}]")))
            .collect()
    }

    fn step(&mut self, node: &Node, path: &str) -> Option<Step> {
        if node.as_text().map(str::trim) == Some("close") {
            let kind = StepKind::Socket(Box::new(SocketStep::Close(None)));
            return Some(Step { when: None, kind });
        }
        if !matches!(node.value, yaml::Value::Map(_)) {
            self.problem(
                path,
                false,
                format!(
                    "expected a step (a map with one of {STEP_KINDS}), found {}",
                    node.describe()
                ),
            );
            return None;
        }
        let raw: RawStep = self.read(node, path)?;
        // A bad condition does not stop the rest of the step from being checked.
        let when = raw
            .when
            .as_ref()
            .map(|source| self.condition(&join(path, "when"), source));
        let methods = raw.methods();
        let mut kinds: Vec<&str> = methods.iter().map(|(key, _)| *key).collect();
        for (key, here) in [
            ("request", raw.request.is_some()),
            ("think", raw.think.is_some()),
            ("repeat", raw.repeat.is_some()),
            ("emit", raw.emit.is_some()),
            ("js", raw.js.is_some()),
            ("ws", raw.ws.is_some()),
            ("sse", raw.sse.is_some()),
            // `every` carries a `send:`: one step.
            ("send", raw.send.is_some() && raw.every.is_none()),
            ("receive", raw.receive.is_some()),
            ("every", raw.every.is_some()),
            ("close", raw.close.is_some()),
        ] {
            if here {
                kinds.push(key);
            }
        }
        let kind = match kinds.as_slice() {
            [] => {
                self.problem(path, false, format!("a step needs one of {STEP_KINDS}"));
                return None;
            }
            [_, second, ..] => {
                self.problem(
                    &join(path, second),
                    true,
                    format!("a step is one thing: `{}` and `{second}` are both here; split them into two steps", kinds[0]),
                );
                return None;
            }
            [kind] => *kind,
        };
        if SOCKET_KEYS.contains(&kind) {
            let socket = self.socket_step(node, raw, path, kind);
            let when = match when {
                Some(condition) => Some(condition?),
                None => None,
            };
            let kind = StepKind::Socket(Box::new(socket?));
            return Some(Step { when, kind });
        }
        let is_request = METHOD_KEYS.contains(&kind) || kind == "request";
        if !is_request {
            if let Some(field) = raw.request_fields().first() {
                self.problem(
                    &join(path, field),
                    true,
                    format!("`{field}` belongs to a request, not to a `{kind}` step"),
                );
                return None;
            }
        }
        for (key, here, owner, article) in [
            ("steps", raw.steps.is_some(), "repeat", "a"),
            ("as", raw.index_as.is_some(), "repeat", "a"),
            ("parallel", raw.parallel.is_some(), "repeat", "a"),
            ("outcome", raw.outcome.is_some(), "emit", "an"),
            ("subprotocols", raw.subprotocols.is_some(), "ws", "a"),
            ("timeout", raw.timeout.is_some(), "receive", "a"),
            ("from", raw.from.is_some(), "receive", "a"),
        ] {
            if here && kind != owner {
                self.problem(
                    &join(path, key),
                    true,
                    format!("`{key}` belongs to {article} `{owner}` step"),
                );
                return None;
            }
        }
        let kind = match kind {
            "think" => StepKind::Think(self.think(node.get("think")?, &join(path, "think"))?),
            "repeat" => {
                let count = self.count(node.get("repeat")?, &join(path, "repeat"));
                let steps_path = join(path, "steps");
                if raw.steps.is_none() {
                    self.problem(path, false, "a `repeat` step needs `steps:` to repeat");
                } else if super::load::is_empty_list(node.get("steps")) {
                    self.problem(
                        &steps_path,
                        false,
                        "a `repeat` needs at least one step to repeat",
                    );
                }
                let steps = self.steps(node.get("steps"), &steps_path);
                let index_as = raw.index_as.filter(|name| {
                    let good = is_identifier(name);
                    if !good {
                        let message = format!(
                            "`{name}` cannot be a variable name: use letters, digits and _"
                        );
                        self.problem(&join(path, "as"), false, message);
                    }
                    good
                });
                let parallel = match node.get("parallel") {
                    Some(parallel) => Some(self.count(parallel, &join(path, "parallel"))?),
                    None => None,
                };
                if let Some(Count::Fixed(0) | Count::Range(0, _)) = parallel {
                    self.problem(
                        &join(path, "parallel"),
                        false,
                        "`parallel` must be at least 1",
                    );
                }
                StepKind::Repeat(Repeat {
                    count: count?,
                    steps,
                    index_as,
                    parallel,
                })
            }
            "emit" => {
                let mut columns = Vec::new();
                for (column, source) in raw.emit.map(|e| e.0).unwrap_or_default() {
                    let here = join(&join(path, "emit"), &column);
                    if let Some(template) = self.template(&here, &source) {
                        columns.push((column, template));
                    }
                }
                if columns.is_empty() {
                    self.problem(
                        &join(path, "emit"),
                        false,
                        "`emit` needs at least one column: value",
                    );
                    return None;
                }
                let outcome = match &raw.outcome {
                    Some(source) => Some(self.template(&join(path, "outcome"), source)?),
                    None => None,
                };
                StepKind::Emit(Emit { columns, outcome })
            }
            "js" => {
                StepKind::Script(self.script_call(&join(path, "js"), raw.js.as_deref()?, true)?)
            }
            _ => StepKind::Request(Box::new(self.request(node, raw, path)?)),
        };
        let when = match when {
            Some(condition) => Some(condition?),
            None => None,
        };
        Some(Step { when, kind })
    }

    fn request(&mut self, node: &Node, raw: RawStep, path: &str) -> Option<Request> {
        let (method, url, url_path) = match (&raw.request, raw.methods().first()) {
            (Some(line), _) => {
                let method_path = join(path, "request.method");
                let method = match http::Method::from_bytes(
                    line.method.trim().to_ascii_uppercase().as_bytes(),
                ) {
                    Ok(method) => method,
                    Err(_) => {
                        self.problem(
                            &method_path,
                            false,
                            format!("{:?} is not an HTTP method", line.method),
                        );
                        return None;
                    }
                };
                (method, line.url.clone(), join(path, "request.url"))
            }
            (None, Some((key, url))) => {
                let method = http::Method::from_bytes(key.to_ascii_uppercase().as_bytes()).ok()?;
                (method, (*url).to_owned(), join(path, key))
            }
            (None, None) => return None,
        };
        let url_template = self.template(&url_path, &url);
        let url_template = url_template.and_then(|template| self.check_url(template, &url_path));
        let headers = raw
            .headers
            .map(|headers| self.headers(headers.0, &join(path, "headers")))
            .unwrap_or_default();
        let bodies: Vec<&str> = [
            ("json", raw.json.is_some()),
            ("form", raw.form.is_some()),
            ("body", raw.body.is_some()),
            ("multipart", raw.multipart.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, here)| here.then_some(key))
        .collect();
        if bodies.len() > 1 {
            self.problem(
                &join(path, bodies[1]),
                true,
                format!(
                    "a request has one body: `{}` and `{}` are both here",
                    bodies[0], bodies[1]
                ),
            );
        }
        let body = if let Some(json) = node.get("json").filter(|_| raw.json.is_some()) {
            self.json_template(json, &join(path, "json"))
                .map(Body::Json)
        } else if let Some(form) = raw.form {
            let mut fields = Vec::new();
            for (name, source) in form.0 {
                let here = join(&join(path, "form"), &name);
                if let Some(template) = self.template(&here, &source) {
                    fields.push((name, template));
                }
            }
            Some(Body::Form(fields))
        } else if let Some(source) = raw.body {
            self.template(&join(path, "body"), &source).map(Body::Raw)
        } else if let Some(parts) = node.get("multipart").filter(|_| raw.multipart.is_some()) {
            self.multipart(parts, &join(path, "multipart"))
                .map(Body::Multipart)
        } else {
            None
        };
        let mut extract = Vec::new();
        for (name, rule) in raw.extract.map(|e| e.0).unwrap_or_default() {
            let here = join(&join(path, "extract"), &name);
            if let Some(rule) = self.extract(&name, rule, &here) {
                extract.push(rule);
            }
        }
        let mut check = Vec::new();
        for (i, rule) in raw.check.unwrap_or_default().into_iter().enumerate() {
            if let Some(rule) = self.check(rule, &format!("{}[{i}]", join(path, "check"))) {
                check.push(rule);
            }
        }
        let url = url_template?;
        let name = match raw.name {
            Some(name) if !name.trim().is_empty() => name,
            _ => self.default_name(&url),
        };
        Some(Request {
            name,
            method,
            url,
            headers,
            body,
            extract,
            check,
            expect_status: raw.expect_status.map(|s| s.0),
            recorded: raw.recorded,
            http: raw.http.map(|http| http.0),
        })
    }

    /// `multipart:`: `name: text` or `name: {filename, content_type, content | file}`, in
    /// file order.
    fn multipart(&mut self, node: &Node, path: &str) -> Option<Vec<(String, Part)>> {
        const EXPLAIN: &str = "a text, or a file part `{ filename: a.txt, content_type: text/plain, content: ... }` (or `file: path`)";
        let yaml::Value::Map(entries) = &node.value else {
            self.problem(
                path,
                false,
                format!(
                    "expected a map of `name: value` parts, found {}",
                    node.describe()
                ),
            );
            return None;
        };
        let before = self.problems.len();
        let mut parts = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let here = join(path, &key.text);
            match &value.value {
                yaml::Value::Map(_) => {
                    let Some(raw) = self.read::<RawFilePart>(value, &here) else {
                        continue;
                    };
                    if let Some(file) = self.file_part(raw, &here) {
                        parts.push((key.text.clone(), Part::File(file)));
                    }
                }
                yaml::Value::Seq(_) | yaml::Value::Null => {
                    let message = format!("expected {EXPLAIN}, found {}", value.describe());
                    self.problem(&here, false, message);
                }
                _ => {
                    let text = value.as_text().unwrap_or_default();
                    if let Some(template) = self.template(&here, text) {
                        parts.push((key.text.clone(), Part::Text(template)));
                    }
                }
            }
        }
        (self.problems.len() == before).then_some(parts)
    }

    fn file_part(&mut self, raw: RawFilePart, path: &str) -> Option<FilePart> {
        let filename = self.template(
            &join(path, "filename"),
            raw.filename.as_deref().unwrap_or(""),
        );
        let content_type = raw
            .content_type
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        if http::HeaderValue::from_str(&content_type).is_err() || content_type.trim().is_empty() {
            self.problem(
                &join(path, "content_type"),
                false,
                format!("{content_type:?} is not a media type such as text/plain"),
            );
            return None;
        }
        let content = match (raw.content, raw.file) {
            (Some(_), Some(_)) => {
                self.problem(
                    &join(path, "file"),
                    true,
                    "a file part has `content` or `file`, not both",
                );
                return None;
            }
            (Some(source), None) => {
                FileContent::Template(self.template(&join(path, "content"), &source)?)
            }
            (None, Some(written)) => self.attached_file(written, &join(path, "file"))?,
            (None, None) => FileContent::Template(Template::literal("")),
        };
        Some(FilePart {
            filename: filename?,
            content_type,
            content,
        })
    }

    /// A `file:` read now, relative to the scenario's folder (or where the options say).
    fn attached_file(&mut self, written: String, path: &str) -> Option<FileContent> {
        let file = match self.files.iter().rev().find(|(known, _)| *known == written) {
            Some((_, file)) => file.clone(),
            None => {
                let base = self
                    .file
                    .parent()
                    .map(std::path::Path::to_owned)
                    .unwrap_or_default();
                base.join(&written)
            }
        };
        match std::fs::read(&file) {
            Ok(bytes) => Some(FileContent::File {
                written,
                path: file,
                bytes: bytes.into(),
            }),
            Err(err) => {
                self.problem(
                    path,
                    false,
                    format!(
                        "cannot read {}: {err} (a `file:` is relative to the scenario's folder)",
                        file.display()
                    ),
                );
                None
            }
        }
    }

    /// A relative URL needs a host; an absolute one adds its host to the allowed hosts.
    pub(super) fn check_url(&mut self, template: Template, path: &str) -> Option<Template> {
        let source = template.source();
        let prefix = template.static_prefix();
        let scheme_end = prefix.find("://").filter(|_| {
            let lower = prefix.to_ascii_lowercase();
            lower.starts_with("http://") || lower.starts_with("https://")
        });
        if let Some(at) = scheme_end {
            let rest = &prefix[at + 3..];
            // The host is known when it is written out: up to a `/` or the end of a static URL.
            let authority_end = rest
                .find(['/', '?', '#'])
                .or(template.is_static().then_some(rest.len()));
            if let Some(end) = authority_end {
                let base = format!("{}{}/", &prefix[..at + 3], &rest[..end]);
                match url::Url::parse(&base).ok().as_ref().and_then(authority) {
                    Some(host) => {
                        self.allowed_hosts.insert(host);
                    }
                    None => {
                        self.problem(path, false, format!("{source:?} is not a valid URL"));
                        return None;
                    }
                }
            }
        } else if source.starts_with('/') {
            if self.host.is_none() && !self.host_unknown {
                self.problem(
                    path,
                    false,
                    format!("{source:?} is relative but the scenario has no `host:`; add `host: http://...` or pass -H"),
                );
                return None;
            }
        } else if !source.starts_with("{{") {
            self.problem(
                path,
                false,
                format!("{source:?} is neither a path (/...) nor an http:// or https:// URL"),
            );
            return None;
        }
        Some(template)
    }

    /// The URL without this scenario's scheme and host, templated parts as `[name]`.
    pub(super) fn default_name(&self, url: &Template) -> String {
        let shown = url.display_with_placeholders();
        if let (Some(host), Ok(parsed)) = (&self.host, url::Url::parse(url.static_prefix())) {
            if parsed.origin() == host.origin() {
                let origin = host.origin().ascii_serialization();
                let head = shown.get(..origin.len());
                if head.is_some_and(|head| head.eq_ignore_ascii_case(&origin)) {
                    let rest = shown.get(origin.len()..).unwrap_or_default();
                    return if rest.is_empty() {
                        "/".to_owned()
                    } else {
                        rest.to_owned()
                    };
                }
            }
        }
        shown
    }

    fn think(&mut self, node: &Node, path: &str) -> Option<Think> {
        let explain = "expected a duration (2s), a range (10s..30s) or a template (\"{{ eventsPeriodSecs }}\", in seconds)";
        let Some(text) = node.as_text() else {
            self.problem(path, false, format!("{explain}, found {}", node.describe()));
            return None;
        };
        if text.contains("{{") {
            return self.template(path, text).map(Think::Template);
        }
        // A syntax mistake gets the whole explanation; a value out of range, the range.
        let mut refuse = |err: UnitError| {
            let message = if err.is_syntax() {
                format!("{explain}, found {}", node.describe())
            } else {
                err.to_string()
            };
            self.problem(path, false, message);
            None
        };
        let parse = |text: &str| units::parse_duration(text, units::THINK);
        if let Some((low, high)) = text.split_once("..") {
            return match (parse(low), parse(high)) {
                (Ok(low), Ok(high)) if low <= high => Some(Think::Range(low, high)),
                (Ok(_), Ok(_)) => {
                    self.problem(
                        path,
                        false,
                        format!("the range {text:?} ends before it starts"),
                    );
                    None
                }
                (Err(err), _) | (_, Err(err)) => refuse(err),
            };
        }
        match parse(text) {
            Ok(duration) => Some(Think::Fixed(duration)),
            Err(err) => refuse(err),
        }
    }

    fn count(&mut self, node: &Node, path: &str) -> Option<Count> {
        let explain = "expected a count (3), a range (3..8) or a template (\"{{ n }}\")";
        let Some(text) = node.as_text() else {
            self.problem(path, false, format!("{explain}, found {}", node.describe()));
            return None;
        };
        if text.contains("{{") {
            return self.template(path, text).map(Count::Template);
        }
        let parse = |s: &str| s.trim().parse::<u64>().ok();
        let count = match text.split_once("..") {
            Some((low, high)) => match (parse(low), parse(high)) {
                (Some(low), Some(high)) if low <= high => Some(Count::Range(low, high)),
                _ => None,
            },
            None => parse(text).map(Count::Fixed),
        };
        if count.is_none() {
            self.problem(path, false, format!("{explain}, found {}", node.describe()));
        }
        count
    }
}

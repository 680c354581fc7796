//! The calls a scenario makes into its scripts: a template's `js.name(..)`, a `js:` step
//! (the user's variables in, variables to set out), a `js:` check, and the hooks around every
//! request (`before_request`: headers to add; `after_response`: variables to set). Each runs
//! on the calling thread's engine under the time limit. Templates reach the scripts through
//! the `js` variable, a minijinja object every user's variables share (one `Arc`, so it costs
//! a user one map entry).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use rquickjs::{Ctx, Value as Js};

use super::engine::{self, Engine};
use super::lazy::{JS_VARIABLE, headers_object, vars_object};
use super::values::{describe, from_js, to_js};
use super::{AFTER_RESPONSE, BEFORE_REQUEST, ScriptFailure, Scripts};
use crate::scenario::{ResponseView, Vars};

/// A `js:` step or check: a JavaScript expression over `vars`, `last_response` and
/// `response`, such as `computeBasket(vars, last_response)`.
#[derive(Debug, Clone)]
pub struct Call {
    source: Arc<str>,
}

impl Call {
    pub(crate) fn new(source: &str) -> Call {
        Call {
            source: Arc::from(source.trim()),
        }
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// A `js:` check of `response`: a truthy value passes; a string, a falsy value or an
    /// exception fails with a message.
    pub fn check(&self, response: &ResponseView<'_>, vars: &Vars) -> Result<(), ScriptFailure> {
        let scripts =
            scripts_of(vars).ok_or_else(|| ScriptFailure::new("the scenario loads no scripts"))?;
        let engine = engine::for_thread(&scripts)?;
        engine.with(|ctx, engine| {
            let function = engine.call_site(ctx, &self.source)?;
            let vars = vars_object(ctx, vars).map_err(js_error)?;
            let response = response_object(ctx, engine, response)?;
            let result: Js<'_> = engine.guarded(ctx, &self.source, || {
                function.call((vars, response.clone(), response))
            })?;
            if let Some(text) = result.as_string() {
                let text = text.to_string().map_err(js_error)?;
                return Err(ScriptFailure::new(format!("{}: {text}", self.source)));
            }
            let passed = result.as_bool().unwrap_or_else(|| truthy(&result));
            if passed {
                Ok(())
            } else {
                Err(ScriptFailure::new(format!(
                    "{} returned {}",
                    self.source,
                    shown(&result)
                )))
            }
        })
    }
}

/// `js.name(args)` from a template.
pub(super) fn export(
    scripts: &Arc<Scripts>,
    name: &str,
    args: &[minijinja::Value],
) -> Result<minijinja::Value, ScriptFailure> {
    let Ok(index) = scripts.exports.binary_search_by(|e| e.as_str().cmp(name)) else {
        return Err(ScriptFailure::new(format!(
            "js.{name}: the scripts export no function `{name}` (they export: {})",
            scripts.exports.join(", ")
        )));
    };
    let engine = engine::for_thread(scripts)?;
    engine.with(|ctx, engine| {
        let function = engine.export(ctx, index)?;
        let mut values = rquickjs::function::Args::new(ctx.clone(), args.len());
        for arg in args {
            values
                .push_arg(to_js(ctx, arg).map_err(js_error)?)
                .map_err(js_error)?;
        }
        // The name is written out only for a failure.
        let result: Js<'_> =
            engine.guarded(ctx, format_args!("js.{name}"), || function.call_arg(values))?;
        from_js(&result).map_err(|err| ScriptFailure::new(format!("js.{name} returned {err}")))
    })
}

impl Scripts {
    /// Runs a `js:` step: sets the variables the object it returns names.
    pub fn run_step(self: &Arc<Self>, call: &Call, vars: &mut Vars) -> Result<(), ScriptFailure> {
        let engine = engine::for_thread(self)?;
        let set = engine.with(|ctx, engine| {
            let function = engine.call_site(ctx, &call.source)?;
            let arguments = vars_object(ctx, vars).map_err(js_error)?;
            let last = match vars.lookup(LAST_RESPONSE_VARIABLE) {
                Some(stored) => stored_response(ctx, engine, stored)?,
                None => Js::new_undefined(ctx.clone()),
            };
            let result: Js<'_> = engine.guarded(ctx, &call.source, || {
                function.call((arguments, last.clone(), last))
            })?;
            variables_to_set(&call.source, &result)
        })?;
        for (name, value) in set {
            vars.set_value(&name, value);
        }
        Ok(())
    }

    /// `before_request(request, vars)`, if a script exports it: the headers of the object it
    /// returns are set on the request (`null` removes one). The request's headers and body,
    /// and the variables, become JavaScript only if the hook reads them (`script::lazy`).
    pub fn before_request(
        self: &Arc<Self>,
        method: &http::Method,
        url: &url::Url,
        headers: &mut HeaderMap,
        body: &Bytes,
        vars: &Vars,
    ) -> Result<(), ScriptFailure> {
        let Ok(index) = self
            .exports
            .binary_search_by(|e| e.as_str().cmp(BEFORE_REQUEST))
        else {
            return Ok(());
        };
        let engine = engine::for_thread(self)?;
        let wants_vars = engine.arity(index) >= 2;
        {
            let mut pending = engine.slot().borrow_mut();
            // Lent for the call and given back below: no copy of the headers.
            pending.headers = Some(std::mem::take(headers));
            pending.body = body.clone();
            pending.vars = wants_vars.then(|| vars.clone());
        }
        let changes = engine.with(|ctx, engine| {
            let function = engine.export(ctx, index)?;
            let request = engine.request_object(ctx, method.as_str(), url.as_str())?;
            let arguments = if wants_vars {
                engine.vars_proxy(ctx)?
            } else {
                Js::new_undefined(ctx.clone())
            };
            let result: Js<'_> =
                engine.guarded(ctx, BEFORE_REQUEST, || function.call((request, arguments)))?;
            header_changes(&result)
        });
        {
            let mut pending = engine.slot().borrow_mut();
            *headers = pending.headers.take().unwrap_or_default();
            pending.finish();
        }
        let changes = changes?;
        for (name, value) in changes {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ScriptFailure::new(format!(
                    "before_request returned {name:?}, which is not a header name"
                ))
            })?;
            match value {
                None => {
                    headers.remove(&name);
                }
                Some(value) => {
                    let value = HeaderValue::from_str(&value).map_err(|_| {
                        ScriptFailure::new(format!(
                            "before_request returned {value:?} for {name}, which is not a header value"
                        ))
                    })?;
                    headers.insert(name, value);
                }
            }
        }
        Ok(())
    }

    /// After every final response: keeps it for `js:` steps that read `last_response`, and
    /// calls `after_response(response, vars)` if a script exports it (variables to set; a
    /// string or an exception fails the request).
    pub fn after_response(
        self: &Arc<Self>,
        response: &ResponseView<'_>,
        vars: &mut Vars,
    ) -> Result<(), ScriptFailure> {
        if self.keeps_last_response {
            vars.set_value(LAST_RESPONSE_VARIABLE, stored(response));
        }
        let Ok(index) = self
            .exports
            .binary_search_by(|e| e.as_str().cmp(AFTER_RESPONSE))
        else {
            return Ok(());
        };
        let engine = engine::for_thread(self)?;
        let wants_vars = engine.arity(index) >= 2;
        engine.slot().borrow_mut().vars = wants_vars.then(|| vars.clone());
        let set = engine.with(|ctx, engine| {
            let function = engine.export(ctx, index)?;
            let object = response_object(ctx, engine, response)?;
            let arguments = if wants_vars {
                engine.vars_proxy(ctx)?
            } else {
                Js::new_undefined(ctx.clone())
            };
            let result: Js<'_> =
                engine.guarded(ctx, AFTER_RESPONSE, || function.call((object, arguments)))?;
            if let Some(text) = result.as_string() {
                let text = text.to_string().map_err(js_error)?;
                return Err(ScriptFailure::new(format!("{AFTER_RESPONSE}: {text}")));
            }
            variables_to_set(AFTER_RESPONSE, &result)
        });
        // Given back before the variables change: the copy lent would make them copy.
        engine.slot().borrow_mut().finish();
        let set = set?;
        for (name, value) in set {
            vars.set_value(&name, value);
        }
        Ok(())
    }
}

fn joined_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        joined
            .entry(name.as_str().to_owned())
            .and_modify(|text| {
                text.push_str(", ");
                text.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    joined
}

fn response_object<'js>(
    ctx: &Ctx<'js>,
    engine: &Engine,
    response: &ResponseView<'_>,
) -> Result<Js<'js>, ScriptFailure> {
    let make = engine.response_class(ctx)?;
    let headers = headers_object(ctx, response.headers).map_err(js_error)?;
    let body = String::from_utf8_lossy(response.body);
    let url = response.url.map(|url| url.as_str().to_owned());
    make.call((response.status, headers, body.as_ref(), url))
        .map_err(js_error)
}

/// The last response as a user keeps it between requests (for `js:` steps).
fn stored(response: &ResponseView<'_>) -> minijinja::Value {
    let mut map: BTreeMap<&str, minijinja::Value> = BTreeMap::new();
    map.insert("status", response.status.into());
    map.insert(
        "headers",
        minijinja::Value::from(joined_headers(response.headers)),
    );
    map.insert(
        "body",
        String::from_utf8_lossy(response.body).into_owned().into(),
    );
    if let Some(url) = response.url {
        map.insert("url", url.as_str().into());
    }
    minijinja::Value::from(map)
}

fn stored_response<'js>(
    ctx: &Ctx<'js>,
    engine: &Engine,
    stored: &minijinja::Value,
) -> Result<Js<'js>, ScriptFailure> {
    let make = engine.response_class(ctx)?;
    let field = |name: &str| stored.get_attr(name).unwrap_or_default();
    let headers = to_js(ctx, &field("headers")).map_err(js_error)?;
    let url = to_js(ctx, &field("url")).map_err(js_error)?;
    let body = to_js(ctx, &field("body")).map_err(js_error)?;
    let status = to_js(ctx, &field("status")).map_err(js_error)?;
    make.call((status, headers, body, url)).map_err(js_error)
}

/// What a step or hook returned, as variables to set: an object, or nothing.
fn variables_to_set(
    what: &str,
    result: &Js<'_>,
) -> Result<Vec<(String, minijinja::Value)>, ScriptFailure> {
    if result.is_undefined() || result.is_null() {
        return Ok(Vec::new());
    }
    let object = match result.as_object() {
        Some(object) if result.as_array().is_none() && !result.is_function() => object,
        _ => {
            return Err(ScriptFailure::new(format!(
                "{what} returned {}; return an object of variables to set (or nothing)",
                describe(result)
            )));
        }
    };
    let mut set = Vec::new();
    for entry in object.props::<String, Js<'_>>() {
        let (name, value) = entry.map_err(js_error)?;
        if !is_variable_name(&name) {
            return Err(ScriptFailure::new(format!(
                "{what} returned a variable named {name:?}: use letters, digits and _ (not `js`, not starting with __)"
            )));
        }
        let value =
            from_js(&value).map_err(|err| ScriptFailure::new(format!("{what}: {name}: {err}")))?;
        set.push((name, value));
    }
    Ok(set)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != JS_VARIABLE
        && !name.starts_with("__")
}

/// `before_request`'s result: (header, value or `None` to remove).
fn header_changes(result: &Js<'_>) -> Result<Vec<(String, Option<String>)>, ScriptFailure> {
    if result.is_undefined() || result.is_null() {
        return Ok(Vec::new());
    }
    let object = match result.as_object() {
        Some(object) if result.as_array().is_none() => object,
        _ => {
            return Err(ScriptFailure::new(format!(
                "before_request returned {}; return an object of headers to set (or nothing)",
                describe(result)
            )));
        }
    };
    let mut changes = Vec::new();
    for entry in object.props::<String, Js<'_>>() {
        let (name, value) = entry.map_err(js_error)?;
        let value = if value.is_null() || value.is_undefined() {
            None
        } else if let Some(text) = value.as_string() {
            // The usual case (a signature), without a template value between.
            Some(text.to_string().map_err(js_error)?)
        } else {
            let value = from_js(&value)
                .map_err(|err| ScriptFailure::new(format!("before_request: {name}: {err}")))?;
            Some(match value.as_str() {
                Some(text) => text.to_owned(),
                None => value.to_string(),
            })
        };
        changes.push((name, value));
    }
    Ok(changes)
}

/// JavaScript's truthiness of a value that is not a boolean.
fn truthy(value: &Js<'_>) -> bool {
    if value.is_undefined() || value.is_null() {
        return false;
    }
    if let Some(int) = value.as_int() {
        return int != 0;
    }
    if let Some(float) = value.as_float() {
        return float != 0.0 && !float.is_nan();
    }
    true
}

fn shown(value: &Js<'_>) -> String {
    match from_js(value) {
        Ok(shown) if !value.is_undefined() => shown.to_string(),
        _ => describe(value).to_owned(),
    }
}

fn js_error(err: rquickjs::Error) -> ScriptFailure {
    ScriptFailure::new(err.to_string())
}

/// Where a user keeps its last response for `js:` steps (not a name a file can write).
pub(crate) const LAST_RESPONSE_VARIABLE: &str = "__last_response__";

#[derive(Debug)]
struct JsFunctions {
    scripts: Arc<Scripts>,
}

impl minijinja::value::Object for JsFunctions {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut minijinja::State<'_, '_>,
        method: &str,
        args: &[minijinja::Value],
    ) -> Result<minijinja::Value, minijinja::Error> {
        export(&self.scripts, method, args).map_err(|failure| {
            minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, failure.message)
        })
    }
}

/// The value of `js` for a user of a scenario with these scripts.
pub(crate) fn template_object(scripts: &Arc<Scripts>) -> minijinja::Value {
    minijinja::Value::from_object(JsFunctions {
        scripts: scripts.clone(),
    })
}

/// The scripts a user's variables call (a `js:` check finds them here).
fn scripts_of(vars: &Vars) -> Option<Arc<Scripts>> {
    let object = vars
        .lookup(JS_VARIABLE)?
        .downcast_object_ref::<JsFunctions>()?;
    Some(object.scripts.clone())
}

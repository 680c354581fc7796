//! The objects the hooks get, made lazily: `request.headers` and `request.body` and each of the
//! user's variables are turned into JavaScript only when the script reads them. A signing
//! hook that reads the method, the URL and one secret pays for those, not for every header
//! and variable on every request. What the hook reads comes from a slot the engine fills for
//! the call and empties after it; nothing here knows about requests' IO.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use rquickjs::{Atom, Ctx, Function, Object, Value as Js};

use super::values::to_js;
use crate::scenario::Vars;

/// Makes the request objects' prototype (`headers`, `body` read on first use, then own
/// properties; instances are made natively, without a constructor call) and the variables'
/// proxies (each variable read on first use by the native `get` trap; listing, deleting or
/// `in` fills in all of them first, so the object behaves as the plain copy it stands for).
const PRELUDE: &str = r#"(function (headers, body, get, variables) {
  const own = (target, name, value) => {
    Object.defineProperty(target, name, { value, writable: true, enumerable: true, configurable: true });
    return value;
  };
  class Request {
    get headers() { return own(this, "headers", headers()); }
    set headers(value) { own(this, "headers", value); }
    get body() { return own(this, "body", body()); }
    set body(value) { own(this, "body", value); }
    toJSON() { return { method: this.method, url: this.url, headers: this.headers, body: this.body }; }
  }
  const has = Object.prototype.hasOwnProperty;
  const filled = new WeakSet();
  const fill = (target) => {
    if (filled.has(target)) return;
    filled.add(target);
    const all = variables();
    for (const name in all) if (!has.call(target, name)) target[name] = all[name];
  };
  const handler = {
    get,
    has(target, name) { fill(target); return Reflect.has(target, name); },
    ownKeys(target) { fill(target); return Reflect.ownKeys(target); },
    getOwnPropertyDescriptor(target, name) { fill(target); return Reflect.getOwnPropertyDescriptor(target, name); },
    deleteProperty(target, name) { fill(target); return Reflect.deleteProperty(target, name); },
  };
  return [Request.prototype, () => new Proxy({}, handler)];
})"#;

/// What the hook under way may read: filled before a call, emptied after it (a request or
/// variables object kept past its call reads nothing more).
#[derive(Default)]
pub(super) struct Pending {
    pub(super) headers: Option<HeaderMap>,
    pub(super) body: Bytes,
    pub(super) vars: Option<Vars>,
    /// The call's variables object has every variable now (listed, deleted from, `in`): a
    /// name it lacks stays missing.
    filled: bool,
}

pub(super) type Slot = Rc<RefCell<Pending>>;

/// Installs the makers in a context: (the requests' prototype, the variables maker).
pub(super) fn install<'js>(
    ctx: &Ctx<'js>,
    slot: &Slot,
) -> rquickjs::Result<(Object<'js>, Function<'js>)> {
    let pending = slot.clone();
    let headers = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>| -> rquickjs::Result<Js<'js>> {
            match &pending.borrow().headers {
                Some(headers) => Ok(headers_object(&ctx, headers)?.into_value()),
                None => Ok(Js::new_undefined(ctx)),
            }
        },
    )?;
    let pending = slot.clone();
    let body = Function::new(ctx.clone(), move || -> String {
        String::from_utf8_lossy(&pending.borrow().body).into_owned()
    })?;
    // The proxy's `get` trap, native: most hooks read one or two variables, and a trap in
    // JavaScript costs a call more per read.
    let pending = slot.clone();
    let get = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>,
              target: Object<'js>,
              name: Js<'js>,
              _receiver: Js<'js>|
              -> rquickjs::Result<Js<'js>> {
            let atom = Atom::from_value(ctx.clone(), &name)?;
            let found: Js<'js> = target.get(atom.clone())?;
            if !found.is_undefined() {
                return Ok(found);
            }
            let Some(text) = name.as_string() else {
                return Ok(found);
            };
            let key = text.to_string()?;
            let value = {
                let pending = pending.borrow();
                match pending.vars.as_ref().and_then(|vars| vars.lookup(&key)) {
                    Some(value) if !pending.filled && !hidden(&key) => to_js(&ctx, value)?,
                    _ => return Ok(found),
                }
            };
            target.set(atom, value.clone())?;
            Ok(value)
        },
    )?;
    let pending = slot.clone();
    let variables = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>| -> rquickjs::Result<Js<'js>> {
            let mut pending = pending.borrow_mut();
            pending.filled = true;
            match &pending.vars {
                Some(vars) => vars_object(&ctx, vars),
                None => Ok(Object::new(ctx)?.into_value()),
            }
        },
    )?;
    let prelude: Function<'_> = ctx.eval(PRELUDE)?;
    let makers: rquickjs::Array<'_> = prelude.call((headers, body, get, variables))?;
    Ok((makers.get(0)?, makers.get(1)?))
}

/// A request object for a hook: `method` and `url` set, the rest read through `prototype`.
pub(super) fn request_object<'js>(
    ctx: &Ctx<'js>,
    prototype: &Object<'js>,
    method: &str,
    url: &str,
) -> rquickjs::Result<Js<'js>> {
    let request = Object::new_proto(ctx.clone(), Some(prototype))?;
    request.set("method", method)?;
    request.set("url", url)?;
    Ok(request.into_value())
}

/// The variable templates call exports through.
pub(crate) const JS_VARIABLE: &str = "js";

/// A variable scripts do not see: the `js` object, and the engine's own (`__..__`).
fn hidden(name: &str) -> bool {
    name == JS_VARIABLE || name.starts_with("__")
}

/// The user's variables as a JavaScript object (a copy: what a script changes in it stays
/// there; a step returns what to set).
pub(super) fn vars_object<'js>(ctx: &Ctx<'js>, vars: &Vars) -> rquickjs::Result<Js<'js>> {
    let object = Object::new(ctx.clone())?;
    for (name, value) in vars.sorted() {
        if hidden(name) {
            continue;
        }
        object.set(name, to_js(ctx, value)?)?;
    }
    Ok(object.into_value())
}

/// Headers as an object: lower-case names in order, repeated headers joined with `, `. Made
/// in place, without the map `joined_headers` builds (a request's headers, every request).
pub(super) fn headers_object<'js>(
    ctx: &Ctx<'js>,
    headers: &HeaderMap,
) -> rquickjs::Result<Object<'js>> {
    let object = Object::new(ctx.clone())?;
    let mut names: Vec<&HeaderName> = headers.keys().collect();
    names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    for name in names {
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else { continue };
        let mut text = String::from_utf8_lossy(first.as_bytes());
        for value in values {
            let joined = text.to_mut();
            joined.push_str(", ");
            joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
        object.set(name.as_str(), text.as_ref())?;
    }
    Ok(object)
}

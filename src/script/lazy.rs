//! The objects the hooks get, made lazily: `request.headers` and `request.body` and each of the
//! user's variables are turned into JavaScript only when the script reads them (a variable
//! the hooks read in an earlier call is set from the start). A signing hook that reads the
//! method, the URL and one secret pays for those, not for every header and variable on
//! every request. What the hook reads comes from a slot the engine fills for
//! the call and empties after it; nothing here knows about requests' IO.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use rquickjs::function::This;
use rquickjs::object::{Accessor, Property};
use rquickjs::proxy::{Proxy, ProxyHandler};
use rquickjs::{Atom, Ctx, Function, IntoAtom, Object, Value as Js};

use super::values::to_js;
use crate::scenario::Vars;

/// Makes the request objects' prototype (its `toJSON`; `headers` and `body` are native
/// accessors `install` adds: read on first use, then own properties; instances are made
/// natively, without a constructor call) and the handler of the variables' proxies (listing,
/// deleting or `in` fills in every variable first, so the object behaves as the plain copy it
/// stands for; its prototype is `Object.prototype`, as a plain object's, whatever the target's).
const PRELUDE: &str = r#"(function (variables) {
  class Request {
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
    has(target, name) { fill(target); return Reflect.has(target, name); },
    ownKeys(target) { fill(target); return Reflect.ownKeys(target); },
    getOwnPropertyDescriptor(target, name) { fill(target); return Reflect.getOwnPropertyDescriptor(target, name); },
    deleteProperty(target, name) { fill(target); return Reflect.deleteProperty(target, name); },
    getPrototypeOf() { return Object.prototype; },
  };
  return [Request.prototype, handler];
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
    /// The variables the hooks have read so far (kept from call to call): each call's
    /// variables object starts with these, so reading them costs no trap.
    read: Vec<String>,
}

/// The most variable names remembered as read: a hook reads a few.
const MOST_READ: usize = 16;

impl Pending {
    /// Empties the slot after a call; which variables the hooks read is kept.
    pub(super) fn finish(&mut self) {
        let read = std::mem::take(&mut self.read);
        *self = Pending {
            read,
            ..Pending::default()
        };
    }
}

pub(super) type Slot = Rc<RefCell<Pending>>;

/// What `install` makes: the requests' prototype, and for the variables objects their
/// proxies' handler and the prototype of their targets.
pub(super) struct Makers<'js> {
    pub(super) request_prototype: Object<'js>,
    pub(super) vars_handler: Object<'js>,
    pub(super) vars_unread: Object<'js>,
}

/// Installs the makers in a context.
pub(super) fn install<'js>(ctx: &Ctx<'js>, slot: &Slot) -> rquickjs::Result<Makers<'js>> {
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
    let made: rquickjs::Array<'_> = prelude.call((variables,))?;
    let (prototype, handler): (Object<'js>, Object<'js>) = (made.get(0)?, made.get(1)?);
    // Native accessors: a getter in JavaScript that defines the own property costs a frame
    // and a descriptor object more per request (most of a signing hook's cost, measured).
    let pending = slot.clone();
    lazy_own_property(&prototype, "headers", move |ctx| {
        Ok(match &pending.borrow().headers {
            Some(headers) => headers_object(&ctx, headers)?.into_value(),
            None => Js::new_undefined(ctx),
        })
    })?;
    let pending = slot.clone();
    lazy_own_property(&prototype, "body", move |ctx| {
        let pending = pending.borrow();
        let text = String::from_utf8_lossy(&pending.body);
        Ok(rquickjs::String::from_str(ctx, &text)?.into_value())
    })?;
    // A variable not on the call's object yet is found up its prototype chain, by the `get`
    // trap of a proxy made once (native: a trap in JavaScript costs a call more per read); it
    // notes the name, and the next call's object has it from the start. A `get` trap on the
    // call's own proxy would run for every read, the variables already there too.
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
            let mut pending = pending.borrow_mut();
            let value = match pending.vars.as_ref().and_then(|vars| vars.lookup(&key)) {
                Some(value) if !pending.filled && !hidden(&key) => to_js(&ctx, value)?,
                _ => return Ok(found),
            };
            if pending.read.len() < MOST_READ && !pending.read.contains(&key) {
                pending.read.push(key);
            }
            Ok(value)
        },
    )?;
    let unread_handler = Object::new(ctx.clone())?;
    unread_handler.set("get", get)?;
    let vars_unread = Proxy::new(
        ctx.clone(),
        Object::new(ctx.clone())?,
        ProxyHandler::from_object(unread_handler)?,
    )?;
    Ok(Makers {
        request_prototype: prototype,
        vars_handler: handler,
        vars_unread: vars_unread.into_inner(),
    })
}

/// The variables object a hook gets: a proxy over an object holding the variables the hooks
/// read before (the rest are found through `unread`), from the slot.
pub(super) fn vars_proxy<'js>(
    ctx: &Ctx<'js>,
    handler: Object<'js>,
    unread: Object<'js>,
    slot: &Slot,
) -> rquickjs::Result<Js<'js>> {
    let target = Object::new_proto(ctx.clone(), Some(&unread))?;
    {
        let pending = slot.borrow();
        if let Some(vars) = &pending.vars {
            for name in &pending.read {
                if let Some(value) = vars.lookup(name) {
                    define_own(&target, name.as_str(), to_js(ctx, value)?)?;
                }
            }
        }
    }
    let proxy = Proxy::new(ctx.clone(), target, ProxyHandler::from_object(handler)?)?;
    Ok(proxy.into_value())
}

/// A native accessor `name` on `prototype`: read, it makes the value with `make` and keeps
/// it as the instance's own property; written, the instance's own property is set.
fn lazy_own_property<'js>(
    prototype: &Object<'js>,
    name: &'static str,
    make: impl Fn(Ctx<'js>) -> rquickjs::Result<Js<'js>> + 'js,
) -> rquickjs::Result<()> {
    prototype.prop(
        name,
        Accessor::new(
            move |ctx: Ctx<'js>, this: This<Object<'js>>| -> rquickjs::Result<Js<'js>> {
                define_own(&this.0, name, make(ctx)?)
            },
            move |this: This<Object<'js>>, value: Js<'js>| define_own(&this.0, name, value),
        )
        .configurable(),
    )
}

/// Sets `name` on `object` as an own, plain (writable, enumerable, configurable) property, as
/// an assignment would on a plain object, without looking for a setter up its prototypes;
/// the value back.
fn define_own<'js>(
    object: &Object<'js>,
    name: impl IntoAtom<'js>,
    value: Js<'js>,
) -> rquickjs::Result<Js<'js>> {
    object.prop(
        name,
        Property::from(value.clone())
            .writable()
            .enumerable()
            .configurable(),
    )?;
    Ok(value)
}

/// A request object for a hook: `method` and `url` set, the rest read through `prototype`.
pub(super) fn request_object<'js>(
    ctx: &Ctx<'js>,
    prototype: &Object<'js>,
    method: &str,
    url: &str,
) -> rquickjs::Result<Js<'js>> {
    let request = Object::new_proto(ctx.clone(), Some(prototype))?;
    // Set, not defined: rquickjs's `prop` costs more than a set (measured), and the
    // prototype has no setter of these names.
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

//! The `js` variable templates call exported functions through (`{{ js.sign(body, key) }}`):
//! a minijinja object holding the scripts; a call runs on the calling thread's engine. Every
//! user's variables hold the same object (one `Arc`), so it costs a user one map entry.

use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

use super::Scripts;
use crate::scenario::Vars;

/// The variable templates call exports through.
pub(crate) const JS_VARIABLE: &str = "js";
/// Where a user keeps its last response for `js:` steps (not a name a file can write).
pub(crate) const LAST_RESPONSE_VARIABLE: &str = "__last_response__";

#[derive(Debug)]
struct JsFunctions {
    scripts: Arc<Scripts>,
}

impl Object for JsFunctions {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        super::call::export(&self.scripts, method, args)
            .map_err(|failure| Error::new(ErrorKind::InvalidOperation, failure.message))
    }
}

/// The value of `js` for a user of a scenario with these scripts.
pub(crate) fn object(scripts: &Arc<Scripts>) -> Value {
    Value::from_object(JsFunctions {
        scripts: scripts.clone(),
    })
}

/// The scripts a user's variables call (a `js:` check finds them here).
pub(super) fn scripts_of(vars: &Vars) -> Option<Arc<Scripts>> {
    let object = vars
        .lookup(JS_VARIABLE)?
        .downcast_object_ref::<JsFunctions>()?;
    Some(object.scripts.clone())
}

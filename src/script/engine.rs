//! One QuickJS runtime with the scenario's modules evaluated: made once per worker thread the
//! first time it calls a script (and once at load, to check the scripts), and the time limit
//! every call runs under. Nothing here knows about users or requests.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::{
    CatchResultExt as _, CaughtError, Context, Ctx, Function, Module, Object, Persistent, Runtime,
    Value,
};

use super::lazy::{self, Slot};
use super::{ScriptFailure, ScriptFile, Scripts};

/// The most memory one thread's scripts may hold.
const MEMORY_LIMIT: usize = 256 << 20;
/// The most stack a script may use (deep recursion is an exception, not a crash).
const STACK_LIMIT: usize = 512 << 10;

/// Defines `console` (to the log) and the response objects scripts see (`json` parsed on
/// first read); returns the function that makes one.
const PRELUDE: &str = r#"(function (log) {
  const show = (x) => (typeof x === "object" && x !== null) ? JSON.stringify(x) : String(x);
  const write = (...items) => log(items.map(show).join(" "));
  globalThis.console = { log: write, info: write, warn: write, error: write, debug: write };
  class Response {
    constructor(status, headers, body, url) {
      this.status = status; this.headers = headers; this.body = body; this.url = url;
    }
    get json() {
      if (this._json === undefined) {
        try { this._json = JSON.parse(this.body); } catch (e) { this._json = null; }
      }
      return this._json;
    }
  }
  return (status, headers, body, url) => new Response(status, headers, body, url);
})"#;

/// A problem with a script at load: where, and what.
#[derive(Debug, Clone)]
pub(super) struct ScriptProblem {
    /// The script's index in the list, or `None` for a problem without a file.
    pub(super) file: Option<usize>,
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) message: String,
}

/// A runtime, its context, and what was saved from it. Fields drop in order: the saved values
/// before the context and the runtime they live in.
pub(super) struct Engine {
    /// The exported functions, in the order of `Scripts::exports`.
    exports: Vec<Persistent<Function<'static>>>,
    /// How many parameters each export declares (its `length`), read once.
    arities: Vec<usize>,
    /// `js:` steps and checks, compiled on first use, by the address of their source.
    calls: RefCell<HashMap<usize, Persistent<Function<'static>>>>,
    response_class: Persistent<Function<'static>>,
    /// The prototype of the request objects a `before_request` hook gets.
    request_prototype: Persistent<Object<'static>>,
    /// The handler of the variables proxies the hooks get.
    vars_handler: Persistent<Object<'static>>,
    /// The prototype of those proxies' targets: reads a variable not on them from `slot`.
    vars_unread: Persistent<Object<'static>>,
    /// What the hook under way may read (`script::lazy`).
    slot: Slot,
    context: Context,
    deadline: Rc<Cell<Option<Instant>>>,
    fired: Rc<Cell<bool>>,
    time_limit: Duration,
    file_names: Vec<String>,
    _runtime: Runtime,
}

impl Engine {
    /// Evaluates the scripts; their exported functions (sorted by name) come back too.
    pub(super) fn new(
        files: &[ScriptFile],
        data_files: &Arc<[(String, Arc<str>)]>,
        time_limit: Duration,
    ) -> Result<(Engine, Vec<String>), ScriptProblem> {
        let without_file = |message: String| ScriptProblem {
            file: None,
            line: 0,
            column: 0,
            message,
        };
        let runtime = Runtime::new().map_err(|err| without_file(err.to_string()))?;
        runtime.set_memory_limit(MEMORY_LIMIT);
        runtime.set_max_stack_size(STACK_LIMIT);
        let deadline: Rc<Cell<Option<Instant>>> = Rc::default();
        let fired: Rc<Cell<bool>> = Rc::default();
        let (watch, flag) = (deadline.clone(), fired.clone());
        runtime.set_interrupt_handler(Some(Box::new(move || match watch.get() {
            Some(deadline) if Instant::now() >= deadline => {
                flag.set(true);
                true
            }
            _ => false,
        })));
        let context = Context::full(&runtime).map_err(|err| without_file(err.to_string()))?;
        let file_names: Vec<String> = files.iter().map(|file| file.name.clone()).collect();
        let slot = Slot::default();
        let built = context.with(|ctx| -> Result<_, ScriptProblem> {
            let response_class = install_globals(&ctx, data_files)
                .catch(&ctx)
                .map_err(|err| without_file(err.to_string()))?;
            let makers = lazy::install(&ctx, &slot)
                .catch(&ctx)
                .map_err(|err| without_file(err.to_string()))?;
            let mut exported: Vec<(String, Function<'_>, usize)> = Vec::new();
            for (index, file) in files.iter().enumerate() {
                deadline.set(Some(
                    Instant::now() + time_limit.max(Duration::from_secs(1)),
                ));
                let namespace = evaluate(&ctx, file).catch(&ctx);
                deadline.set(None);
                let namespace = namespace.map_err(|caught| {
                    if fired.get() {
                        ScriptProblem {
                            file: Some(index),
                            line: 1,
                            column: 1,
                            message: "the module's top-level code ran past the time limit"
                                .to_owned(),
                        }
                    } else {
                        problem_at(&caught, index, &file_names)
                    }
                })?;
                for entry in namespace.props::<String, Value<'_>>() {
                    let (name, value) = entry.map_err(|err| without_file(err.to_string()))?;
                    let Some(function) = value.into_function() else {
                        continue;
                    };
                    if let Some((_, _, other)) = exported.iter().find(|(n, _, _)| *n == name) {
                        return Err(ScriptProblem {
                            file: Some(index),
                            line: 1,
                            column: 1,
                            message: format!(
                                "`{name}` is exported by {} too: give one of them another name",
                                file_names[*other]
                            ),
                        });
                    }
                    exported.push((name, function, index));
                }
            }
            exported.sort_by(|a, b| a.0.cmp(&b.0));
            // `js:` steps and checks call the exports by name, or as `js.name`.
            let globals = ctx.globals();
            let js = Object::new(ctx.clone()).map_err(|err| without_file(err.to_string()))?;
            for (name, function, _) in &exported {
                let set = globals
                    .set(name.as_str(), function.clone())
                    .and_then(|()| js.set(name.as_str(), function.clone()));
                set.map_err(|err| without_file(err.to_string()))?;
            }
            globals
                .set("js", js)
                .map_err(|err| without_file(err.to_string()))?;
            let names = exported.iter().map(|(name, _, _)| name.clone()).collect();
            let arities = (exported.iter())
                .map(|(_, function, _)| function.get::<_, usize>("length").unwrap_or(0))
                .collect();
            let saved = exported
                .into_iter()
                .map(|(_, function, _)| Persistent::save(&ctx, function))
                .collect();
            let makers = (
                Persistent::save(&ctx, makers.request_prototype),
                Persistent::save(&ctx, makers.vars_handler),
                Persistent::save(&ctx, makers.vars_unread),
            );
            Ok((
                saved,
                arities,
                Persistent::save(&ctx, response_class),
                makers,
                names,
            ))
        })?;
        let (
            exports,
            arities,
            response_class,
            (request_prototype, vars_handler, vars_unread),
            names,
        ) = built;
        Ok((
            Engine {
                exports,
                arities,
                calls: RefCell::default(),
                response_class,
                request_prototype,
                vars_handler,
                vars_unread,
                slot,
                context,
                deadline,
                fired,
                time_limit,
                file_names,
                _runtime: runtime,
            },
            names,
        ))
    }

    /// Runs `work` in the context.
    pub(super) fn with<R>(&self, work: impl FnOnce(&Ctx<'_>, &Engine) -> R) -> R {
        self.context.with(|ctx| work(&ctx, self))
    }

    /// An exported function (`index` in `Scripts::exports`).
    pub(super) fn export<'js>(
        &self,
        ctx: &Ctx<'js>,
        index: usize,
    ) -> Result<Function<'js>, ScriptFailure> {
        let saved = self
            .exports
            .get(index)
            .ok_or_else(|| ScriptFailure::new("no such function"))?;
        saved
            .clone()
            .restore(ctx)
            .map_err(|err| ScriptFailure::new(err.to_string()))
    }

    /// How many parameters an exported function (`index` in `Scripts::exports`) declares.
    pub(super) fn arity(&self, index: usize) -> usize {
        self.arities.get(index).copied().unwrap_or(0)
    }

    /// The function that makes the response objects scripts see: `(status, headers, body, url)`.
    pub(super) fn response_class<'js>(
        &self,
        ctx: &Ctx<'js>,
    ) -> Result<Function<'js>, ScriptFailure> {
        (self.response_class.clone().restore(ctx))
            .map_err(|err| ScriptFailure::new(err.to_string()))
    }

    /// What the hook under way may read: fill it before the call, empty it after.
    pub(super) fn slot(&self) -> &Slot {
        &self.slot
    }

    /// The request object a `before_request` hook gets (headers and body from the slot).
    pub(super) fn request_object<'js>(
        &self,
        ctx: &Ctx<'js>,
        method: &str,
        url: &str,
    ) -> Result<Value<'js>, ScriptFailure> {
        let prototype = (self.request_prototype.clone().restore(ctx))
            .map_err(|err| ScriptFailure::new(err.to_string()))?;
        lazy::request_object(ctx, &prototype, method, url)
            .map_err(|err| ScriptFailure::new(err.to_string()))
    }

    /// The variables object a hook gets: those the hooks read before set on it, any other
    /// read from the slot when first used.
    pub(super) fn vars_proxy<'js>(&self, ctx: &Ctx<'js>) -> Result<Value<'js>, ScriptFailure> {
        let handler = self.vars_handler.clone().restore(ctx);
        let unread = self.vars_unread.clone().restore(ctx);
        (handler.and_then(|handler| lazy::vars_proxy(ctx, handler, unread?, &self.slot)))
            .map_err(|err| ScriptFailure::new(err.to_string()))
    }

    /// A `js:` expression as a function of `(vars, last_response, response)`, compiled once.
    pub(super) fn call_site<'js>(
        &self,
        ctx: &Ctx<'js>,
        source: &str,
    ) -> Result<Function<'js>, ScriptFailure> {
        let key = source.as_ptr() as usize;
        if let Some(saved) = self.calls.borrow().get(&key) {
            return saved
                .clone()
                .restore(ctx)
                .map_err(|err| ScriptFailure::new(err.to_string()));
        }
        let function = compile_call(ctx, source)
            .catch(ctx)
            .map_err(|caught| ScriptFailure::new(caught.to_string()))?;
        self.calls
            .borrow_mut()
            .insert(key, Persistent::save(ctx, function.clone()));
        Ok(function)
    }

    /// Runs `call` under the time limit; an exception becomes a failure naming the script's
    /// `file:line:column`.
    pub(super) fn guarded<'js, R>(
        &self,
        ctx: &Ctx<'js>,
        what: impl std::fmt::Display,
        call: impl FnOnce() -> rquickjs::Result<R>,
    ) -> Result<R, ScriptFailure> {
        self.fired.set(false);
        self.deadline.set(Some(Instant::now() + self.time_limit));
        let result = call();
        self.deadline.set(None);
        result.catch(ctx).map_err(|caught| {
            if self.fired.get() {
                ScriptFailure {
                    timed_out: true,
                    message: format!(
                        "{what} ran past the script time limit ({}) and was stopped",
                        crate::units::show(self.time_limit)
                    ),
                }
            } else {
                ScriptFailure::new(format!("{what}: {}", describe(&caught, &self.file_names)))
            }
        })
    }
}

/// `console`, `open()` and the `Response` class.
fn install_globals<'js>(
    ctx: &Ctx<'js>,
    data_files: &Arc<[(String, Arc<str>)]>,
) -> rquickjs::Result<Function<'js>> {
    let files = data_files.clone();
    let open = Function::new(ctx.clone(), move |ctx: Ctx<'_>, name: String| {
        match files.iter().find(|(known, _)| *known == name) {
            Some((_, text)) => Ok(text.to_string()),
            None => {
                let mut names: Vec<&str> = files.iter().map(|(known, _)| known.as_str()).collect();
                names.dedup();
                let known = if names.is_empty() {
                    "the scenario names none".to_owned()
                } else {
                    names.join(", ")
                };
                Err(rquickjs::Exception::throw_message(
                    &ctx,
                    &format!(
                        "open({name:?}): scripts may only read the data files the scenario names ({known})"
                    ),
                ))
            }
        }
    })?;
    ctx.globals().set("open", open)?;
    // What k6's `crypto` module is used for most, computed natively as templates do.
    let chorus = Object::new(ctx.clone())?;
    chorus.set(
        "sha256",
        Function::new(ctx.clone(), crate::scenario::sha256)?,
    )?;
    chorus.set(
        "hmac_sha256",
        Function::new(ctx.clone(), crate::scenario::hmac_sha256)?,
    )?;
    chorus.set(
        "base64",
        Function::new(ctx.clone(), crate::scenario::base64)?,
    )?;
    chorus.set(
        "base64url",
        Function::new(ctx.clone(), crate::scenario::base64url)?,
    )?;
    ctx.globals().set("chorus", chorus)?;
    let log = Function::new(ctx.clone(), |text: String| {
        tracing::info!(target: "chorus::script", "{text}");
    })?;
    let prelude: Function<'_> = ctx.eval(PRELUDE)?;
    prelude.call((log,))
}

/// Evaluates one module; its namespace.
fn evaluate<'js>(ctx: &Ctx<'js>, file: &ScriptFile) -> rquickjs::Result<Object<'js>> {
    let declared = Module::declare(ctx.clone(), file.name.as_str(), file.text.as_str())?;
    let (module, promise) = declared.eval()?;
    promise.finish::<()>()?;
    module.namespace()
}

/// Compiles a `js:` expression (load checks each the same way).
pub(super) fn compile_call<'js>(ctx: &Ctx<'js>, source: &str) -> rquickjs::Result<Function<'js>> {
    let mut options = EvalOptions::default();
    options.filename = Some("js".to_owned());
    ctx.eval_with_options(
        format!("(function (vars, last_response, response) {{ return ({source}\n); }})"),
        options,
    )
}

/// An exception as one line: `helpers.js:5:13: Error: bad thing` when a frame of the stack is
/// in a script.
pub(super) fn describe(caught: &CaughtError<'_>, file_names: &[String]) -> String {
    match caught {
        CaughtError::Exception(exception) => {
            let message = exception.message().unwrap_or_default();
            let name: String = exception.get("name").unwrap_or_else(|_| "Error".to_owned());
            let stack = exception.stack().unwrap_or_default();
            match position(&stack, file_names) {
                Some((file, line, column)) => format!("{file}:{line}:{column}: {name}: {message}"),
                None => format!("{name}: {message}"),
            }
        }
        CaughtError::Value(value) => {
            let shown = super::values::from_js(value)
                .map(|value| value.to_string())
                .unwrap_or_else(|_| super::values::describe(value).to_owned());
            format!("threw {shown}")
        }
        CaughtError::Error(err) => err.to_string(),
    }
}

/// The load problem an exception is: at its place in the script.
fn problem_at(caught: &CaughtError<'_>, index: usize, file_names: &[String]) -> ScriptProblem {
    let (message, stack) = match caught {
        CaughtError::Exception(exception) => {
            let name: String = exception.get("name").unwrap_or_else(|_| "Error".to_owned());
            (
                format!("{name}: {}", exception.message().unwrap_or_default()),
                exception.stack().unwrap_or_default(),
            )
        }
        other => (other.to_string(), String::new()),
    };
    let (line, column) = position(&stack, file_names)
        .filter(|(file, _, _)| *file == file_names[index])
        .map_or((1, 1), |(_, line, column)| (line, column));
    ScriptProblem {
        file: Some(index),
        line,
        column,
        message,
    }
}

/// The first frame of a stack that is in one of the scripts: (file, line, column).
fn position<'a>(stack: &str, file_names: &'a [String]) -> Option<(&'a str, usize, usize)> {
    for frame in stack.lines() {
        let frame = frame.trim().trim_start_matches("at ").trim_end_matches(')');
        let place = frame.rsplit_once('(').map_or(frame, |(_, place)| place);
        let mut parts = place.rsplitn(3, ':');
        let column = parts.next().and_then(|c| c.parse().ok());
        let line = parts.next().and_then(|l| l.parse().ok());
        let file = parts.next();
        if let (Some(file), Some(line), Some(column)) = (file, line, column) {
            if let Some(known) = file_names.iter().find(|name| **name == file) {
                return Some((known.as_str(), line, column));
            }
        }
    }
    None
}

thread_local! {
    /// This thread's engine, for the scripts it was made from. Workers are threads: one
    /// engine per worker, shared by its users.
    static THREAD_ENGINE: RefCell<Option<(Arc<Scripts>, Rc<Engine>)>> = const { RefCell::new(None) };
}

/// This thread's engine for `scripts`, made on first use.
pub(super) fn for_thread(scripts: &Arc<Scripts>) -> Result<Rc<Engine>, ScriptFailure> {
    THREAD_ENGINE.with(|slot| {
        if let Some((known, engine)) = &*slot.borrow() {
            if Arc::ptr_eq(known, scripts) {
                return Ok(engine.clone());
            }
        }
        let (engine, _) = Engine::new(&scripts.files, &scripts.data_files, scripts.time_limit)
            .map_err(|problem| ScriptFailure::new(problem.message))?;
        let engine = Rc::new(engine);
        *slot.borrow_mut() = Some((scripts.clone(), engine.clone()));
        Ok(engine)
    })
}

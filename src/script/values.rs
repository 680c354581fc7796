//! Values across the border: a template's (minijinja) values into JavaScript and back, made
//! directly (no JSON text between), with a depth limit so a cyclic object cannot recurse
//! forever.

use std::collections::BTreeMap;

use minijinja::value::ValueKind;
use rquickjs::{Array, Ctx, Object, Value as Js};

/// Deeper than any value a scenario passes; a cyclic object stops here.
const MAX_DEPTH: usize = 64;

/// A template value as JavaScript: maps become objects, sequences arrays, numbers numbers.
pub(super) fn to_js<'js>(ctx: &Ctx<'js>, value: &minijinja::Value) -> rquickjs::Result<Js<'js>> {
    to_js_at(ctx, value, 0)
}

fn to_js_at<'js>(
    ctx: &Ctx<'js>,
    value: &minijinja::Value,
    depth: usize,
) -> rquickjs::Result<Js<'js>> {
    if depth > MAX_DEPTH {
        return Ok(Js::new_undefined(ctx.clone()));
    }
    Ok(match value.kind() {
        ValueKind::Undefined => Js::new_undefined(ctx.clone()),
        ValueKind::None => Js::new_null(ctx.clone()),
        ValueKind::Bool => Js::new_bool(ctx.clone(), value.is_true()),
        ValueKind::Number => match value.as_i64() {
            Some(int) => match i32::try_from(int) {
                Ok(small) => Js::new_int(ctx.clone(), small),
                Err(_) => Js::new_float(ctx.clone(), int as f64),
            },
            None => Js::new_float(
                ctx.clone(),
                f64::try_from(value.clone()).unwrap_or(f64::NAN),
            ),
        },
        ValueKind::String => {
            rquickjs::String::from_str(ctx.clone(), value.as_str().unwrap_or_default())?
                .into_value()
        }
        ValueKind::Bytes => rquickjs::String::from_str(
            ctx.clone(),
            &String::from_utf8_lossy(value.as_bytes().unwrap_or_default()),
        )?
        .into_value(),
        ValueKind::Seq | ValueKind::Iterable => {
            let array = Array::new(ctx.clone())?;
            if let Ok(items) = value.try_iter() {
                for (i, item) in items.enumerate() {
                    array.set(i, to_js_at(ctx, &item, depth + 1)?)?;
                }
            }
            array.into_value()
        }
        ValueKind::Map => {
            let object = Object::new(ctx.clone())?;
            if let Ok(keys) = value.try_iter() {
                for key in keys {
                    let Ok(item) = value.get_item(&key) else {
                        continue;
                    };
                    if let Some(name) = key.as_str() {
                        object.set(name, to_js_at(ctx, &item, depth + 1)?)?;
                    } else {
                        object.set(key.to_string(), to_js_at(ctx, &item, depth + 1)?)?;
                    }
                }
            }
            object.into_value()
        }
        _ => Js::new_undefined(ctx.clone()),
    })
}

/// A JavaScript value as a template value: `undefined` and functions become none; a number
/// that is whole stays whole (`3`, not `3.0`).
pub(super) fn from_js(value: &Js<'_>) -> Result<minijinja::Value, String> {
    from_js_at(value, 0)
}

fn from_js_at(value: &Js<'_>, depth: usize) -> Result<minijinja::Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "a value nested deeper than {MAX_DEPTH} levels (a cyclic object?)"
        ));
    }
    if value.is_undefined() || value.is_null() || value.is_function() {
        return Ok(minijinja::Value::from(()));
    }
    if let Some(b) = value.as_bool() {
        return Ok(minijinja::Value::from(b));
    }
    if let Some(int) = value.as_int() {
        return Ok(minijinja::Value::from(int));
    }
    if let Some(float) = value.as_float() {
        if float.fract() == 0.0 && float.abs() < 9.0e15 {
            return Ok(minijinja::Value::from(float as i64));
        }
        return Ok(minijinja::Value::from(float));
    }
    if let Some(text) = value.as_string() {
        return text
            .to_string()
            .map(minijinja::Value::from)
            .map_err(|err| err.to_string());
    }
    if let Some(big) = value.as_big_int() {
        return big
            .clone()
            .to_i64()
            .map(minijinja::Value::from)
            .map_err(|err| err.to_string());
    }
    if let Some(array) = value.as_array() {
        let mut items = Vec::with_capacity(array.len());
        for item in array.iter::<Js<'_>>() {
            let item = item.map_err(|err| err.to_string())?;
            items.push(from_js_at(&item, depth + 1)?);
        }
        return Ok(minijinja::Value::from(items));
    }
    if let Some(object) = value.as_object() {
        let mut map = BTreeMap::new();
        for entry in object.props::<String, Js<'_>>() {
            let (key, item) = entry.map_err(|err| err.to_string())?;
            if item.is_function() {
                continue;
            }
            map.insert(key, from_js_at(&item, depth + 1)?);
        }
        return Ok(minijinja::Value::from(map));
    }
    Ok(minijinja::Value::from(()))
}

/// What a value is, for a message: `a number`, `undefined`.
pub(super) fn describe(value: &Js<'_>) -> &'static str {
    if value.is_undefined() {
        "undefined"
    } else if value.is_null() {
        "null"
    } else if value.as_bool().is_some() {
        "a boolean"
    } else if value.as_int().is_some() || value.as_float().is_some() {
        "a number"
    } else if value.as_string().is_some() {
        "a string"
    } else if value.as_array().is_some() {
        "an array"
    } else if value.is_function() {
        "a function"
    } else {
        "an object"
    }
}

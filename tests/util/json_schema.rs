//! A small JSON Schema (draft-07) validator for the keywords our checked-in schemas use:
//! `$ref` (to `#/definitions/...`), `type`, `required`, `properties`, `items`, `enum`,
//! `minimum`, `maximum`, `pattern`. It refuses a schema that uses any other keyword, so a
//! schema cannot silently check less than it says.

use serde_json::Value;

const KNOWN: &[&str] = &[
    "$schema",
    "$comment",
    "$ref",
    "definitions",
    "type",
    "required",
    "properties",
    "items",
    "enum",
    "minimum",
    "maximum",
    "pattern",
    "description",
    "title",
];

/// Every place where `value` breaks `schema`, as `path: problem`.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, schema, value, "$", &mut errors);
    errors
}

fn check(root: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        errors.push(format!("{path}: the schema here is not an object"));
        return;
    };
    for key in object.keys() {
        assert!(
            KNOWN.contains(&key.as_str()),
            "the validator does not know the keyword {key:?}"
        );
    }
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/definitions/")
            .expect("local $ref");
        let target = &root["definitions"][name];
        assert!(!target.is_null(), "no definition {name}");
        check(root, target, value, path, errors);
        return;
    }
    if let Some(types) = object.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = allowed.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            errors.push(format!("{path}: expected {allowed:?}, found {value}"));
            return;
        }
    }
    if let Some(options) = object.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            errors.push(format!("{path}: {value} is not one of {options:?}"));
        }
    }
    if let (Some(min), Some(n)) = (
        object.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if n < min {
            errors.push(format!("{path}: {n} is below the minimum {min}"));
        }
    }
    if let (Some(max), Some(n)) = (
        object.get("maximum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if n > max {
            errors.push(format!("{path}: {n} is above the maximum {max}"));
        }
    }
    if let (Some(pattern), Some(text)) = (
        object.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) {
        if !regex::Regex::new(pattern).unwrap().is_match(text) {
            errors.push(format!("{path}: {text:?} does not match {pattern}"));
        }
    }
    if let Some(fields) = value.as_object() {
        for name in object
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap();
            if !fields.contains_key(name) {
                errors.push(format!("{path}: missing required field {name:?}"));
            }
        }
        if let Some(properties) = object.get("properties").and_then(Value::as_object) {
            for (name, sub) in properties {
                if let Some(field) = fields.get(name) {
                    check(root, sub, field, &format!("{path}.{name}"), errors);
                }
            }
        }
    }
    if let (Some(items), Some(list)) = (object.get("items"), value.as_array()) {
        for (i, item) in list.iter().enumerate() {
            check(root, items, item, &format!("{path}[{i}]"), errors);
        }
    }
}

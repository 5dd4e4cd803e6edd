//! Conditions: typed parameters plus a CEL expression, compiled once with the schema.
//!
//! Evaluation follows SpiceDB: the context stored on a relationship overrides the request context
//! key by key; when a parameter the expression needs is missing, the outcome is
//! [`ConditionOutcome::Missing`] (the caller reports "conditional"), not an error.

use crate::syntax::ast::ParamType;
use cel::objects::Value;
use cel::{Context, Program};
use serde_json::Map;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// JSON object of parameter values.
pub type JsonMap = Map<String, serde_json::Value>;

#[derive(Clone)]
pub struct CompiledCondition {
    pub name: String,
    pub doc: Option<String>,
    pub params: Vec<(String, ParamType)>,
    pub source: String,
    program: Arc<Program>,
    /// Parameters the expression refers to.
    referenced: Vec<String>,
}

impl fmt::Debug for CompiledCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledCondition").field("name", &self.name).field("source", &self.source).finish()
    }
}

/// The result of evaluating a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionOutcome {
    True,
    False,
    /// Parameters the expression needs are not in the context.
    Missing(Vec<String>),
    /// A value has the wrong type or the expression failed.
    Error(String),
}

impl CompiledCondition {
    /// Compiles the CEL source. The error is a message for a diagnostic.
    pub fn compile(
        name: &str,
        doc: Option<String>,
        params: Vec<(String, ParamType)>,
        source: &str,
    ) -> Result<Self, String> {
        let program = Program::compile(source).map_err(|e| {
            let msg = e.to_string();
            msg.lines().next().unwrap_or("invalid expression").trim().to_string()
        })?;
        let vars: Vec<String> = program.references().variables().iter().map(|v| v.to_string()).collect();
        let referenced =
            params.iter().filter(|(p, _)| vars.iter().any(|v| v == p)).map(|(p, _)| p.clone()).collect();
        Ok(CompiledCondition {
            name: name.to_string(),
            doc,
            params,
            source: source.to_string(),
            program: Arc::new(program),
            referenced,
        })
    }

    /// Variables the expression uses that are neither parameters nor bound inside it.
    /// Comprehension variables (`x` in `l.all(x, x > 0)`) are reported too, so the caller filters
    /// them out by looking for their binding in the source.
    pub fn free_variables(&self) -> Vec<String> {
        let vars: Vec<String> = self.program.references().variables().iter().map(|v| v.to_string()).collect();
        vars.into_iter().filter(|v| !self.params.iter().any(|(p, _)| p == v)).collect()
    }

    /// Evaluates with the stored context taking precedence over the request context.
    pub fn evaluate(&self, stored: Option<&JsonMap>, request: &JsonMap) -> ConditionOutcome {
        self.evaluate_with(stored, request, false)
    }

    /// As [`evaluate`](Self::evaluate); with `strict`, a missing parameter the expression refers
    /// to makes the outcome [`ConditionOutcome::Missing`] even when the expression could be
    /// decided without it (OpenFGA's rule).
    pub fn evaluate_with(
        &self,
        stored: Option<&JsonMap>,
        request: &JsonMap,
        strict: bool,
    ) -> ConditionOutcome {
        let mut ctx = Context::default();
        let _ = ctx.add_function("in_cidr", in_cidr);
        let mut missing = Vec::new();
        for (name, ty) in &self.params {
            let value = stored.and_then(|s| s.get(name)).or_else(|| request.get(name));
            match value {
                Some(v) => match json_to_cel(v, ty) {
                    Ok(v) => ctx.add_variable_from_value(name.as_str(), v),
                    Err(e) => {
                        return ConditionOutcome::Error(format!(
                            "parameter `{name}` of condition `{}`: {e}",
                            self.name
                        ))
                    }
                },
                None => {
                    if self.referenced.contains(name) {
                        missing.push(name.clone());
                    }
                }
            }
        }
        if strict && !missing.is_empty() {
            return ConditionOutcome::Missing(missing);
        }
        match self.program.execute(&ctx) {
            Ok(Value::Bool(true)) => ConditionOutcome::True,
            Ok(Value::Bool(false)) => ConditionOutcome::False,
            Ok(other) if missing.is_empty() => ConditionOutcome::Error(format!(
                "condition `{}` returned {} instead of a bool",
                self.name,
                value_kind(&other)
            )),
            Err(e) if missing.is_empty() => {
                ConditionOutcome::Error(format!("condition `{}` failed: {e}", self.name))
            }
            _ => ConditionOutcome::Missing(missing),
        }
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Int(_) => "an int",
        Value::UInt(_) => "a uint",
        Value::Float(_) => "a double",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "a bool",
        Value::Duration(_) => "a duration",
        Value::Timestamp(_) => "a timestamp",
        Value::Null => "null",
        _ => "a value",
    }
}

/// `ip.in_cidr("10.0.0.0/8")`: whether an IP address (a string parameter of type `ipaddress`)
/// is inside a CIDR block.
fn in_cidr(
    cel::extractors::This(ip): cel::extractors::This<Arc<String>>,
    cidr: Arc<String>,
) -> Result<bool, cel::ExecutionError> {
    let bad = |what: &str| cel::ExecutionError::function_error("in_cidr", what);
    let addr: std::net::IpAddr = ip.parse().map_err(|_| bad("not an IP address"))?;
    let (net, bits) = cidr.split_once('/').ok_or_else(|| bad("not a CIDR block"))?;
    let net: std::net::IpAddr = net.parse().map_err(|_| bad("not a CIDR block"))?;
    let bits: u32 = bits.parse().map_err(|_| bad("not a CIDR block"))?;
    Ok(match (addr, net) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    })
}

/// Converts a JSON parameter value to a CEL value of the declared type.
pub fn json_to_cel(v: &serde_json::Value, ty: &ParamType) -> Result<Value, String> {
    use serde_json::Value as J;
    let wrong = |want: &str| Err(format!("expected {want}, got `{v}`"));
    Ok(match (ty, v) {
        (ParamType::Any, v) => any_to_cel(v),
        (ParamType::Bool, J::Bool(b)) => Value::Bool(*b),
        (ParamType::Int, J::Number(n)) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Int(f as i64),
                _ => return wrong("an int"),
            },
        },
        (ParamType::Int, J::String(s)) => match s.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => return wrong("an int"),
        },
        (ParamType::Uint, J::Number(n)) => match n.as_u64() {
            Some(u) => Value::UInt(u),
            None => return wrong("a uint"),
        },
        (ParamType::Uint, J::String(s)) => match s.parse::<u64>() {
            Ok(u) => Value::UInt(u),
            Err(_) => return wrong("a uint"),
        },
        (ParamType::Double, J::Number(n)) => match n.as_f64() {
            Some(f) => Value::Float(f),
            None => return wrong("a double"),
        },
        // The text must name a finite number: `Infinity`, `NaN` and numbers beyond the range of a
        // double (which would parse as infinity) are errors, as in OpenFGA.
        (ParamType::Double, J::String(s)) => match s.parse::<f64>() {
            Ok(f) if f.is_finite() => Value::Float(f),
            _ => return wrong("a finite double"),
        },
        (ParamType::String, J::String(s)) => Value::String(Arc::new(s.clone())),
        (ParamType::Bytes, J::String(s)) => Value::Bytes(Arc::new(s.as_bytes().to_vec())),
        (ParamType::IpAddress, J::String(s)) => {
            if s.parse::<std::net::IpAddr>().is_err() {
                return wrong("an IP address");
            }
            Value::String(Arc::new(s.clone()))
        }
        (ParamType::Timestamp, J::String(s)) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Value::Timestamp(t),
            Err(_) => return wrong("an RFC 3339 timestamp"),
        },
        (ParamType::Duration, J::String(s)) => match parse_duration(s) {
            Some(d) => Value::Duration(d),
            None => return wrong("a duration such as `1h30m`"),
        },
        (ParamType::List(inner), J::Array(items)) => {
            let items: Result<Vec<Value>, String> = items.iter().map(|i| json_to_cel(i, inner)).collect();
            Value::List(Arc::new(items?))
        }
        (ParamType::Map(inner), J::Object(m)) => {
            let mut out: HashMap<cel::objects::Key, Value> = HashMap::new();
            for (k, v) in m {
                out.insert(cel::objects::Key::String(Arc::new(k.clone())), json_to_cel(v, inner)?);
            }
            Value::Map(cel::objects::Map { map: Arc::new(out) })
        }
        (ParamType::Int, _) => return wrong("an int"),
        (ParamType::Uint, _) => return wrong("a uint"),
        (ParamType::Double, _) => return wrong("a double"),
        (ParamType::Bool, _) => return wrong("a bool"),
        (ParamType::String, _) => return wrong("a string"),
        (ParamType::Bytes, _) => return wrong("bytes"),
        (ParamType::IpAddress, _) => return wrong("an IP address"),
        (ParamType::Timestamp, _) => return wrong("an RFC 3339 timestamp"),
        (ParamType::Duration, _) => return wrong("a duration"),
        (ParamType::List(_), _) => return wrong("a list"),
        (ParamType::Map(_), _) => return wrong("a map"),
    })
}

fn any_to_cel(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        J::String(s) => Value::String(Arc::new(s.clone())),
        J::Array(a) => Value::List(Arc::new(a.iter().map(any_to_cel).collect())),
        J::Object(m) => {
            let map: HashMap<cel::objects::Key, Value> = m
                .iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), any_to_cel(v)))
                .collect();
            Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

/// Parses a Go-style duration: `1h30m`, `90s`, `1.5h`, `250ms`, `-2m`.
pub fn parse_duration(s: &str) -> Option<chrono::Duration> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let num: f64 = rest.get(..num_len)?.parse().ok()?;
        rest = rest.get(num_len..)?;
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = rest.get(..unit_len)?;
        rest = rest.get(unit_len..)?;
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += num * scale;
    }
    let d = chrono::Duration::nanoseconds(nanos as i64);
    Some(if neg { -d } else { d })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(params: Vec<(&str, ParamType)>, src: &str) -> CompiledCondition {
        let params = params.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
        CompiledCondition::compile("c", None, params, src).unwrap()
    }

    fn obj(v: serde_json::Value) -> JsonMap {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn stored_context_overrides_request() {
        let c = cond(vec![("x", ParamType::Int)], "x == 42");
        let stored = obj(json!({"x": 42}));
        assert_eq!(c.evaluate(Some(&stored), &obj(json!({"x": 1}))), ConditionOutcome::True);
        assert_eq!(c.evaluate(None, &obj(json!({"x": 1}))), ConditionOutcome::False);
        assert_eq!(c.evaluate(None, &JsonMap::new()), ConditionOutcome::Missing(vec!["x".into()]));
    }

    #[test]
    fn typed_parameters() {
        let c = cond(vec![("ip", ParamType::IpAddress)], "ip.in_cidr('10.0.0.0/8')");
        assert_eq!(c.evaluate(None, &obj(json!({"ip": "10.1.2.3"}))), ConditionOutcome::True);
        assert_eq!(c.evaluate(None, &obj(json!({"ip": "11.1.2.3"}))), ConditionOutcome::False);
        let t = cond(vec![("now", ParamType::Timestamp)], "now < timestamp('2030-01-01T00:00:00Z')");
        assert_eq!(t.evaluate(None, &obj(json!({"now": "2025-01-01T00:00:00Z"}))), ConditionOutcome::True);
        let d = cond(vec![("d", ParamType::Duration)], "d > duration('1h')");
        assert_eq!(d.evaluate(None, &obj(json!({"d": "1h30m"}))), ConditionOutcome::True);
        assert!(matches!(c.evaluate(None, &obj(json!({"ip": 3}))), ConditionOutcome::Error(_)));
    }

    #[test]
    fn doubles_given_as_text_must_be_finite() {
        let c = cond(vec![("x", ParamType::Double)], "x > 0.0");
        assert_eq!(c.evaluate(None, &obj(json!({"x": "1.5"}))), ConditionOutcome::True);
        for bad in ["Infinity", "-inf", "NaN", "1.79769313486231570814527423731704356798070e+309"] {
            assert!(matches!(c.evaluate(None, &obj(json!({"x": bad}))), ConditionOutcome::Error(_)), "{bad}");
        }
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1h30m"), Some(chrono::Duration::minutes(90)));
        assert_eq!(parse_duration("250ms"), Some(chrono::Duration::milliseconds(250)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration(""), None);
    }
}

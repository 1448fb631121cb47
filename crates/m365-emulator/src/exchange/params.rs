//! Cmdlet parameter binding, PowerShell style: names and enum values are case-insensitive, a
//! single string binds to an array parameter, keys with `@` (OData sidecars) are ignored, unknown
//! parameters and wrong types are errors that name the parameter.

use std::collections::HashMap;

use serde_json::Value;

use super::errors::CmdletError;

/// The type a parameter binds to.
#[derive(Debug, Clone, Copy)]
pub enum PType {
    /// A string (numbers are converted).
    Str,
    /// One or more strings.
    StrArray,
    /// `SwitchParameter`: JSON booleans only.
    Switch,
    /// `Boolean`: booleans or numbers.
    Bool,
    /// `Unlimited` or a non-negative integer.
    ResultSize,
    /// One enum value.
    Enum(&'static str, &'static [&'static str]),
    /// One or more enum values (flags; a comma-joined string also binds).
    EnumArray(&'static str, &'static [&'static str]),
    /// `MultiValuedProperty` that takes `{"@odata.type":"#Exchange.GenericHashTable","add":…,"remove":…}`,
    /// an array (overwrite) or null (clear).
    MultiValued,
}

/// One declared parameter.
#[derive(Debug, Clone, Copy)]
pub struct PSpec {
    pub name: &'static str,
    pub ty: PType,
}

pub const fn p(name: &'static str, ty: PType) -> PSpec {
    PSpec { name, ty }
}

pub const ACTION_PREFERENCE: &[&str] = &[
    "SilentlyContinue",
    "Stop",
    "Continue",
    "Inquire",
    "Ignore",
    "Suspend",
    "Break",
];

/// Parameters every cmdlet tolerates.
pub const COMMON: &[PSpec] = &[
    p("Confirm", PType::Switch),
    p("Verbose", PType::Switch),
    p("Debug", PType::Switch),
    p(
        "WarningAction",
        PType::Enum("ActionPreference", ACTION_PREFERENCE),
    ),
    p(
        "ErrorAction",
        PType::Enum("ActionPreference", ACTION_PREFERENCE),
    ),
    p(
        "InformationAction",
        PType::Enum("ActionPreference", ACTION_PREFERENCE),
    ),
    p("DomainController", PType::Str),
];

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum PVal {
    Null,
    Str(String),
    Strs(Vec<String>),
    Bool(bool),
    /// `None` = Unlimited.
    ResultSize(Option<u64>),
    /// Add/remove form of a multi-valued property.
    AddRemove {
        add: Vec<String>,
        remove: Vec<String>,
    },
}

/// Bound parameters, by canonical name.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: HashMap<&'static str, PVal>,
}

impl Params {
    /// Binds `raw` (the `Parameters` object, or null) against `spec` plus [`COMMON`].
    pub fn bind(raw: Option<&Value>, spec: &[PSpec]) -> Result<Params, CmdletError> {
        let mut out = Params::default();
        let obj = match raw {
            None | Some(Value::Null) => return Ok(out),
            Some(Value::Object(o)) => o,
            Some(other) => {
                return Err(CmdletError::bad_request(
                    "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                    format!(
                        "The 'Parameters' value must be an object, not {}.",
                        json_kind(other)
                    ),
                ));
            }
        };
        for (key, value) in obj {
            if key.contains('@') {
                continue;
            }
            let Some(ps) = spec
                .iter()
                .chain(COMMON.iter())
                .find(|s| s.name.eq_ignore_ascii_case(key))
            else {
                return Err(CmdletError::parameter(format!(
                    "A parameter cannot be found that matches parameter name '{key}'."
                )));
            };
            if out.values.contains_key(ps.name) {
                return Err(CmdletError::parameter(format!(
                    "Cannot bind parameter because parameter '{}' is specified more than once.",
                    ps.name
                )));
            }
            let v = convert(ps, value)?;
            out.values.insert(ps.name, v);
        }
        Ok(out)
    }

    pub fn get(&self, name: &str) -> Option<&PVal> {
        self.values.get(name).filter(|v| !matches!(v, PVal::Null))
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn raw(&self, name: &str) -> Option<&PVal> {
        self.values.get(name)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(PVal::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn strs(&self, name: &str) -> Option<&[String]> {
        match self.get(name) {
            Some(PVal::Strs(s)) => Some(s),
            _ => None,
        }
    }

    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(PVal::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// `ResultSize`: default 1000; `None` = Unlimited.
    pub fn result_size(&self) -> Option<u64> {
        match self.get("ResultSize") {
            Some(PVal::ResultSize(r)) => *r,
            _ => Some(1000),
        }
    }

    /// Fails with the PowerShell "missing mandatory parameters" error.
    pub fn require(&self, names: &[&str]) -> Result<(), CmdletError> {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| self.get(n).is_none())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(CmdletError::parameter(format!(
                "Cannot process command because of one or more missing mandatory parameters: {}.",
                missing.join(" ")
            )))
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "System.Boolean",
        Value::Number(_) => "System.Int64",
        Value::String(_) => "System.String",
        Value::Array(_) => "System.Object[]",
        Value::Object(_) => "System.Collections.Hashtable",
    }
}

fn type_error(ps: &PSpec, v: &Value, target: &str) -> CmdletError {
    let shown = match v {
        Value::String(s) => s.clone(),
        Value::Object(_) => "System.Collections.Hashtable".to_owned(),
        Value::Array(_) => "System.Object[]".to_owned(),
        other => other.to_string(),
    };
    CmdletError::parameter(format!(
        "Cannot process argument transformation on parameter '{}'. Cannot convert value \"{shown}\" of type \"{}\" to type \"{target}\".",
        ps.name,
        json_kind(v)
    ))
}

fn enum_value(
    ps: &PSpec,
    type_name: &str,
    names: &[&'static str],
    s: &str,
) -> Result<String, CmdletError> {
    names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(s.trim()))
        .map(|n| (*n).to_owned())
        .ok_or_else(|| {
            CmdletError::parameter(format!(
                "Cannot bind parameter '{}'. Cannot convert value \"{s}\" to type \"{type_name}\". Error: \"Unable to match the identifier name {s} to a valid enumerator name. Specify one of the following enumerator names and try again: {}\"",
                ps.name,
                names.join(", ")
            ))
        })
}

fn strings(ps: &PSpec, v: &Value, target: &str) -> Result<Vec<String>, CmdletError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Number(n) => Ok(vec![n.to_string()]),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(type_error(ps, other, target)),
            })
            .collect(),
        other => Err(type_error(ps, other, target)),
    }
}

fn convert(ps: &PSpec, v: &Value) -> Result<PVal, CmdletError> {
    if v.is_null() {
        return Ok(PVal::Null);
    }
    Ok(match ps.ty {
        PType::Str => match v {
            Value::String(s) => PVal::Str(s.clone()),
            Value::Number(n) => PVal::Str(n.to_string()),
            other => return Err(type_error(ps, other, "System.String")),
        },
        PType::StrArray => PVal::Strs(strings(ps, v, "System.String[]")?),
        PType::Switch => match v {
            Value::Bool(b) => PVal::Bool(*b),
            other => {
                return Err(type_error(
                    ps,
                    other,
                    "System.Management.Automation.SwitchParameter",
                ));
            }
        },
        PType::Bool => match v {
            Value::Bool(b) => PVal::Bool(*b),
            Value::Number(n) if n.as_i64().is_some() => PVal::Bool(n.as_i64() != Some(0)),
            other => return Err(type_error(ps, other, "System.Boolean")),
        },
        PType::ResultSize => match v {
            Value::Number(n) => match n.as_u64() {
                Some(x) => PVal::ResultSize(Some(x)),
                None => return Err(type_error(ps, v, "Unlimited[UInt32]")),
            },
            Value::String(s) if s.trim().eq_ignore_ascii_case("unlimited") => {
                PVal::ResultSize(None)
            }
            Value::String(s) => match s.trim().parse::<u64>() {
                Ok(x) => PVal::ResultSize(Some(x)),
                Err(_) => return Err(type_error(ps, v, "Unlimited[UInt32]")),
            },
            other => return Err(type_error(ps, other, "Unlimited[UInt32]")),
        },
        PType::Enum(type_name, names) => match v {
            Value::String(s) => PVal::Str(enum_value(ps, type_name, names, s)?),
            other => return Err(type_error(ps, other, type_name)),
        },
        PType::EnumArray(type_name, names) => {
            let mut out = Vec::new();
            for s in strings(ps, v, type_name)? {
                for part in s.split(',') {
                    let val = enum_value(ps, type_name, names, part)?;
                    if !out.contains(&val) {
                        out.push(val);
                    }
                }
            }
            PVal::Strs(out)
        }
        PType::MultiValued => match v {
            Value::Object(o) => {
                let typed = o.iter().any(|(k, t)| {
                    k == "@odata.type" && t.as_str() == Some("#Exchange.GenericHashTable")
                });
                if !typed {
                    return Err(type_error(
                        ps,
                        v,
                        "Microsoft.Exchange.Data.MultiValuedProperty",
                    ));
                }
                let mut add = Vec::new();
                let mut remove = Vec::new();
                for (k, val) in o {
                    if k == "@odata.type" {
                        continue;
                    }
                    if k.eq_ignore_ascii_case("add") {
                        if !val.is_null() {
                            add.extend(strings(ps, val, "System.String[]")?);
                        }
                    } else if k.eq_ignore_ascii_case("remove") {
                        if !val.is_null() {
                            remove.extend(strings(ps, val, "System.String[]")?);
                        }
                    } else {
                        return Err(CmdletError::parameter(format!(
                            "Cannot bind parameter '{}'. The hashtable key '{k}' is not supported; use Add or Remove.",
                            ps.name
                        )));
                    }
                }
                PVal::AddRemove { add, remove }
            }
            other => PVal::Strs(strings(ps, other, "System.String[]")?),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: &[PSpec] = &[
        p("Identity", PType::Str),
        p(
            "AccessRights",
            PType::EnumArray("MailboxRights", &["FullAccess", "ReadPermission"]),
        ),
        p("AutoMapping", PType::Bool),
        p("ResultSize", PType::ResultSize),
        p("GrantSendOnBehalfTo", PType::MultiValued),
    ];

    #[test]
    fn binds_case_insensitively_and_rejects_unknowns() {
        let v = json!({"identity":"a","accessrights":"fullaccess, readpermission","AUTOMAPPING":false,
            "AccessRights@odata.type":"#Collection(String)","confirm":false,"ResultSize":"unlimited"});
        let p = Params::bind(Some(&v), SPEC).unwrap();
        assert_eq!(p.str("Identity"), Some("a"));
        assert_eq!(
            p.strs("AccessRights").unwrap(),
            ["FullAccess", "ReadPermission"]
        );
        assert_eq!(p.flag("AutoMapping"), Some(false));
        assert_eq!(p.result_size(), None);
        let e = Params::bind(Some(&json!({"Bogus":1})), SPEC).unwrap_err();
        assert!(e.message.contains("'Bogus'"));
        let e = Params::bind(Some(&json!({"AutoMapping":"yes"})), SPEC).unwrap_err();
        assert!(e.message.contains("AutoMapping"));
        let e = Params::bind(Some(&json!({"GrantSendOnBehalfTo":{"add":"x"}})), SPEC).unwrap_err();
        assert!(e.message.contains("GrantSendOnBehalfTo"));
        let p = Params::bind(
            Some(&json!({"GrantSendOnBehalfTo":{"@odata.type":"#Exchange.GenericHashTable","Add":["x","y"],"remove":"z"}})),
            SPEC,
        )
        .unwrap();
        assert_eq!(
            p.get("GrantSendOnBehalfTo"),
            Some(&PVal::AddRemove {
                add: vec!["x".into(), "y".into()],
                remove: vec!["z".into()]
            })
        );
    }
}

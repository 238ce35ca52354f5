//! `simulate --set KEY=VALUE`: a key of the config replaced by a YAML value
//! in the parsed document, before the same deserialisation and validation
//! the file gets — so an override is judged exactly like the key written
//! in the file, and an unknown one is an error that names it.
//!
//! Keys are dotted paths into mappings (`forecast.mode`,
//! `services.web.hpa`); a missing mapping on the way is created. Lists
//! (`tiers`, `schedules`) are replaced whole: `--set 'tiers=[...]'`.

use serde_yaml::{Mapping, Value};

/// One `--set KEY=VALUE`, as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub key: String,
    pub value: String,
}

/// Keys whose value is a secret (or carries one, as the webhook's token):
/// an override of them is never repeated in output or errors.
const SECRET_KEYS: [&str; 5] = [
    "mysql_pwd",
    "aws_secret_access_key",
    "aws_access_key_id",
    "feishu_secret",
    "feishu_webhook_url",
];

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--set {}", self.shown())
    }
}

impl Override {
    /// `key=value` as output may show it: a secret's value is left out.
    pub fn shown(&self) -> String {
        if SECRET_KEYS.contains(&self.key.as_str()) {
            format!("{}=…", self.key)
        } else {
            format!("{}={}", self.key, self.value)
        }
    }

    /// The top-level key it replaces (or reaches into).
    pub fn top(&self) -> &str {
        self.key.split('.').next().unwrap_or(&self.key)
    }

    /// Whether a problem reported for the config key `key` (`forecast.mode`,
    /// `tiers[1]`, `services.web.hpa`) is about this override's value.
    pub fn touches(&self, key: &str) -> bool {
        let mine = self.key.as_str();
        let below = |a: &str, b: &str| {
            a.strip_prefix(b)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        };
        key == mine || below(key, mine) || below(mine, key)
    }

    /// Writes the value into `doc` (a mapping, or null for an empty file).
    pub fn apply(&self, doc: &mut Value) -> Result<(), String> {
        let value: Value = serde_yaml::from_str(&self.value)
            .map_err(|e| format!("{self}: not a YAML value: {e}"))?;
        let path: Vec<&str> = self.key.split('.').collect();
        let mut here = doc;
        for (depth, part) in path.iter().enumerate() {
            if here.is_null() {
                *here = Value::Mapping(Mapping::new());
            }
            let Value::Mapping(map) = here else {
                let parent = path[..depth].join(".");
                return Err(format!(
                    "{self}: `{parent}` is {}, not a mapping with keys; set it whole (--set '{parent}=...')",
                    kind(here)
                ));
            };
            let key = Value::String((*part).to_string());
            if depth + 1 == path.len() {
                map.insert(key, value);
                return Ok(());
            }
            here = map.entry(key).or_insert(Value::Null);
        }
        Ok(())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str) -> Override {
        Override {
            key: key.into(),
            value: value.into(),
        }
    }

    fn doc(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn a_value_replaces_the_key_creating_mappings_on_the_way() {
        let mut d = doc("headroom_percent: 0\nforecast: { mode: off }\n");
        set("headroom_percent", "10").apply(&mut d).unwrap();
        set("forecast.mode", "scale").apply(&mut d).unwrap();
        set("users.http.url", "http://x:1/u").apply(&mut d).unwrap();
        assert_eq!(d["headroom_percent"], Value::from(10));
        assert_eq!(d["forecast"]["mode"], Value::from("scale"));
        assert_eq!(d["users"]["http"]["url"], Value::from("http://x:1/u"));
        let mut empty = Value::Null;
        set("check_time", "5").apply(&mut empty).unwrap();
        assert_eq!(empty["check_time"], Value::from(5));
    }

    #[test]
    fn values_are_yaml() {
        let mut d = doc("{}");
        set(
            "schedules",
            "[{name: a, at: '2026-03-02T19:00', duration: 1h, capacity: 2000}]",
        )
        .apply(&mut d)
        .unwrap();
        assert_eq!(d["schedules"][0]["capacity"], Value::from(2000));
        set("state_file", "").apply(&mut d).unwrap();
        assert!(d["state_file"].is_null());
        let e = set("headroom_percent", "[1,").apply(&mut d).unwrap_err();
        assert!(
            e.contains("--set headroom_percent=[1,") && e.contains("not a YAML value"),
            "{e}"
        );
    }

    #[test]
    fn a_secret_override_is_never_repeated() {
        let pwd = set("mysql_pwd", "[hunter2");
        assert_eq!(pwd.to_string(), "--set mysql_pwd=…");
        let e = pwd.apply(&mut doc("{}")).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let e = parsed(BASE, &[set("mysql_pwd", "hunter2"), set("check_time", "0")]).unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("check_time"), "{e}");
        assert_eq!(set("headroom_percent", "10").shown(), "headroom_percent=10");
    }

    #[test]
    fn reaching_into_a_scalar_or_list_says_to_set_it_whole() {
        let mut d = doc("headroom_percent: 0\ntiers: []\n");
        let e = set("headroom_percent.x", "1").apply(&mut d).unwrap_err();
        assert!(e.contains("`headroom_percent` is a number"), "{e}");
        let e = set("tiers.0.capacity", "1").apply(&mut d).unwrap_err();
        assert!(
            e.contains("`tiers` is a list") && e.contains("--set 'tiers=...'"),
            "{e}"
        );
    }

    const BASE: &str = "property_id: '1'\nkey_file_location: k\nhpa_service_name: istio-ingress\n\
        check_time: 5\nservices:\n  istio-ingress: { hpa: ingressgateway-hpa, namespace: istio-system }\n";

    fn parsed(text: &str, sets: &[Override]) -> Result<crate::config::Config, String> {
        crate::config::parse_with(text, std::path::Path::new("c.yaml"), &|_| None, sets)
            .map_err(|e| e.0)
    }

    #[test]
    fn an_override_is_validated_like_the_file_without_the_files_line() {
        let c = parsed(
            BASE,
            &[set("headroom_percent", "10"), set("forecast.mode", "scale")],
        )
        .unwrap();
        assert_eq!(c.policy.headroom_percent, 10);
        assert_eq!(
            c.policy.forecast.mode,
            hpa_tier_core::policy::ForecastMode::Scale
        );
        // check_time is on line 4 of the file, but the value judged is the override's.
        let e = parsed(BASE, &[set("check_time", "0")]).unwrap_err();
        assert!(e.starts_with("--set check_time=0: check_time: "), "{e}");
        assert!(!e.contains("line"), "{e}");
        let in_file = parsed(&BASE.replace("check_time: 5", "check_time: 0"), &[]).unwrap_err();
        assert!(in_file.contains("check_time (line 4)"), "{in_file}");
        // An error elsewhere names the overrides in force.
        let e = parsed(BASE, &[set("hpa_service_name", "web")]).unwrap_err();
        assert!(e.contains("--set hpa_service_name=web"), "{e}");
    }

    #[test]
    fn an_unknown_key_names_its_path_even_without_a_line() {
        let e = parsed(BASE, &[set("forecast.horizn", "5m")]).unwrap_err();
        assert!(
            e.starts_with(
                "--set forecast.horizn=5m: forecast.horizn is not accepted: unknown field `horizn`"
            ),
            "{e}"
        );
        assert!(e.contains("did you mean `horizon`?"), "{e}");
        let e = parsed(BASE, &[set("services.istio-ingress.hpaa", "x")]).unwrap_err();
        assert!(
            e.contains("services.istio-ingress.hpaa") && e.contains("unknown field `hpaa`"),
            "{e}"
        );
        // The file's own typo keeps its line, whatever is overridden.
        let e = parsed(
            &format!("{BASE}headroom_percnt: 1\n"),
            &[set("check_time", "5")],
        )
        .unwrap_err();
        assert!(e.contains("headroom_percnt") && e.contains("line 7"), "{e}");
    }

    #[test]
    fn an_error_key_is_matched_to_the_override_that_set_it() {
        let o = set("forecast.mode", "x");
        assert!(o.touches("forecast.mode") && o.touches("forecast"));
        assert!(!o.touches("forecast.horizon") && !o.touches("forecast_x"));
        let t = set("tiers", "[]");
        assert!(t.touches("tiers[1]") && t.touches("tiers"));
        assert_eq!(set("services.web.hpa", "w").top(), "services");
    }
}

//! `users.source: prometheus`: an instant query (`GET /api/v1/query`) whose
//! answer must be exactly one number — a scalar, or a vector of exactly one
//! sample. Anything else is refused rather than guessed at: adding up several
//! series, or taking the first, could scale on the wrong number.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{
    agent, display_url, off_runtime, read_body, remaining, shorten, snippet, status_error,
    transport_error, users_from_str,
};
use super::{MetricError, MetricSource};

/// Reads the number of online users from a PromQL instant query.
#[derive(Clone)]
pub struct Prometheus {
    /// Base URL of the server (a path prefix such as `/prometheus` is kept).
    url: String,
    query: String,
    timeout: Duration,
    agent: ureq::Agent,
}

impl Prometheus {
    pub fn new(url: &str, query: &str, timeout: Duration) -> Prometheus {
        Prometheus {
            url: url.trim_end_matches('/').to_string(),
            query: query.to_string(),
            timeout,
            agent: agent(),
        }
    }

    fn what(&self) -> String {
        format!("Prometheus {}", display_url(&self.url))
    }

    fn read(&self, deadline: Instant) -> Result<u32, MetricError> {
        let what = self.what();
        let left = remaining(deadline, &what, self.timeout)?;
        let resp = self
            .agent
            .get(format!("{}/api/v1/query", self.url))
            .query("query", &self.query)
            // Prometheus stops evaluating when we stop waiting.
            .query("timeout", format!("{}ms", left.as_millis().max(1)))
            .header("Accept", "application/json")
            .config()
            .timeout_global(Some(left))
            .build()
            .call()
            .map_err(|e| transport_error(&what, e, self.timeout))?;
        let (status, body) = read_body(resp, &what, self.timeout)?;
        answer(status, &body, &self.query).map_err(|e| match e {
            Answer::Refused(msg) => {
                let mut err = status_error(&what, status, &msg);
                if let MetricError::Http(m) = &mut err {
                    m.push_str(" (check users.prometheus.query)");
                }
                err
            }
            Answer::Garbage(msg) => MetricError::Garbage(format!("{what}: {msg}")),
        })
    }
}

impl MetricSource for Prometheus {
    async fn online_users(&self) -> Result<u32, MetricError> {
        let this = self.clone();
        off_runtime(&self.what(), self.timeout, move |deadline| {
            this.read(deadline)
        })
        .await
    }

    fn describe(&self) -> String {
        format!("Prometheus {} `{}`", display_url(&self.url), self.query)
    }
}

/// Why an answer gives no number.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Prometheus said no (a non-2xx status, its `error` quoted).
    Refused(String),
    /// It answered, but not with exactly one number.
    Garbage(String),
}

/// The API's envelope: `{"status": "success", "data": {"resultType", "result"}}`
/// or `{"status": "error", "errorType", "error"}`. The whole of what the
/// source makes of an answer (public for the fuzz tests).
pub fn answer(status: u16, body: &str, query: &str) -> Result<u32, Answer> {
    let doc: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        doc.as_ref()
            .and_then(|d| d.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    if !(200..300).contains(&status) || field("status") == "error" {
        let msg = match (field("errorType"), field("error")) {
            ("", "") => snippet(body),
            (t, e) => format!("{t}: {}", shorten(e, 300)),
        };
        return Err(if (200..300).contains(&status) {
            Answer::Garbage(format!("the query `{query}` failed: {msg}"))
        } else {
            Answer::Refused(format!("the query `{query}` failed: {msg}"))
        });
    }
    let garbage = |m: String| Answer::Garbage(m);
    let Some(doc) = &doc else {
        return Err(garbage(format!(
            "the answer is not JSON: {}",
            snippet(body)
        )));
    };
    if field("status") != "success" {
        return Err(garbage(format!(
            "the answer is not a Prometheus query result: {}",
            snippet(body)
        )));
    }
    let sample = sample_of(doc, query)?;
    // A sample is `[unix_time, "value"]`.
    let value = sample
        .and_then(Value::as_array)
        .and_then(|s| s.get(1))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            garbage(format!(
                "the sample is not [time, \"value\"]: {}",
                snippet(body)
            ))
        })?;
    users_from_str(value).map_err(|e| garbage(format!("the value of `{query}` {e}")))
}

/// The one sample of a `data` that must hold exactly one number: a scalar,
/// or a vector of one series.
fn sample_of<'a>(doc: &'a Value, query: &str) -> Result<Option<&'a Value>, Answer> {
    let garbage = Answer::Garbage;
    let data = doc
        .get("data")
        .ok_or_else(|| garbage("the answer has no `data`".into()))?;
    let result = data.get("result");
    let sample = match data.get("resultType").and_then(Value::as_str) {
        Some("scalar") => result,
        Some("vector") => {
            let series = result
                .and_then(Value::as_array)
                .ok_or_else(|| garbage("the vector result is not a list".into()))?;
            match series.as_slice() {
                [one] => one.get("value"),
                [] => {
                    return Err(garbage(format!(
                        "the query `{query}` returned no samples: the series does not exist \
                         (yet), or is not scraped; an empty result is not zero users"
                    )));
                }
                many => {
                    let labels: Vec<String> = many
                        .iter()
                        .take(3)
                        .map(|s| s.get("metric").map(Value::to_string).unwrap_or_default())
                        .collect();
                    return Err(garbage(format!(
                        "the query `{query}` returned {} series ({}{}), one number is needed: \
                         aggregate it, e.g. sum(...)",
                        many.len(),
                        labels.join(", "),
                        if many.len() > 3 { ", …" } else { "" }
                    )));
                }
            }
        }
        Some("matrix") => {
            return Err(garbage(format!(
                "the query `{query}` returned a range vector; use an instant query (wrap the \
                 [range] selector in a function such as rate() or max_over_time())"
            )));
        }
        Some(other) => {
            return Err(garbage(format!(
                "the query `{query}` returned a {other}, not a number"
            )));
        }
        None => return Err(garbage("the answer has no `data.resultType`".into())),
    };
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(samples: &[&str]) -> String {
        let series: Vec<String> = samples
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(r#"{{"metric":{{"pod":"p{i}"}},"value":[1700000000.123,"{v}"]}}"#)
            })
            .collect();
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            series.join(",")
        )
    }

    #[test]
    fn exactly_one_number_is_accepted() {
        let q = "sum(up)";
        let cases: Vec<(u16, String, Result<u32, &str>)> = vec![
            (200, vector(&["812"]), Ok(812)),
            (200, vector(&["41.5"]), Ok(42)),
            (200, vector(&["0"]), Ok(0)),
            (
                200,
                r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"77"]}}"#
                    .into(),
                Ok(77),
            ),
            (200, vector(&[]), Err("returned no samples")),
            (200, vector(&["1", "2"]), Err("returned 2 series")),
            (200, vector(&["NaN"]), Err("not a finite number")),
            (200, vector(&["-1"]), Err("negative")),
            (
                200,
                r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#.into(),
                Err("range vector"),
            ),
            (
                200,
                r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#.into(),
                Err("returned a string"),
            ),
            (200, "<html>login</html>".into(), Err("not JSON")),
            (
                200,
                r#"{"hello":"world"}"#.into(),
                Err("not a Prometheus query result"),
            ),
            (
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}}"#
                    .into(),
                Err("[time, \"value\"]"),
            ),
        ];
        for (status, body, want) in cases {
            match (answer(status, &body, q), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{body}"),
                (Err(Answer::Garbage(e)), Err(w)) => assert!(e.contains(w), "{body}: {e}"),
                (got, w) => panic!("{body}: got {got:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn a_sample_past_int32_or_not_finite_is_garbage() {
        let cases: [(&str, Result<u32, &str>); 9] = [
            ("+Inf", Err("is +Inf, not a finite number")),
            ("-Inf", Err("not a finite number")),
            ("NaN", Err("not a finite number")),
            ("1e308", Err("is 1e308, more than 2147483647")),
            ("2147483648", Err("more than 2147483647 (2^31-1)")),
            ("2147483647", Ok(2147483647)),
            ("-0.2", Err("negative")),
            ("0.5", Ok(1)),
            ("4.9e-324", Ok(0)),
        ];
        for (value, want) in cases {
            match (answer(200, &vector(&[value]), "q"), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{value}"),
                (Err(Answer::Garbage(e)), Err(w)) => assert!(e.contains(w), "{value}: {e}"),
                (got, w) => panic!("{value}: got {got:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn prometheus_errors_are_quoted() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#;
        let Err(Answer::Refused(m)) = answer(400, body, "sum(") else {
            panic!()
        };
        assert!(
            m.contains("bad_data: 1:5: parse error") && m.contains("`sum(`"),
            "{m}"
        );
        let Err(Answer::Refused(m)) = answer(503, "Service Unavailable", "up") else {
            panic!()
        };
        assert!(m.contains("Service Unavailable"), "{m}");
    }
}

//! The Prometheus text exposition format 0.0.4, both ways: [`parse`] reads
//! a push body as prometheus/common's `expfmt.TextParser` (legacy name
//! validation, the Pushgateway's default) does, byte for byte where it
//! matters — every line ends with `\n`, `TYPE` comes before samples, label
//! values escape only `\\`, `\"` and `\n` — with its error messages;
//! [`write`] prints families as `expfmt.MetricFamilyToText` does (Go's
//! float formatting included), which is what Prometheus scrapes.
//!
//! Not supported, on purpose: UTF-8 (quoted) metric and label names, and
//! the `{name="..."}` form, which the Pushgateway refuses by default anyway.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// A metric family's type, as `# TYPE` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Summary,
    Untyped,
    Histogram,
    GaugeHistogram,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
        }
    }

    /// The protobuf enum name Go's errors print.
    fn proto_name(self) -> &'static str {
        match self {
            MetricType::Counter => "COUNTER",
            MetricType::Gauge => "GAUGE",
            MetricType::Summary => "SUMMARY",
            MetricType::Untyped => "UNTYPED",
            MetricType::Histogram => "HISTOGRAM",
            MetricType::GaugeHistogram => "GAUGE_HISTOGRAM",
        }
    }

    fn is_histogram(self) -> bool {
        matches!(self, MetricType::Histogram | MetricType::GaugeHistogram)
    }
}

/// One sample's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A counter, gauge or untyped value.
    Simple(f64),
    Summary {
        count: u64,
        sum: f64,
        /// `(quantile, value)` in the order given.
        quantiles: Vec<(f64, f64)>,
    },
    Histogram {
        count: f64,
        sum: f64,
        /// `(upper bound, cumulative count)` in the order given.
        buckets: Vec<(f64, f64)>,
    },
}

/// One metric (a label set) of a family.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// In the order given; the Pushgateway sorts them by name.
    pub labels: Vec<(String, String)>,
    pub value: Value,
    pub timestamp_ms: Option<i64>,
}

impl Metric {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetricFamily {
    pub name: String,
    pub help: Option<String>,
    pub kind: MetricType,
    pub metrics: Vec<Metric>,
}

/// `text format parsing error in line N: ...`, as expfmt words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "text format parsing error in line {}: {}",
            self.line, self.msg
        )
    }
}

impl std::error::Error for ParseError {}

// ---------------------------------------------------------------------------
// Parsing.

/// Why a line stopped: a parse error, or the input ended in the middle of it.
enum Stop {
    Error(String),
    Eof,
}

type Step<T> = Result<T, Stop>;

fn error<T>(msg: String) -> Step<T> {
    Err(Stop::Error(msg))
}

/// Go's `%q` of a single byte (a quoted character literal).
fn quote_byte(b: u8) -> String {
    match b {
        b'\n' => r"'\n'".into(),
        b'\t' => r"'\t'".into(),
        b'\r' => r"'\r'".into(),
        b'\'' => r"'\''".into(),
        b'\\' => r"'\\'".into(),
        b if b.is_ascii_control() => format!("'\\x{b:02x}'"),
        b => format!("'{}'", char::from(b)),
    }
}

/// Go's `%q` of a string.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `strconv.ParseFloat` as expfmt calls it (no `p`, `P` or `_`).
fn parse_float(s: &str) -> Option<f64> {
    if s.contains(['p', 'P', '_']) || s.is_empty() {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if body.starts_with("nan") && body.len() != lower.len() {
        return None; // Go takes no sign before NaN
    }
    if body.starts_with("0x") {
        return None; // hex floats need the `p` exponent refused above
    }
    let v: f64 = s.parse().ok()?;
    // Go reports an overflow (ErrRange) where Rust rounds to infinity.
    if v.is_infinite() && !body.starts_with("inf") {
        return None;
    }
    Some(v)
}

/// The bytes of one line; reading past its end yields `\n` when the line
/// was terminated, EOF when the input ended first.
struct Line<'a> {
    bytes: &'a [u8],
    pos: usize,
    terminated: bool,
}

impl Line<'_> {
    fn peek(&self) -> Step<u8> {
        match self.bytes.get(self.pos) {
            Some(b) => Ok(*b),
            None if self.terminated => Ok(b'\n'),
            None => Err(Stop::Eof),
        }
    }
    fn bump(&mut self) -> Step<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }
    fn skip_blank(&mut self) -> Step<u8> {
        while matches!(self.peek()?, b' ' | b'\t') {
            self.pos += 1;
        }
        self.peek()
    }
    /// Up to a blank, tab or newline (not consumed).
    fn until_whitespace(&mut self) -> Step<String> {
        let start = self.pos;
        while !matches!(self.peek()?, b' ' | b'\t' | b'\n') {
            self.pos += 1;
        }
        Ok(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned())
    }
    /// The rest of the line; with `escapes`, `\\`, `\n` and `\"` are decoded.
    fn until_newline(&mut self, escapes: bool) -> Step<String> {
        let mut out = vec![];
        loop {
            match self.bump()? {
                b'\n' => break,
                b'\\' if escapes => match self.bump()? {
                    b'\\' => out.push(b'\\'),
                    b'n' => out.push(b'\n'),
                    b'"' => out.push(b'"'),
                    c => return error(format!("invalid escape sequence '\\{}'", char::from(c))),
                },
                b => out.push(b),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` (or `[a-zA-Z_][a-zA-Z0-9_]*` for labels);
    /// empty when the first byte cannot start one.
    fn name(&mut self, colon: bool) -> Step<String> {
        let ok = |b: u8, first: bool| {
            b.is_ascii_alphabetic()
                || b == b'_'
                || (colon && b == b':')
                || (!first && b.is_ascii_digit())
        };
        let start = self.pos;
        if !ok(self.peek()?, true) {
            return Ok(String::new());
        }
        self.pos += 1;
        while ok(self.peek()?, false) {
            self.pos += 1;
        }
        Ok(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned())
    }
}

/// Which part of a summary or histogram a sample line is.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Plain,
    Count,
    Sum,
}

#[derive(Default)]
struct Parser {
    families: BTreeMap<String, Family>,
}

/// A family while parsing: `kind` stays `None` until a TYPE line or a sample.
struct Family {
    help: Option<String>,
    kind: Option<MetricType>,
    metrics: Vec<Metric>,
    /// Summary and histogram metrics by their sorted label set.
    by_labels: HashMap<Vec<(String, String)>, usize>,
}

impl Parser {
    /// The family a name belongs to (`x_count` and `x_sum` of a summary or
    /// histogram `x`, `x_bucket` of a histogram), created if need be.
    fn family_for(&mut self, name: &str) -> (String, Part) {
        if self.families.contains_key(name) {
            return (name.to_string(), Part::Plain);
        }
        let strip = |suffix: &str| name.strip_suffix(suffix).filter(|b| !b.is_empty());
        for (suffix, part) in [
            ("_count", Part::Count),
            ("_sum", Part::Sum),
            ("_bucket", Part::Plain),
        ] {
            if let Some(base) = strip(suffix)
                && let Some(f) = self.families.get(base)
            {
                let summary = f.kind == Some(MetricType::Summary) && suffix != "_bucket";
                if summary || f.kind.is_some_and(MetricType::is_histogram) {
                    return (base.to_string(), part);
                }
            }
        }
        self.families.insert(
            name.to_string(),
            Family {
                help: None,
                kind: None,
                metrics: vec![],
                by_labels: HashMap::new(),
            },
        );
        (name.to_string(), Part::Plain)
    }

    fn line(&mut self, l: &mut Line) -> Step<()> {
        match l.skip_blank() {
            Err(Stop::Eof) => Ok(()), // only blanks before the end: fine
            Err(e) => Err(e),
            Ok(b'#') => {
                l.pos += 1;
                self.comment(l)
            }
            Ok(b'\n') => Ok(()),
            Ok(b'{') => error("invalid metric name".into()),
            Ok(_) => self.sample(l),
        }
    }

    fn comment(&mut self, l: &mut Line) -> Step<()> {
        if l.skip_blank()? == b'\n' {
            return Ok(());
        }
        let keyword = l.until_whitespace()?;
        if l.peek()? == b'\n' {
            return Ok(());
        }
        if keyword != "HELP" && keyword != "TYPE" {
            l.until_newline(false)?;
            return Ok(());
        }
        l.skip_blank()?;
        let name = l.name(true)?;
        match l.peek()? {
            b'\n' => return Ok(()),
            b' ' | b'\t' => {}
            _ => return error("invalid metric name in comment".into()),
        }
        let (family, _) = self.family_for(&name);
        if l.skip_blank()? == b'\n' {
            return Ok(());
        }
        let f = self.families.get_mut(&family).expect("just found");
        if keyword == "HELP" {
            if f.help.is_some() {
                return error(format!(
                    "second HELP line for metric name {}",
                    quote(&family)
                ));
            }
            f.help = Some(l.until_newline(true)?);
            return Ok(());
        }
        if f.kind.is_some() {
            return error(format!(
                "second TYPE line for metric name {}, or TYPE reported after samples",
                quote(&family)
            ));
        }
        let text = l.until_newline(false)?;
        f.kind = Some(match text.to_ascii_uppercase().as_str() {
            "COUNTER" => MetricType::Counter,
            "GAUGE" => MetricType::Gauge,
            "SUMMARY" => MetricType::Summary,
            "UNTYPED" => MetricType::Untyped,
            "HISTOGRAM" => MetricType::Histogram,
            "GAUGE_HISTOGRAM" | "GAUGEHISTOGRAM" => MetricType::GaugeHistogram,
            _ => return error(format!("unknown metric type {}", quote(&text))),
        });
        Ok(())
    }

    fn sample(&mut self, l: &mut Line) -> Step<()> {
        let name = l.name(true)?;
        if name.is_empty() {
            return error("invalid metric name".into());
        }
        let (family, part) = self.family_for(&name);
        let f = self.families.get_mut(&family).expect("just found");
        let kind = *f.kind.get_or_insert(MetricType::Untyped);
        let special = match kind {
            MetricType::Summary => Some("quantile"),
            MetricType::Histogram | MetricType::GaugeHistogram => Some("le"),
            _ => None,
        };
        if matches!(l.peek()?, b' ' | b'\t') {
            l.skip_blank()?;
        }
        let mut labels: Vec<(String, String)> = vec![];
        let mut bound: Option<f64> = None;
        if l.peek()? == b'{' {
            l.pos += 1;
            loop {
                if l.skip_blank()? == b'}' {
                    l.pos += 1;
                    l.skip_blank()?;
                    break;
                }
                let label = l.name(false)?;
                if label.is_empty() {
                    return error(format!("invalid label name for metric {}", quote(&family)));
                }
                if matches!(l.peek()?, b' ' | b'\t') {
                    l.skip_blank()?;
                }
                let b = l.peek()?;
                if b != b'=' {
                    return error(format!(
                        "expected '=' after label name, found {}",
                        quote_byte(b)
                    ));
                }
                l.pos += 1;
                if label == "__name__" {
                    return error("label name \"__name__\" is reserved".into());
                }
                let is_special = special == Some(label.as_str());
                if !is_special && labels.iter().any(|(k, _)| *k == label) {
                    return error(format!(
                        "duplicate label names for metric {}",
                        quote(&family)
                    ));
                }
                let b = l.skip_blank()?;
                if b != b'"' {
                    return error(format!(
                        "expected '\"' at start of label value, found {}",
                        quote_byte(b)
                    ));
                }
                l.pos += 1;
                let value = label_value(l)?;
                if is_special {
                    match parse_float(&value) {
                        Some(v) => bound = Some(v),
                        None => {
                            return error(format!(
                                "expected float as value for '{label}' label, got {}",
                                quote(&value)
                            ));
                        }
                    }
                } else {
                    labels.push((label, value.clone()));
                }
                match l.skip_blank()? {
                    b',' => l.pos += 1,
                    b'}' => {
                        l.pos += 1;
                        l.skip_blank()?;
                        break;
                    }
                    _ => return error(format!("unexpected end of label value {}", quote(&value))),
                }
            }
        }
        let token = l.until_whitespace()?;
        let Some(v) = parse_float(&token) else {
            return error(format!("expected float as value, got {}", quote(&token)));
        };
        let timestamp_ms = if l.peek()? == b'\n' {
            None
        } else {
            l.skip_blank()?;
            let token = l.until_whitespace()?;
            let Ok(ts) = token.parse::<i64>() else {
                return error(format!(
                    "expected integer as timestamp, got {}",
                    quote(&token)
                ));
            };
            let rest = l.until_newline(false)?;
            if !rest.is_empty() {
                return error(format!("spurious string after timestamp: {}", quote(&rest)));
            }
            Some(ts)
        };
        self.record(&family, kind, part, labels, bound, v, timestamp_ms)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        family: &str,
        kind: MetricType,
        part: Part,
        labels: Vec<(String, String)>,
        bound: Option<f64>,
        v: f64,
        timestamp_ms: Option<i64>,
    ) -> Step<()> {
        let f = self.families.get_mut(family).expect("family exists");
        let empty = match kind {
            MetricType::Summary => Value::Summary {
                count: 0,
                sum: 0.0,
                quantiles: vec![],
            },
            MetricType::Histogram | MetricType::GaugeHistogram => Value::Histogram {
                count: 0.0,
                sum: 0.0,
                buckets: vec![],
            },
            _ => {
                f.metrics.push(Metric {
                    labels,
                    value: Value::Simple(v),
                    timestamp_ms,
                });
                return Ok(());
            }
        };
        // expfmt finds the metric by its label signature: order does not matter.
        let mut signature = labels.clone();
        signature.sort();
        let i = match f.by_labels.get(&signature) {
            Some(i) => *i,
            None => {
                f.metrics.push(Metric {
                    labels,
                    value: empty,
                    timestamp_ms: None,
                });
                f.by_labels.insert(signature, f.metrics.len() - 1);
                f.metrics.len() - 1
            }
        };
        let m = &mut f.metrics[i];
        if timestamp_ms.is_some() {
            m.timestamp_ms = timestamp_ms;
        }
        match &mut m.value {
            Value::Summary {
                count,
                sum,
                quantiles,
            } => match (part, bound) {
                (Part::Count, _) => *count = v as u64,
                (Part::Sum, _) => *sum = v,
                (Part::Plain, Some(q)) => quantiles.push((q, v)),
                (Part::Plain, None) => {}
            },
            Value::Histogram {
                count,
                sum,
                buckets,
            } => {
                let negative =
                    |what: &str| error(format!("negative {what} for histogram {}", quote(family)));
                match (part, bound) {
                    (Part::Count, _) if v < 0.0 => return negative("count"),
                    (Part::Count, _) => *count = v,
                    (Part::Sum, _) => *sum = v,
                    (Part::Plain, Some(_)) if v < 0.0 => return negative("bucket population"),
                    (Part::Plain, Some(ub)) => buckets.push((ub, v)),
                    (Part::Plain, None) => {}
                }
            }
            Value::Simple(_) => {}
        }
        Ok(())
    }
}

/// A quoted label value after its opening `"`, unescaped.
fn label_value(l: &mut Line) -> Step<String> {
    let mut out = vec![];
    loop {
        match l.bump()? {
            b'"' => break,
            b'\n' => {
                return error(format!(
                    "label value {} contains unescaped new-line",
                    quote(&String::from_utf8_lossy(&out))
                ));
            }
            b'\\' => match l.bump()? {
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                b'n' => out.push(b'\n'),
                c => return error(format!("invalid escape sequence '\\{}'", char::from(c))),
            },
            b => out.push(b),
        }
    }
    String::from_utf8(out).or_else(|e| {
        error(format!(
            "invalid label value {}",
            quote(&String::from_utf8_lossy(e.as_bytes()))
        ))
    })
}

/// Parses a body in the text format; families without samples are dropped.
pub fn parse(input: &[u8]) -> Result<Vec<MetricFamily>, ParseError> {
    let mut p = Parser::default();
    let mut rest = input;
    let mut line = 0;
    while !rest.is_empty() {
        line += 1;
        let (bytes, terminated, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], true, &rest[i + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        let mut l = Line {
            bytes,
            pos: 0,
            terminated,
        };
        if let Err(stop) = p.line(&mut l) {
            let msg = match stop {
                Stop::Error(m) => m,
                Stop::Eof => "unexpected end of input stream".into(),
            };
            return Err(ParseError { line, msg });
        }
        rest = next;
    }
    Ok(p.families
        .into_iter()
        .filter(|(_, f)| !f.metrics.is_empty())
        .map(|(name, f)| MetricFamily {
            name,
            help: f.help,
            kind: f.kind.unwrap_or(MetricType::Untyped),
            metrics: f.metrics,
        })
        .collect())
}

// ---------------------------------------------------------------------------
// Writing.

/// A float as Go's `strconv.FormatFloat(f, 'g', -1, 64)` writes it, with
/// expfmt's spellings of the special values.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1;
    let n = digits.len() as i32;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point >= n {
        format!("{digits}{}", "0".repeat((point - n) as usize))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{body}")
}

fn escape_label_value(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn write_sample(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    extra: Option<(&str, f64)>,
    v: f64,
    ts: Option<i64>,
) {
    out.push_str(name);
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    if let Some((k, x)) = extra {
        pairs.push(format!("{k}=\"{}\"", format_float(x)));
    }
    if !pairs.is_empty() {
        let _ = write!(out, "{{{}}}", pairs.join(","));
    }
    let _ = write!(out, " {}", format_float(v));
    if let Some(ts) = ts {
        let _ = write!(out, " {ts}");
    }
    out.push('\n');
}

/// Families in the text format, in the order given.
pub fn write(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    for f in families {
        if let Some(help) = &f.help {
            let help = help.replace('\\', r"\\").replace('\n', r"\n");
            let _ = writeln!(out, "# HELP {} {help}", f.name);
        }
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
        for m in &f.metrics {
            let ts = m.timestamp_ms;
            match &m.value {
                Value::Simple(v) => write_sample(&mut out, &f.name, &m.labels, None, *v, ts),
                Value::Summary {
                    count,
                    sum,
                    quantiles,
                } => {
                    for (q, v) in quantiles {
                        write_sample(&mut out, &f.name, &m.labels, Some(("quantile", *q)), *v, ts);
                    }
                    write_sample(
                        &mut out,
                        &format!("{}_sum", f.name),
                        &m.labels,
                        None,
                        *sum,
                        ts,
                    );
                    let count = *count as f64;
                    write_sample(
                        &mut out,
                        &format!("{}_count", f.name),
                        &m.labels,
                        None,
                        count,
                        ts,
                    );
                }
                Value::Histogram {
                    count,
                    sum,
                    buckets,
                } => {
                    let bucket = format!("{}_bucket", f.name);
                    for (ub, c) in buckets {
                        write_sample(&mut out, &bucket, &m.labels, Some(("le", *ub)), *c, ts);
                    }
                    if !buckets.iter().any(|(ub, _)| *ub == f64::INFINITY) {
                        let inf = Some(("le", f64::INFINITY));
                        write_sample(&mut out, &bucket, &m.labels, inf, *count, ts);
                    }
                    write_sample(
                        &mut out,
                        &format!("{}_sum", f.name),
                        &m.labels,
                        None,
                        *sum,
                        ts,
                    );
                    write_sample(
                        &mut out,
                        &format!("{}_count", f.name),
                        &m.labels,
                        None,
                        *count,
                        ts,
                    );
                }
            }
        }
    }
    out
}

/// A metric as Go's protobuf text shows it in the Pushgateway's errors.
pub(super) fn proto_text(m: &Metric, kind: MetricType) -> String {
    let mut s = String::new();
    for (k, v) in &m.labels {
        let _ = write!(s, "label:{{name:{} value:{}}} ", quote(k), quote(v));
    }
    let v = match &m.value {
        Value::Simple(v) => format_float(*v),
        Value::Summary { count, sum, .. } => {
            format!("sample_count:{count} sample_sum:{}", format_float(*sum))
        }
        Value::Histogram { count, sum, .. } => {
            format!(
                "sample_count:{} sample_sum:{}",
                format_float(*count),
                format_float(*sum)
            )
        }
    };
    let field = match kind {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Untyped => "untyped",
        MetricType::Summary => "summary",
        MetricType::Histogram | MetricType::GaugeHistogram => "histogram",
    };
    let _ = write!(s, "{field}:{{value:{v}}}");
    s
}

pub(super) fn type_name(kind: MetricType) -> &'static str {
    kind.proto_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn gauges_counters_summaries_and_histograms_parse() {
        let text = "# HELP hpa_tier_users People online.\n# TYPE hpa_tier_users gauge\n\
                    hpa_tier_users 742\n\
                    # A comment.\n\n\
                    # TYPE runs counter\nruns{outcome=\"ok\",cluster=\"prod\"} 3\n\
                    # TYPE took summary\ntook{quantile=\"0.5\"} 1.5\ntook_sum 4\ntook_count 2\n\
                    # TYPE size histogram\nsize_bucket{le=\"1\"} 1\nsize_bucket{le=\"+Inf\"} 3\nsize_sum 7.5\nsize_count 3\n\
                    untyped_thing{a=\"x \\\"q\\\" \\\\ \\n\"} -Inf 1700000000000\n";
        let fams = parse(text.as_bytes()).unwrap();
        let names: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["hpa_tier_users", "runs", "size", "took", "untyped_thing"]
        );
        assert_eq!(fams[0].help.as_deref(), Some("People online."));
        assert_eq!(fams[0].metrics[0].value, Value::Simple(742.0));
        assert_eq!(fams[1].kind, MetricType::Counter);
        assert_eq!(fams[1].metrics[0].label("cluster"), Some("prod"));
        assert_eq!(
            fams[2].metrics[0].value,
            Value::Histogram {
                count: 3.0,
                sum: 7.5,
                buckets: vec![(1.0, 1.0), (f64::INFINITY, 3.0)]
            }
        );
        assert_eq!(
            fams[3].metrics[0].value,
            Value::Summary {
                count: 2,
                sum: 4.0,
                quantiles: vec![(0.5, 1.5)]
            }
        );
        let odd = &fams[4].metrics[0];
        assert_eq!(odd.label("a"), Some("x \"q\" \\ \n"));
        assert_eq!(
            (odd.value.clone(), odd.timestamp_ms),
            (Value::Simple(f64::NEG_INFINITY), Some(1_700_000_000_000))
        );
    }

    #[test]
    fn malformed_bodies_fail_with_expfmts_messages() {
        let cases = [
            (
                "hpa_tier_users 742",
                "text format parsing error in line 1: unexpected end of input stream",
            ),
            (
                "a 1\r\n",
                "text format parsing error in line 1: expected float as value, got \"1\\r\"",
            ),
            (
                "a 1\nb one\n",
                "text format parsing error in line 2: expected float as value, got \"one\"",
            ),
            (
                "a 1 \n",
                "text format parsing error in line 1: expected integer as timestamp, got \"\"",
            ),
            (
                "a 1 12 x\n",
                "text format parsing error in line 1: spurious string after timestamp: \" x\"",
            ),
            (
                "a 1\n# TYPE a gauge\n",
                "text format parsing error in line 2: second TYPE line for metric name \"a\", or TYPE reported after samples",
            ),
            (
                "# TYPE a gauge\n# TYPE a gauge\n",
                "text format parsing error in line 2: second TYPE line for metric name \"a\", or TYPE reported after samples",
            ),
            (
                "# HELP a x\n# HELP a y\n",
                "text format parsing error in line 2: second HELP line for metric name \"a\"",
            ),
            (
                "# TYPE a meter\n",
                "text format parsing error in line 1: unknown metric type \"meter\"",
            ),
            (
                "a{b=\"1\",b=\"2\"} 1\n",
                "text format parsing error in line 1: duplicate label names for metric \"a\"",
            ),
            (
                "a{b=1} 1\n",
                "text format parsing error in line 1: expected '\"' at start of label value, found '1'",
            ),
            (
                "a{b:\"1\"} 1\n",
                "text format parsing error in line 1: expected '=' after label name, found ':'",
            ),
            (
                "a{b=\"\\t\"} 1\n",
                "text format parsing error in line 1: invalid escape sequence '\\t'",
            ),
            (
                "a{__name__=\"x\"} 1\n",
                "text format parsing error in line 1: label name \"__name__\" is reserved",
            ),
            (
                "1a 1\n",
                "text format parsing error in line 1: invalid metric name",
            ),
            (
                "a-b 1\n",
                "text format parsing error in line 1: expected float as value, got \"-b\"",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
                "text format parsing error in line 2: expected float as value for 'le' label, got \"x\"",
            ),
            (
                "a 0x1p3\n",
                "text format parsing error in line 1: expected float as value, got \"0x1p3\"",
            ),
            (
                "a 1e999\n",
                "text format parsing error in line 1: expected float as value, got \"1e999\"",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(err(text), want, "{text:?}");
        }
        // Blanks after the last newline are not a line; an empty body is no metrics.
        assert_eq!(parse(b"a 1\n  ").unwrap().len(), 1);
        assert!(parse(b"").unwrap().is_empty());
        assert!(parse(b"# TYPE lonely gauge\n").unwrap().is_empty());
    }

    #[test]
    fn floats_are_written_as_go_writes_them() {
        let cases = [
            (742.0, "742"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1.7e9, "1.7e+09"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float(f), want, "{f}");
        }
    }

    #[test]
    fn written_text_parses_back_to_the_same_families() {
        let text = "# HELP a Line one\\nline two \\\\ end\n# TYPE a gauge\na{x=\"q\\\"\"} 1.5e+10\n\
                    # TYPE h histogram\nh_bucket{le=\"0.25\"} 1\nh_sum 0.1\nh_count 2\n";
        let fams = parse(text.as_bytes()).unwrap();
        let written = write(&fams);
        assert!(written.contains("h_bucket{le=\"+Inf\"} 2\n"), "{written}");
        assert!(written.contains("a{x=\"q\\\"\"} 1.5e+10\n"), "{written}");
        let mut again = parse(written.as_bytes()).unwrap();
        if let Value::Histogram { buckets, .. } = &mut again[1].metrics[0].value {
            buckets.pop(); // the +Inf bucket the writer adds
        }
        assert_eq!(again, fams);
    }
}

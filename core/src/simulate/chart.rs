//! The `simulate --svg` chart: users and the serving capacity over the
//! replay, tier changes marked, schedule windows shaded up to their floor,
//! under-provisioned minutes in red, the tier capacities as gridlines, the
//! time axis in the config's zone. Hand-written SVG (a string, no I/O): the
//! chart needs lines, rectangles and text, not a plotting library.
//!
//! Size stays bounded whatever the span: the users line keeps, per pixel
//! column, the first, lowest, highest and last minute (so no peak is lost),
//! under-provisioned runs closer than a pixel merge, and change markers
//! closer than a few pixels in the same direction merge into one.

use std::fmt::Write;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

use super::score::{Summary, minute_users, zone_name};
use super::timeline::{Span, Step, Timeline};
use super::trace::Trace;
use crate::tiers::TierTable;

/// A schedule window to shade: active on `[start, end)` with a floor of `capacity`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
    pub name: String,
    pub capacity: u32,
}

/// Everything the chart shows.
#[derive(Clone, Copy, Debug)]
pub struct Chart<'a> {
    /// The first line, e.g. the config and trace file names.
    pub title: &'a str,
    /// Time labels are local to this zone.
    pub tz: &'a TimeZone,
    pub trace: &'a Trace,
    pub span: Span,
    pub tiers: &'a TierTable,
    /// The tiers the policy applied: each change gets a marker.
    pub applied: &'a Timeline,
    /// The tiers that served users: the capacity line, and what is under.
    pub served: &'a Timeline,
    pub windows: &'a [Window],
    /// Shown as a line under the title when given.
    pub summary: Option<&'a Summary>,
}

const WIDTH: f64 = 1400.0;
const HEIGHT: f64 = 640.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = WIDTH - 28.0;
const TOP: f64 = 96.0;
const BOTTOM: f64 = HEIGHT - 52.0;

const USERS: &str = "#1f5fbf";
const CAPACITY: &str = "#1b7a3a";
const WINDOW: &str = "#8fb8ef";
const UNDER: &str = "#d62828";
const DOWN: &str = "#e07b00";

/// Maps times and users to the plot area.
struct Frame {
    start: Timestamp,
    seconds: f64,
    ymax: f64,
}

impl Frame {
    fn x(&self, t: Timestamp) -> f64 {
        let s = t.duration_since(self.start).as_secs_f64();
        LEFT + (s / self.seconds).clamp(0.0, 1.0) * (RIGHT - LEFT)
    }

    fn y(&self, users: u32) -> f64 {
        BOTTOM - (f64::from(users) / self.ymax).min(1.02) * (BOTTOM - TOP)
    }
}

/// Escapes text for SVG content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A round axis top above `raw`: steps of half a power of ten.
fn nice_ceiling(raw: f64) -> f64 {
    let raw = raw.max(10.0);
    let step = 10f64.powf(raw.log10().floor()) / 2.0;
    (raw / step).ceil() * step
}

impl Chart<'_> {
    /// The chart as a standalone SVG document.
    pub fn svg(&self) -> String {
        let users = minute_users(self.trace, &self.span);
        let peak_users = users.iter().map(|&(_, u)| u).max().unwrap_or(0);
        let served_top = std::iter::once(self.served.capacity_at(self.span.start))
            .chain(
                self.served
                    .steps()
                    .filter(|s| self.in_span(s.at))
                    .map(|s| s.to),
            )
            .max()
            .unwrap_or(0);
        let window_top = self.windows.iter().map(|w| w.capacity).max().unwrap_or(0);
        let frame = Frame {
            start: self.span.start,
            seconds: self
                .span
                .end
                .duration_since(self.span.start)
                .as_secs_f64()
                .max(1.0),
            ymax: nice_ceiling(f64::from(peak_users.max(served_top).max(window_top)) * 1.08),
        };
        let mut svg = String::with_capacity(64 * 1024);
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n\
             <title>{}</title>\n\
             <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n\
             <defs><clipPath id=\"plot-area\"><rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\"/></clipPath></defs>\n",
            esc(self.title),
            RIGHT - LEFT,
            BOTTOM - TOP + 2.0,
        );
        self.heading(&mut svg);
        self.legend(&mut svg);
        self.y_axis(&mut svg, &frame);
        self.x_axis(&mut svg, &frame);
        self.windows_layer(&mut svg, &frame);
        let under_users = self.under_layer(&mut svg, &frame, &users);
        self.capacity_line(&mut svg, &frame);
        let _ = writeln!(
            svg,
            "<path id=\"users\" d=\"{}\" fill=\"none\" stroke=\"{USERS}\" stroke-width=\"1.3\" \
             stroke-linejoin=\"round\" clip-path=\"url(#plot-area)\"/>\n\
             <path id=\"under-users\" d=\"{under_users}\" fill=\"none\" stroke=\"{UNDER}\" stroke-width=\"2.2\" \
             stroke-linejoin=\"round\" clip-path=\"url(#plot-area)\"/>",
            path(&frame, &decimate(&frame, &users)),
        );
        self.change_markers(&mut svg, &frame);
        let _ = writeln!(
            svg,
            "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#888\"/>\n</svg>",
            RIGHT - LEFT,
            BOTTOM - TOP
        );
        svg
    }

    fn in_span(&self, t: Timestamp) -> bool {
        t >= self.span.start && t < self.span.end
    }

    fn local(&self, t: Timestamp, format: &str) -> String {
        t.to_zoned(self.tz.clone()).strftime(format).to_string()
    }

    fn heading(&self, svg: &mut String) {
        let zone = zone_name(self.tz, self.span.start);
        let _ = writeln!(
            svg,
            "<text id=\"heading\" x=\"{LEFT}\" y=\"26\" font-size=\"17\" font-weight=\"bold\">{}</text>\n\
             <text x=\"{LEFT}\" y=\"46\" fill=\"#444\">{} → {} ({})</text>",
            esc(self.title),
            esc(&self.local(self.span.start, "%a %Y-%m-%d %H:%M")),
            esc(&self.local(self.span.end, "%a %Y-%m-%d %H:%M")),
            esc(&zone),
        );
        if let Some(s) = self.summary {
            let p = &s.policy;
            let line = format!(
                "policy: {} under-provisioned minute{} ({:.2}%), {:.0} replica-hours = {:.2}× oracle, \
                 {} tier change{}, {} flap{} · static tier {}: {:.2}× oracle",
                p.under_minutes,
                plural(p.under_minutes),
                p.tau_under,
                p.replica_hours,
                p.cost_vs_oracle,
                p.changes,
                plural(p.changes.into()),
                p.flaps,
                plural(p.flaps.into()),
                s.static_capacity,
                s.static_tier.cost_vs_oracle,
            );
            let _ = writeln!(
                svg,
                "<text id=\"scores\" x=\"{LEFT}\" y=\"64\" fill=\"#444\">{}</text>",
                esc(&line)
            );
        }
    }

    fn legend(&self, svg: &mut String) {
        type Mark = fn(f64, f64) -> String;
        let items: [(Mark, &str); 5] = [
            (
                |x, y| {
                    format!(
                        "<line x1=\"{x}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{USERS}\" stroke-width=\"1.5\"/>",
                        x + 18.0
                    )
                },
                "users",
            ),
            (
                |x, y| {
                    format!(
                        "<path d=\"M{x} {} H{} V{} H{}\" fill=\"none\" stroke=\"{CAPACITY}\" stroke-width=\"2\"/>",
                        y + 4.0,
                        x + 8.0,
                        y - 4.0,
                        x + 18.0
                    )
                },
                "serving tier capacity",
            ),
            (
                |x, y| format!("{}{}", up_marker(x + 4.0, y), down_marker(x + 14.0, y)),
                "tier change applied (up / down)",
            ),
            (
                |x, y| swatch(x, y, WINDOW, 0.45),
                "schedule window (up to its floor)",
            ),
            (
                |x, y| swatch(x, y, UNDER, 0.3),
                "under-provisioned (users > capacity)",
            ),
        ];
        let (mut x, y) = (LEFT, 84.0);
        svg.push_str("<g id=\"legend\">\n");
        for (mark, label) in items {
            let _ = writeln!(
                svg,
                "{}<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                mark(x, y),
                x + 24.0,
                y + 4.0,
                esc(label)
            );
            x += 24.0 + 7.0 * label.chars().count() as f64 + 22.0;
        }
        svg.push_str("</g>\n");
    }

    /// Gridlines at the tier capacities that fit, labelled in users.
    fn y_axis(&self, svg: &mut String, f: &Frame) {
        svg.push_str("<g id=\"y-axis\">\n");
        let _ = writeln!(
            svg,
            "<text x=\"18\" y=\"{:.1}\" transform=\"rotate(-90 18 {:.1})\" text-anchor=\"middle\" fill=\"#444\">users · tier capacities</text>",
            (TOP + BOTTOM) / 2.0,
            (TOP + BOTTOM) / 2.0
        );
        let mut last_label = f64::INFINITY;
        let levels = std::iter::once(0).chain(
            self.tiers
                .capacities()
                .into_iter()
                .filter(|&c| f64::from(c) <= f.ymax),
        );
        for c in levels {
            let y = f.y(c);
            let _ = writeln!(
                svg,
                "<line class=\"tier\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{RIGHT}\" y2=\"{y:.1}\" stroke=\"#c8c8c8\"{}/>",
                if c == 0 {
                    ""
                } else {
                    " stroke-dasharray=\"4 4\""
                }
            );
            if last_label - y >= 12.0 {
                let _ = writeln!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{c}</text>",
                    LEFT - 6.0,
                    y + 4.0
                );
                last_label = y;
            }
        }
        svg.push_str("</g>\n");
    }

    fn x_axis(&self, svg: &mut String, f: &Frame) {
        svg.push_str("<g id=\"x-axis\">\n");
        let mut last_label = f64::NEG_INFINITY;
        for tick in time_ticks(self.span, self.tz) {
            let x = f.x(tick.at);
            let (len, stroke) = if tick.label.is_some() {
                (6.0, "#888")
            } else {
                (4.0, "#bbb")
            };
            if tick.label.is_some() {
                let _ = writeln!(
                    svg,
                    "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{BOTTOM}\" stroke=\"#eee\"/>"
                );
            }
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{BOTTOM}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\"/>",
                BOTTOM + len
            );
            if let Some(label) = tick.label {
                let half = 3.6 * label.chars().count() as f64;
                if x - half >= last_label + 8.0 && x + half <= WIDTH {
                    let _ = writeln!(
                        svg,
                        "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                        BOTTOM + 20.0,
                        esc(&label)
                    );
                    last_label = x + half;
                }
            }
        }
        let _ = writeln!(
            svg,
            "<text x=\"{RIGHT}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#444\">time ({})</text>\n</g>",
            BOTTOM + 42.0,
            esc(&zone_name(self.tz, self.span.start))
        );
    }

    /// Each window a band from the axis up to its floor, named when wide enough.
    fn windows_layer(&self, svg: &mut String, f: &Frame) {
        svg.push_str("<g id=\"windows\" clip-path=\"url(#plot-area)\">\n");
        for w in self
            .windows
            .iter()
            .filter(|w| w.end > self.span.start && w.start < self.span.end)
        {
            let (x0, x1, y) = (f.x(w.start), f.x(w.end), f.y(w.capacity));
            let _ = writeln!(
                svg,
                "<rect class=\"window\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{WINDOW}\" fill-opacity=\"0.35\">\
                 <title>{} · floor {} · {} – {}</title></rect>",
                (x1 - x0).max(1.0),
                BOTTOM - y,
                esc(&w.name),
                w.capacity,
                esc(&self.local(w.start, "%a %m-%d %H:%M")),
                esc(&self.local(w.end, "%a %m-%d %H:%M")),
            );
            if x1 - x0 >= 7.0 * w.name.chars().count() as f64 {
                let _ = writeln!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#2a5490\">{}</text>",
                    x0 + 3.0,
                    y + 13.0,
                    esc(&w.name)
                );
            }
        }
        svg.push_str("</g>\n");
    }

    /// Runs of minutes with users above the serving capacity: a pale band
    /// over the plot, a solid strip on the axis, and the users line in red.
    /// Runs less than a pixel apart merge.
    fn under_layer(&self, svg: &mut String, f: &Frame, users: &[(Timestamp, u32)]) -> String {
        let minute = SignedDuration::from_mins(1);
        let mut runs: Vec<(usize, usize)> = vec![];
        for (i, &(t, u)) in users.iter().enumerate() {
            if u <= self.served.capacity_at(t) {
                continue;
            }
            match runs.last_mut() {
                Some(last) if f.x(t) - f.x(users[last.1].0 + minute) < 1.0 => last.1 = i,
                _ => runs.push((i, i)),
            }
        }
        let (mut bands, mut strips, mut line) = (String::new(), String::new(), String::new());
        for &(first, last) in &runs {
            let x0 = f.x(users[first].0);
            let w = (f.x(users[last].0 + minute) - x0).max(3.0);
            let _ = write!(bands, "M{x0:.1} {TOP}h{w:.1}V{BOTTOM}h-{w:.1}z");
            let _ = write!(
                strips,
                "M{x0:.1} {:.1}h{w:.1}V{BOTTOM}h-{w:.1}z",
                BOTTOM - 7.0
            );
            // From the minute before to the one after, so a one-minute run is a visible peak.
            let around = &users[first.saturating_sub(1)..(last + 2).min(users.len())];
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&path(f, &decimate(f, around)));
        }
        let _ = writeln!(
            svg,
            "<g id=\"under\" data-runs=\"{}\"><path d=\"{bands}\" fill=\"{UNDER}\" fill-opacity=\"0.2\"/>\
             <path d=\"{strips}\" fill=\"{UNDER}\"/>",
            runs.len()
        );
        svg.push_str("</g>\n");
        line
    }

    /// The serving tier as a step line; many steps within one pixel column
    /// keep the first, lowest, highest and last, like the users line.
    fn capacity_line(&self, svg: &mut String, f: &Frame) {
        let steps: Vec<(Timestamp, u32)> = self
            .served
            .steps()
            .filter(|s| self.in_span(s.at) && s.at > self.span.start)
            .map(|s| (s.at, s.to))
            .collect();
        let mut d = format!(
            "M{:.1} {:.1}",
            f.x(self.span.start),
            f.y(self.served.capacity_at(self.span.start))
        );
        for (x, to) in decimate(f, &steps) {
            let _ = write!(d, " H{x:.1} V{:.1}", f.y(to));
        }
        let _ = write!(d, " H{:.1}", f.x(self.span.end));
        let _ = writeln!(
            svg,
            "<path id=\"capacity\" d=\"{d}\" fill=\"none\" stroke=\"{CAPACITY}\" stroke-width=\"2\" clip-path=\"url(#plot-area)\"/>"
        );
    }

    /// A triangle per applied change at its new tier. Changes closer than
    /// 4 px share: one up marker at the highest tier risen to, one down
    /// marker at the lowest fallen to, and a tooltip saying how many.
    fn change_markers(&self, svg: &mut String, f: &Frame) {
        let mut groups: Vec<(f64, Vec<Step>)> = vec![];
        for s in self.applied.steps().filter(|s| self.in_span(s.at)) {
            let x = f.x(s.at);
            match groups.last_mut() {
                Some((x0, steps)) if x - *x0 < 4.0 => steps.push(s),
                _ => groups.push((x, vec![s])),
            }
        }
        svg.push_str("<g id=\"changes\">\n");
        for (x, steps) in groups {
            let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
                continue;
            };
            let when = |s: &Step| self.local(s.at, "%a %m-%d %H:%M");
            let title = if steps.len() == 1 {
                format!("{} {} → {}", when(first), first.from, first.to)
            } else {
                format!(
                    "{} changes {} – {}: {} → … → {}",
                    steps.len(),
                    when(first),
                    when(last),
                    first.from,
                    last.to
                )
            };
            let highest_up = steps.iter().filter(|s| s.to > s.from).map(|s| s.to).max();
            let lowest_down = steps.iter().filter(|s| s.to < s.from).map(|s| s.to).min();
            let marks = [
                highest_up.map(|to| up_marker(x, f.y(to) - 7.0)),
                lowest_down.map(|to| down_marker(x, f.y(to) - 7.0)),
            ];
            for mark in marks.into_iter().flatten() {
                let _ = writeln!(
                    svg,
                    "<g class=\"change\">{mark}<title>{}</title></g>",
                    esc(&title)
                );
            }
        }
        svg.push_str("</g>\n");
    }
}

fn swatch(x: f64, y: f64, colour: &str, opacity: f64) -> String {
    format!(
        "<rect x=\"{x}\" y=\"{}\" width=\"18\" height=\"10\" fill=\"{colour}\" fill-opacity=\"{opacity}\"/>",
        y - 5.0
    )
}

fn up_marker(x: f64, y: f64) -> String {
    format!(
        "<path d=\"M{:.1} {:.1} l-4.5 8 h9 z\" fill=\"{CAPACITY}\"/>",
        x,
        y - 4.0
    )
}

fn down_marker(x: f64, y: f64) -> String {
    format!(
        "<path d=\"M{:.1} {:.1} l-4.5 -8 h9 z\" fill=\"{DOWN}\"/>",
        x,
        y + 4.0
    )
}

/// Per pixel column, the first, lowest, highest and last minute in time
/// order: the line keeps every peak and trough at a bounded size.
fn decimate(f: &Frame, users: &[(Timestamp, u32)]) -> Vec<(f64, u32)> {
    let mut points: Vec<(f64, u32)> = Vec::with_capacity(4 * (RIGHT - LEFT) as usize);
    let mut column: Vec<(f64, u32)> = vec![];
    let flush = |column: &mut Vec<(f64, u32)>, points: &mut Vec<(f64, u32)>| {
        if column.is_empty() {
            return;
        }
        let lowest = (0..column.len()).min_by_key(|&i| column[i].1).unwrap_or(0);
        let highest = (0..column.len()).max_by_key(|&i| column[i].1).unwrap_or(0);
        let mut keep = vec![0, lowest, highest, column.len() - 1];
        keep.sort_unstable();
        keep.dedup();
        points.extend(keep.into_iter().map(|i| column[i]));
        column.clear();
    };
    for &(t, u) in users {
        let x = f.x(t);
        if column.first().is_some_and(|c| x.floor() != c.0.floor()) {
            flush(&mut column, &mut points);
        }
        column.push((x, u));
    }
    flush(&mut column, &mut points);
    points
}

/// Path data through the points.
fn path(f: &Frame, points: &[(f64, u32)]) -> String {
    let mut d = String::with_capacity(points.len() * 14);
    for (i, &(x, u)) in points.iter().enumerate() {
        let _ = write!(d, "{}{x:.1} {:.1}", if i == 0 { "M" } else { " L" }, f.y(u));
    }
    d
}

/// A time-axis tick; labelled ticks also get a gridline.
struct Tick {
    at: Timestamp,
    label: Option<String>,
}

/// Ticks by span: every 1–12 hours up to a day and a half, local midnights
/// up to 16 days, else midnights with Mondays (or, past 20 weeks, the first
/// of each month) labelled.
fn time_ticks(span: Span, tz: &TimeZone) -> Vec<Tick> {
    let hours = span.end.duration_since(span.start).as_hours();
    let in_span = |z: &Zoned| z.timestamp() >= span.start && z.timestamp() <= span.end;
    if hours <= 36 {
        let every = [1, 2, 3, 6, 12]
            .into_iter()
            .find(|h| hours / h <= 14)
            .unwrap_or(12);
        let first = span.start.to_zoned(tz.clone());
        let Ok(mut at) = first
            .datetime()
            .date()
            .at(first.hour(), 0, 0, 0)
            .to_zoned(tz.clone())
        else {
            return vec![];
        };
        let mut ticks = vec![];
        while at.timestamp() <= span.end {
            if in_span(&at) && at.minute() == 0 && i64::from(at.hour()) % every == 0 {
                let format = if at.hour() == 0 { "%a %m-%d" } else { "%H:%M" };
                ticks.push(Tick {
                    at: at.timestamp(),
                    label: Some(at.strftime(format).to_string()),
                });
            }
            let Ok(next) = at.checked_add(SignedDuration::from_hours(1)) else {
                break;
            };
            at = next;
        }
        return ticks;
    }
    let days = hours / 24;
    let start = span.start.to_zoned(tz.clone()).date();
    let end = span.end.to_zoned(tz.clone()).date();
    let mut ticks = vec![];
    let mut date: Date = start;
    while date <= end {
        if let Ok(z) = date.to_zoned(tz.clone())
            && in_span(&z)
        {
            let labelled = match days {
                ..=16 => true,
                17..=140 => date.weekday() == jiff::civil::Weekday::Monday,
                _ => date.day() == 1,
            };
            let format = if days > 140 { "%b %Y" } else { "%a %m-%d" };
            if labelled || days <= 140 {
                ticks.push(Tick {
                    at: z.timestamp(),
                    label: labelled.then(|| z.strftime(format).to_string()),
                });
            }
        }
        // Up to about a week, quarter days help read the hour of a peak.
        if days <= 8 {
            for hour in [6, 12, 18] {
                if let Ok(z) = date.at(hour, 0, 0, 0).to_zoned(tz.clone())
                    && in_span(&z)
                {
                    ticks.push(Tick {
                        at: z.timestamp(),
                        label: None,
                    });
                }
            }
        }
        let Ok(next) = date.tomorrow() else { break };
        date = next;
    }
    ticks.sort_by_key(|t| t.at);
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::score::Replay;
    use crate::tiers::fixtures::table;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cst() -> TimeZone {
        TimeZone::fixed(jiff::tz::offset(8))
    }

    /// Owned inputs of a chart, so tests can vary one thing.
    struct Fixture {
        trace: Trace,
        span: Span,
        applied: Timeline,
        served: Timeline,
        windows: Vec<Window>,
        tiers: TierTable,
        tz: TimeZone,
        title: String,
    }

    impl Fixture {
        fn new(trace: Trace, applied: Timeline) -> Fixture {
            let span = Span::of(&trace, None).unwrap();
            let served = applied.effective(SignedDuration::from_mins(2));
            Fixture {
                trace,
                span,
                applied,
                served,
                windows: vec![],
                tiers: table(),
                tz: cst(),
                title: "simulate".into(),
            }
        }

        fn summary(&self) -> Summary {
            Summary::of(&Replay {
                trace: &self.trace,
                span: self.span,
                tiers: &self.tiers,
                applied: &self.applied,
                served: &self.served,
                baseline_headroom_percent: 0,
            })
        }

        fn svg(&self, summary: Option<&Summary>) -> String {
            Chart {
                title: &self.title,
                tz: &self.tz,
                trace: &self.trace,
                span: self.span,
                tiers: &self.tiers,
                applied: &self.applied,
                served: &self.served,
                windows: &self.windows,
                summary,
            }
            .svg()
        }
    }

    /// Two hours: 500 users, a climb to 2500 at 10:30–10:40, back by 11:00.
    /// The policy follows 15 minutes late, so it is short on the climb.
    fn two_hours() -> Fixture {
        let trace = Trace::from_samples(vec![
            (ts("2026-03-05T10:00:00+08:00"), 500),
            (ts("2026-03-05T10:30:00+08:00"), 500),
            (ts("2026-03-05T10:40:00+08:00"), 2500),
            (ts("2026-03-05T10:50:00+08:00"), 2500),
            (ts("2026-03-05T11:00:00+08:00"), 500),
            (ts("2026-03-05T12:00:00+08:00"), 500),
        ])
        .unwrap();
        let applied = Timeline::from_decisions(
            600,
            [
                (ts("2026-03-05T10:45:00+08:00"), 3000),
                (ts("2026-03-05T11:30:00+08:00"), 600),
            ],
        );
        let mut f = Fixture::new(trace, applied);
        f.windows = vec![Window {
            start: ts("2026-03-05T11:15:00+08:00"),
            end: ts("2026-03-05T11:45:00+08:00"),
            name: "launch".into(),
            capacity: 2000,
        }];
        f
    }

    fn by_id<'a>(doc: &'a roxmltree::Document, id: &str) -> roxmltree::Node<'a, 'a> {
        doc.descendants()
            .find(|n| n.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no element with id {id}"))
    }

    fn texts<'a>(node: roxmltree::Node<'a, 'a>) -> Vec<&'a str> {
        node.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect()
    }

    #[test]
    fn the_chart_is_well_formed_svg_with_every_series() {
        let f = two_hours();
        let summary = f.summary();
        let svg = f.svg(Some(&summary));
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        let root = doc.root_element();
        assert!(root.has_tag_name(("http://www.w3.org/2000/svg", "svg")));
        for id in [
            "heading",
            "scores",
            "legend",
            "y-axis",
            "x-axis",
            "windows",
            "under",
            "capacity",
            "users",
            "under-users",
            "changes",
        ] {
            by_id(&doc, id);
        }
        let users = by_id(&doc, "users").attribute("d").unwrap();
        assert!(
            users.starts_with('M') && users.matches('L').count() >= 100,
            "{users}"
        );
        let capacity = by_id(&doc, "capacity").attribute("d").unwrap();
        assert_eq!(
            capacity.matches('H').count(),
            3,
            "two steps and the end: {capacity}"
        );
        let changes = by_id(&doc, "changes")
            .children()
            .filter(|n| n.has_attribute("class"))
            .count();
        assert_eq!(changes, 2);
        let windows = by_id(&doc, "windows");
        assert_eq!(
            windows
                .children()
                .filter(|n| n.attribute("class") == Some("window"))
                .count(),
            1
        );
        assert!(texts(windows).contains(&"launch"), "a wide window is named");
        let scores = by_id(&doc, "scores").text().unwrap();
        assert!(
            scores.contains(&format!(
                "{} under-provisioned minutes",
                summary.policy.under_minutes
            )),
            "{scores}"
        );
    }

    #[test]
    fn under_provisioned_minutes_are_red_bands_where_users_exceed_capacity() {
        let f = two_hours();
        let svg = f.svg(None);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        // Users pass 600 at 10:31 and capacity 3000 serves from 10:47: one run.
        let under = by_id(&doc, "under");
        assert_eq!(under.attribute("data-runs"), Some("1"));
        let band = under
            .children()
            .find(|n| n.has_tag_name("path"))
            .unwrap()
            .attribute("d")
            .unwrap();
        let (x, rest) = band.trim_start_matches('M').split_once(' ').unwrap();
        let w = rest.split_once('h').unwrap().1.split_once('V').unwrap().0;
        let (x, w): (f64, f64) = (x.parse().unwrap(), w.parse().unwrap());
        let minute = (RIGHT - LEFT) / 120.0;
        assert!(
            (x - (LEFT + 31.0 * minute)).abs() < 0.1,
            "starts at 10:31: {band}"
        );
        assert!((w - 16.0 * minute).abs() < 0.1, "10:31 to 10:47: {band}");
        assert!(
            by_id(&doc, "under-users")
                .attribute("d")
                .unwrap()
                .starts_with('M')
        );
    }

    #[test]
    fn no_under_provisioning_draws_no_band() {
        let mut f = two_hours();
        f.applied = Timeline::from_decisions(3000, []);
        f.served = f.applied.clone();
        let doc_text = f.svg(None);
        let doc = roxmltree::Document::parse(&doc_text).unwrap();
        let under = by_id(&doc, "under");
        assert_eq!(under.attribute("data-runs"), Some("0"));
        assert!(
            under
                .children()
                .filter_map(|n| n.attribute("d"))
                .all(str::is_empty)
        );
        assert_eq!(by_id(&doc, "under-users").attribute("d"), Some(""));
    }

    #[test]
    fn text_is_escaped() {
        let mut f = two_hours();
        f.title = "a <script>alert(\"x\")</script> & 'b'\u{7}".into();
        f.windows[0].name = "peak<&>\"".into();
        let svg = f.svg(None);
        assert!(
            !svg.contains("<script>") && !svg.contains("peak<&>"),
            "{svg}"
        );
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let heading = by_id(&doc, "heading").text().unwrap();
        assert_eq!(heading, "a <script>alert(\"x\")</script> & 'b'\u{fffd}");
        let tooltip = doc
            .descendants()
            .filter(|n| n.has_tag_name("title"))
            .filter_map(|n| n.text())
            .find(|t| t.starts_with("peak"))
            .unwrap();
        assert!(
            tooltip.starts_with("peak<&>\" · floor 2000 · Thu 03-05 11:15"),
            "{tooltip}"
        );
    }

    #[test]
    fn the_y_axis_labels_the_tiers_that_fit() {
        let svg = two_hours().svg(None);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let labels = texts(by_id(&doc, "y-axis"));
        for tier in ["0", "600", "1000", "2000", "3000"] {
            assert!(labels.contains(&tier), "{tier} in {labels:?}");
        }
        assert!(
            !labels.contains(&"5000"),
            "peak 3000 × 1.08 leaves 5000 off: {labels:?}"
        );
    }

    fn labels(span: Span) -> Vec<String> {
        time_ticks(span, &cst())
            .into_iter()
            .filter_map(|t| t.label)
            .collect()
    }

    #[test]
    fn time_ticks_suit_the_span() {
        let span = |start: &str, end: &str| Span {
            start: ts(start),
            end: ts(end),
        };
        let day = labels(span(
            "2026-03-05T00:00:00+08:00",
            "2026-03-06T00:00:00+08:00",
        ));
        assert_eq!(day[..3], ["Thu 03-05", "02:00", "04:00"], "{day:?}");
        assert_eq!(day.last().unwrap(), "Fri 03-06");
        let hours = labels(span(
            "2026-03-05T10:20:00+08:00",
            "2026-03-05T13:00:00+08:00",
        ));
        assert_eq!(hours, ["11:00", "12:00", "13:00"]);
        let week = labels(span(
            "2026-03-02T00:00:00+08:00",
            "2026-03-09T00:00:00+08:00",
        ));
        assert_eq!(week.len(), 8);
        assert_eq!(week[1], "Tue 03-03");
        let week_ticks = time_ticks(
            span("2026-03-02T00:00:00+08:00", "2026-03-09T00:00:00+08:00"),
            &cst(),
        );
        assert_eq!(
            week_ticks.len(),
            8 + 7 * 3,
            "quarter days between midnights"
        );
        let month = labels(span(
            "2026-02-02T00:00:00+08:00",
            "2026-03-09T00:00:00+08:00",
        ));
        assert_eq!(
            month,
            [
                "Mon 02-02",
                "Mon 02-09",
                "Mon 02-16",
                "Mon 02-23",
                "Mon 03-02",
                "Mon 03-09"
            ]
        );
        let year = labels(span(
            "2026-01-01T00:00:00+08:00",
            "2026-12-31T00:00:00+08:00",
        ));
        assert_eq!(year.len(), 12);
        assert_eq!(year[0], "Jan 2026");
    }

    #[test]
    fn local_midnights_follow_daylight_saving() {
        let ny = TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
        let span = Span {
            start: ts("2026-03-07T05:00:00Z"),
            end: ts("2026-03-10T04:00:00Z"),
        };
        let midnights: Vec<Timestamp> = time_ticks(span, &ny)
            .into_iter()
            .filter(|t| t.label.is_some())
            .map(|t| t.at)
            .collect();
        assert_eq!(
            midnights,
            [
                ts("2026-03-07T05:00:00Z"),
                ts("2026-03-08T05:00:00Z"),
                ts("2026-03-09T04:00:00Z"),
                ts("2026-03-10T04:00:00Z")
            ]
        );
    }

    #[test]
    fn the_users_line_keeps_the_peak_of_a_decimated_column() {
        // Five weeks of minutes, flat 1000 but one minute at 4321.
        let start = ts("2026-02-02T00:00:00Z");
        let mut samples: Vec<(Timestamp, u32)> = (0..35 * 1440)
            .map(|m| (start + SignedDuration::from_mins(m), 1000))
            .collect();
        samples[20_000].1 = 4321;
        let f = Fixture::new(
            Trace::from_samples(samples).unwrap(),
            Timeline::from_decisions(5000, []),
        );
        let svg = f.svg(None);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let d = by_id(&doc, "users").attribute("d").unwrap();
        let ys: Vec<f64> = d
            .split(['M', 'L'])
            .filter_map(|p| p.split_whitespace().nth(1))
            .map(|y| y.parse().unwrap())
            .collect();
        assert!(
            ys.len() <= 4 * (RIGHT - LEFT) as usize + 4,
            "{} points",
            ys.len()
        );
        let frame_peak = BOTTOM - 4321.0 / nice_ceiling(5000.0 * 1.08) * (BOTTOM - TOP);
        let highest = ys.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(
            (highest - frame_peak).abs() < 0.06,
            "peak at y {frame_peak}, line tops at {highest}"
        );
    }

    #[test]
    fn five_weeks_of_minutes_and_a_flapping_policy_stay_well_under_a_megabyte() {
        let start = ts("2026-02-02T00:00:00Z");
        let samples: Vec<(Timestamp, u32)> = (0..35 * 1440)
            .map(|m| {
                (
                    start + SignedDuration::from_mins(m),
                    400 + ((m * 7919) % 2600) as u32,
                )
            })
            .collect();
        // A change every 5 minutes, alternating: the worst a policy could do.
        let decisions = (0..35 * 288).map(|k| {
            (
                start + SignedDuration::from_mins(5 * k),
                if k % 2 == 0 { 3000 } else { 1000 },
            )
        });
        let mut f = Fixture::new(
            Trace::from_samples(samples).unwrap(),
            Timeline::from_decisions(600, decisions),
        );
        f.windows = (0..35)
            .map(|d| Window {
                start: start + SignedDuration::from_hours(24 * d + 11),
                end: start + SignedDuration::from_hours(24 * d + 14),
                name: "evening-peak".into(),
                capacity: 3000,
            })
            .collect();
        let summary = f.summary();
        let svg = f.svg(Some(&summary));
        assert!(svg.len() < 500_000, "{} bytes", svg.len());
        roxmltree::Document::parse(&svg).unwrap();
    }
}

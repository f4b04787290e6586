//! The chart, written by hand: items waiting (top) and replicas (bottom) over time, one
//! line per policy, with axes, grid, labels and a legend.

use std::fmt::Write as _;

use crate::engine::{Run, Sample};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 640.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 55.0;
const GAP: f64 = 60.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// A plotting area and the data ranges it maps.
struct Panel {
    top: f64,
    height: f64,
    max_seconds: f64,
    max_value: f64,
}

impl Panel {
    fn x(&self, seconds: f64) -> f64 {
        LEFT + seconds / self.max_seconds * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        self.top + self.height - value / self.max_value * self.height
    }
}

pub fn chart(title: &str, runs: &[Run]) -> String {
    let max_seconds = runs
        .iter()
        .filter_map(|run| run.samples.last())
        .map(|sample| sample.at_ms as f64 / 1000.0)
        .fold(1.0, f64::max);
    // A finer rounding than the grid's, so a 625 s run ends the axis at 700 s, not 800 s.
    let max_seconds =
        (max_seconds / nice_step(max_seconds / 2.0)).ceil() * nice_step(max_seconds / 2.0);
    let peak = |value: fn(&Sample) -> u64| {
        runs.iter()
            .flat_map(|run| &run.samples)
            .map(value)
            .max()
            .unwrap_or(0)
            .max(1) as f64
    };
    let panel_height = (HEIGHT - TOP - BOTTOM - GAP) / 2.0;
    let backlog = Panel {
        top: TOP,
        height: panel_height,
        max_seconds,
        max_value: nice_ceiling(peak(|s| s.waiting)),
    };
    let replicas = Panel {
        top: TOP + panel_height + GAP,
        height: panel_height,
        max_seconds,
        max_value: nice_ceiling(peak(|s| u64::from(s.replicas))),
    };

    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="28" font-size="18" font-weight="bold">{}</text>
"##,
        escape(title)
    );
    axes(&mut svg, &backlog, "items waiting");
    axes(&mut svg, &replicas, "replicas");
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (s)</text>"#,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        HEIGHT - 12.0
    );
    for (index, run) in runs.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        line(&mut svg, &backlog, run, color, false, |s| s.waiting as f64);
        line(&mut svg, &replicas, run, color, true, |s| {
            f64::from(s.replicas)
        });
        let x = WIDTH - RIGHT - 150.0 * (runs.len() - index) as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.1}" y1="46" x2="{:.1}" y2="46" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="50">{}</text>"#,
            x + 24.0,
            x + 30.0,
            escape(&run.policy)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn axes(svg: &mut String, panel: &Panel, label: &str) {
    let bottom = panel.top + panel.height;
    let right = WIDTH - RIGHT;
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        panel.top,
        right - LEFT,
        panel.height
    );
    let value_step = nice_step(panel.max_value);
    let mut value = 0.0;
    while value <= panel.max_value + 1e-9 {
        let y = panel.y(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{value}</text>"##,
            LEFT - 6.0,
            y + 4.0
        );
        value += value_step;
    }
    let time_step = nice_step(panel.max_seconds);
    let mut seconds = 0.0;
    while seconds <= panel.max_seconds + 1e-9 {
        let x = panel.x(seconds);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="#444"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{seconds}</text>"##,
            bottom + 5.0,
            bottom + 18.0
        );
        seconds += time_step;
    }
    let middle = panel.top + panel.height / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="22" y="{middle:.1}" text-anchor="middle" transform="rotate(-90 22 {middle:.1})">{label}</text>"#
    );
}

fn line(
    svg: &mut String,
    panel: &Panel,
    run: &Run,
    color: &str,
    steps: bool,
    value: fn(&Sample) -> f64,
) {
    let mut points = String::new();
    let mut previous: Option<f64> = None;
    for sample in &run.samples {
        let x = panel.x(sample.at_ms as f64 / 1000.0);
        let y = panel.y(value(sample));
        if let (true, Some(previous_y)) = (steps, previous) {
            let _ = write!(points, "{x:.1},{previous_y:.1} ");
        }
        let _ = write!(points, "{x:.1},{y:.1} ");
        previous = Some(y);
    }
    let _ = writeln!(
        svg,
        r#"<polyline fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round" points="{}"/>"#,
        points.trim_end()
    );
}

/// 1, 2 or 5 × 10ⁿ, for about five grid lines.
fn nice_step(range: f64) -> f64 {
    let rough = (range / 5.0).max(1e-9);
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * magnitude);
    step.max(1.0)
}

fn nice_ceiling(value: f64) -> f64 {
    let step = nice_step(value);
    (value / step).ceil() * step
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

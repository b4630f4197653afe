//! The dashboard's charts: the campaign's figures drawn as SVG on the
//! server with `plotters` (its SVG backend alone), each with the same
//! figures as an HTML table beside it.
//!
//! Rules:
//! - a chart is an image with a name: `<svg role="img"
//!   aria-labelledby="…">` whose `<title>` and `<desc>` say what it shows
//!   and what it says; the table ([`Table`]) is its text alternative, with
//!   exactly the figures drawn, so nothing needs the picture (nor
//!   JavaScript) to be read;
//! - every text put into the SVG is escaped: ours here ([`escape`]),
//!   plotters' own labels by its backend;
//! - pure and deterministic: the same figures give the same bytes (the
//!   tests compare them), no clock, no font file (plotters lays text out by
//!   an estimate; the browser draws it with its own sans-serif);
//! - small: no fine grid, one element per bar or line, a few hundred
//!   elements at most; a chart that cannot be drawn leaves its table (and
//!   says so) rather than failing the page.

use std::collections::BTreeMap;

use bma_core::State;
use bma_store::{DayCount, PlannedCutovers, WaveStateCount};
use plotters::coord::Shift;
use plotters::prelude::*;
use time::{Date, Duration};

/// Width of every chart, pixels (its viewBox: it scales down with the page).
const WIDTH: u32 = 720;
/// Height of every chart but the states'.
const HEIGHT: u32 = 300;
/// Height of a legend band of one row.
const LEGEND: u32 = 26;
/// The labels' font.
const FONT: (&str, u32) = ("sans-serif", 13);

/// Colours told apart by people with a colour vision deficiency (the
/// Okabe–Ito palette), dark enough on white.
const BLUE: RGBColor = RGBColor(0x00, 0x5A, 0x9C);
const ORANGE: RGBColor = RGBColor(0xB8, 0x6E, 0x00);
const GREEN: RGBColor = RGBColor(0x00, 0x7A, 0x5A);
const VERMILION: RGBColor = RGBColor(0xC0, 0x45, 0x00);
const PURPLE: RGBColor = RGBColor(0xA3, 0x4C, 0x86);
const SKY: RGBColor = RGBColor(0x3A, 0x8F, 0xC7);
const GREY: RGBColor = RGBColor(0x6B, 0x6B, 0x6B);
const INK: RGBColor = RGBColor(0x1F, 0x1F, 0x1F);

/// A table: the text alternative of a chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// What it lists.
    pub caption: String,
    /// The header of the rows' column, then of each figure's.
    pub columns: Vec<String>,
    /// Each row: its header, then its figures.
    pub rows: Vec<(String, Vec<String>)>,
}

impl Table {
    /// A row per day, headed by the day in French, its cells from `cells`.
    fn by_day(caption: &str, columns: &[&str], days: &[DayCount], cells: impl Fn(&DayCount) -> Vec<String>) -> Table {
        Table {
            caption: caption.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: days.iter().map(|d| (bma_core::settings::date_fr(d.day), cells(d))).collect(),
        }
    }
}

/// A chart and its table.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// Its id in the page (`graphique-{id}`).
    pub id: &'static str,
    /// Its heading.
    pub title: String,
    /// What it says, in a sentence or two (the SVG's `<desc>`, shown too).
    pub summary: String,
    /// The SVG, ready to be put in the page as it is; `None` if it could
    /// not be drawn (the table stays).
    pub svg: Option<String>,
    /// The same figures.
    pub table: Table,
}

/// `text` escaped for XML (content and attribute values).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole number the French way: groups of three digits separated by a
/// no-break space (`5 001 000`).
pub(crate) fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{a0}');
        }
        out.push(c);
    }
    out
}

/// Bytes in megabytes (10^6), one decimal, the French way (`5,0 Mo`).
pub(crate) fn megabytes(bytes: u64) -> String {
    let tenths = (bytes + 50_000) / 100_000;
    format!("{},{}\u{a0}Mo", number(tenths / 10), tenths % 10)
}

/// A day as on an axis: `22/04`.
fn short_day(d: Date) -> String {
    format!("{:02}/{:02}", d.day(), u8::from(d.month()))
}

/// The Monday of `d`'s week.
pub(crate) fn week_of(d: Date) -> Date {
    d - Duration::days(i64::from(d.weekday().number_days_from_monday()))
}

/// The SVG of plotters with our opening tag: an image named by its title
/// and description.
fn labelled(svg: &str, id: &str, title: &str, desc: &str) -> Option<String> {
    let end = svg.find('>')?;
    let open = &svg[..end];
    let attr = |name: &str| {
        let start = open.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = open[start..].find('"')?;
        Some(open[start..start + len].to_owned())
    };
    let (width, height, view_box) = (attr("width")?, attr("height")?, attr("viewBox")?);
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"{view_box}\" role=\"img\" aria-labelledby=\"{id}-titre {id}-desc\">\n\
         <title id=\"{id}-titre\">{}</title>\n<desc id=\"{id}-desc\">{}</desc>\n{}",
        escape(title),
        escape(desc),
        svg[end + 1..].trim_start()
    ))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), String>;

/// Draws with `draw` on a `width` × `height` SVG; the SVG labelled, or
/// `None` (logged) if plotters failed.
fn draw_svg(id: &str, title: &str, desc: &str, height: u32, draw: impl FnOnce(&Area<'_>) -> Drawn) -> Option<String> {
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    match drawn {
        Ok(()) => labelled(&svg, id, title, desc),
        Err(e) => {
            tracing::warn!(chart = id, error = %e, "a dashboard chart could not be drawn");
            None
        }
    }
}

/// Where each series' swatch goes in the legend band: left to right, on
/// as many rows as needed; and the band's height.
fn legend_layout(series: &[(&str, RGBColor)]) -> (Vec<(i32, i32)>, u32) {
    let (mut x, mut y) = (60, 6);
    let mut at = Vec::with_capacity(series.len());
    for (name, _) in series {
        let width = 30 + i32::try_from(name.chars().count() * 7).unwrap_or(200);
        if x > 60 && x + width > i32::try_from(WIDTH).unwrap_or(720) - 10 {
            (x, y) = (60, y + 20);
        }
        at.push((x, y));
        x += width;
    }
    (at, u32::try_from(y + 20).unwrap_or(LEGEND))
}

/// The legend band: a swatch and a name per series.
fn legend(area: &Area<'_>, series: &[(&str, RGBColor)]) -> Drawn {
    for ((name, colour), (x, y)) in series.iter().zip(legend_layout(series).0) {
        area.draw(&Rectangle::new([(x, y + 2), (x + 12, y + 14)], colour.filled())).map_err(|e| e.to_string())?;
        area.draw(&Text::new((*name).to_owned(), (x + 17, y + 2), FONT.into_font().color(&INK)))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A nice upper bound for an axis from 0 holding `max` (at least 1).
fn top(max: u64) -> u64 {
    let max = max.max(1);
    let mut step = 1;
    while step * 10 <= max {
        step *= 10;
    }
    for m in [1, 2, 5, 10] {
        if step * m >= max {
            return step * m;
        }
    }
    step * 10
}

/// The category axis of `n` bars: `0..n - 1` cut in segments (plotters'
/// integer ranges include their end; one category still gets a segment
/// of its own).
fn categories(n: usize) -> std::ops::Range<i32> {
    0..i32::try_from(n.max(2) - 1).unwrap_or(i32::MAX)
}

/// The segment of bar `i` on [`categories`] of `n`.
fn segment(i: usize, n: usize) -> (SegmentValue<i32>, SegmentValue<i32>) {
    let at = |k: usize| i32::try_from(k).unwrap_or(i32::MAX);
    let end = if i + 1 < n.max(2) { SegmentValue::Exact(at(i + 1)) } else { SegmentValue::Last };
    (SegmentValue::Exact(at(i)), end)
}

/// The label of a category key point.
fn category_label(labels: &[String], v: &SegmentValue<i32>) -> String {
    match v {
        SegmentValue::CenterOf(i) => usize::try_from(*i).ok().and_then(|i| labels.get(i)).cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The states' groups of the waves chart, in lifecycle order, with their colour.
const GROUPS: [(&str, &[State], RGBColor); 6] = [
    ("à inviter", &[State::Imported, State::Scheduled], GREY),
    ("invitées", &[State::Invited], SKY),
    ("mail 1 en erreur", &[State::InvitationBounced], VERMILION),
    ("formulaire reçu", &[State::Enrolled, State::Presynced], ORANGE),
    ("bascule planifiée ou en cours", &[State::CutoverScheduled, State::Migrating], PURPLE),
    ("migrées", &[State::Migrated], GREEN),
];

/// The group of `state` in [`GROUPS`]; failed and blocked mailboxes are
/// their own ("en échec ou bloquées"), the last.
fn group_of(state: State) -> usize {
    GROUPS.iter().position(|(_, states, _)| states.contains(&state)).unwrap_or(GROUPS.len())
}

/// Mailboxes per state: horizontal bars, every state in lifecycle order.
pub(crate) fn by_state(counts: &BTreeMap<State, u64>) -> Chart {
    let rows: Vec<(State, u64)> = State::ALL.iter().map(|s| (*s, counts.get(s).copied().unwrap_or(0))).collect();
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let title = "Boîtes par état".to_owned();
    let summary = format!(
        "{} boîtes : {}.",
        number(total),
        rows.iter()
            .filter(|r| r.1 > 0)
            .map(|(s, n)| format!("{} {}", number(*n), s.label_fr()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let n = rows.len();
    // Bottom to top on the axis: the first state at the top.
    let labels: Vec<String> = rows.iter().rev().map(|(s, _)| s.label_fr().to_owned()).collect();
    let max = top(rows.iter().map(|r| r.1).max().unwrap_or(0));
    let svg = draw_svg("graphique-etats", &title, &summary, 360, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(230)
            .build_cartesian_2d(0..max, categories(n).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(n)
            .x_labels(6)
            .label_style(FONT)
            .y_label_formatter(&|v| category_label(&labels, v))
            .draw()
            .map_err(|e| e.to_string())?;
        let bars = rows.iter().rev().enumerate().map(|(i, (_, count))| {
            let (a, b) = segment(i, n);
            let mut bar = Rectangle::new([(0, a), (*count, b)], BLUE.filled());
            bar.set_margin(3, 3, 0, 0);
            bar
        });
        chart.draw_series(bars).map_err(|e| e.to_string())?;
        Ok(())
    });
    let table = Table {
        caption: "Nombre de boîtes dans chaque état".to_owned(),
        columns: vec!["État".to_owned(), "Boîtes".to_owned()],
        rows: rows
            .iter()
            .map(|(s, n)| (s.label_fr().to_owned(), vec![number(*n)]))
            .chain(std::iter::once(("Total".to_owned(), vec![number(total)])))
            .collect(),
    };
    Chart { id: "etats", title, summary, svg, table }
}

/// Mailboxes per wave, stacked by where they stand.
pub(crate) fn by_wave(counts: &[WaveStateCount]) -> Chart {
    let mut waves: BTreeMap<Option<Date>, [u64; GROUPS.len() + 1]> = BTreeMap::new();
    for c in counts {
        waves.entry(c.wave).or_default()[group_of(c.state)] += c.count;
    }
    let names: Vec<&str> = GROUPS.iter().map(|g| g.0).chain(std::iter::once("en échec ou bloquées")).collect();
    let colours: Vec<RGBColor> = GROUPS.iter().map(|g| g.2).chain(std::iter::once(INK)).collect();
    let label = |w: &Option<Date>| w.map_or_else(|| "sans vague".to_owned(), short_day);
    let title = "Boîtes par vague d'invitation".to_owned();
    let summary = if waves.is_empty() {
        "Aucune boîte.".to_owned()
    } else {
        let migrated: u64 = waves.values().map(|g| g[5]).sum();
        format!(
            "{} vagues (et les boîtes sans vague) ; {} boîtes migrées en tout. Chaque barre empile les boîtes \
             d'une vague selon où elles en sont.",
            waves.keys().filter(|w| w.is_some()).count(),
            number(migrated)
        )
    };
    let n = waves.len();
    let labels: Vec<String> = waves.keys().map(label).collect();
    let max = top(waves.values().map(|g| g.iter().sum::<u64>()).max().unwrap_or(0));
    let shown: Vec<(&str, RGBColor)> = names.iter().copied().zip(colours.iter().copied()).collect();
    let band_height = legend_layout(&shown).1;
    let svg = draw_svg("graphique-vagues", &title, &summary, HEIGHT + band_height, |root| {
        let (band, body) = root.split_vertically(band_height);
        legend(&band, &shown)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(categories(n).into_segmented(), 0..max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(n.max(1))
            .y_labels(6)
            .label_style(FONT)
            .x_label_formatter(&|v| category_label(&labels, v))
            .y_desc("boîtes")
            .draw()
            .map_err(|e| e.to_string())?;
        let mut bars = Vec::new();
        for (i, groups) in waves.values().enumerate() {
            let (a, b) = segment(i, n);
            let mut base = 0;
            for (g, count) in groups.iter().enumerate() {
                if *count == 0 {
                    continue;
                }
                let mut bar = Rectangle::new([(a.clone(), base), (b.clone(), base + count)], colours[g].filled());
                bar.set_margin(0, 0, 6, 6);
                bars.push(bar);
                base += count;
            }
        }
        chart.draw_series(bars).map_err(|e| e.to_string())?;
        Ok(())
    });
    let table = Table {
        caption: "Boîtes de chaque vague selon où elles en sont".to_owned(),
        columns: std::iter::once("Vague".to_owned())
            .chain(names.iter().map(|s| (*s).to_owned()))
            .chain(std::iter::once("Total".to_owned()))
            .collect(),
        rows: waves
            .iter()
            .map(|(w, g)| {
                let head = w.map_or_else(|| "sans vague".to_owned(), bma_core::settings::date_fr);
                (head, g.iter().map(|n| number(*n)).chain(std::iter::once(number(g.iter().sum()))).collect())
            })
            .collect(),
    };
    Chart { id: "vagues", title, summary, svg, table }
}

/// The x axis of the day charts: one unit per day, `-0.5..n - 0.5`.
fn day_axis(n: usize) -> std::ops::Range<f64> {
    -0.5..(n.max(1) as f64 - 0.5)
}

/// The label of a day's key point (whole ones only).
fn day_label(days: &[DayCount], x: f64) -> String {
    if (x - x.round()).abs() > 1e-6 || x < 0.0 {
        return String::new();
    }
    days.get(x.round() as usize).map(|d| short_day(d.day)).unwrap_or_default()
}

/// Days shown: `days` up to `today` (a chart of what happened has no future).
fn past(days: &[DayCount], today: Date) -> &[DayCount] {
    let n = days.iter().take_while(|d| d.day <= today).count();
    &days[..n]
}

/// Progress over time: cumulative lines of mailboxes invited, forms received
/// and mailboxes migrated.
pub(crate) fn progress(days: &[DayCount], today: Date) -> Chart {
    let days = past(days, today);
    let mut totals = [0u64; 3];
    let points: Vec<[u64; 3]> = days
        .iter()
        .map(|d| {
            totals[0] += d.entered.get(&State::Invited).copied().unwrap_or(0);
            totals[1] += d.forms_received;
            totals[2] += d.cutovers;
            totals
        })
        .collect();
    let series = [("invitées", SKY), ("formulaires reçus", ORANGE), ("migrées", GREEN)];
    let title = "Progression de la campagne".to_owned();
    let summary = match (days.first(), days.last()) {
        (Some(first), Some(last)) => format!(
            "Du {} au {} : {} boîtes invitées, {} formulaires reçus, {} boîtes migrées (cumuls).",
            bma_core::settings::date_fr(first.day),
            bma_core::settings::date_fr(last.day),
            number(totals[0]),
            number(totals[1]),
            number(totals[2])
        ),
        _ => "Rien encore.".to_owned(),
    };
    let max = top(totals.iter().copied().max().unwrap_or(0));
    let n = days.len();
    let svg = draw_svg("graphique-progression", &title, &summary, HEIGHT + LEGEND, |root| {
        let (band, body) = root.split_vertically(LEGEND);
        legend(&band, &series)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(day_axis(n), 0..max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(10)
            .y_labels(6)
            .label_style(FONT)
            .x_label_formatter(&|x| day_label(days, *x))
            .y_desc("boîtes (cumul)")
            .draw()
            .map_err(|e| e.to_string())?;
        for (k, (_, colour)) in series.iter().enumerate() {
            let line = points.iter().enumerate().map(|(i, p)| (i as f64, p[k]));
            chart.draw_series(LineSeries::new(line, colour.stroke_width(2))).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    let table = Table {
        caption: "Cumuls jour par jour".to_owned(),
        columns: ["Jour", "Boîtes invitées", "Formulaires reçus", "Boîtes migrées"].map(str::to_owned).to_vec(),
        rows: days
            .iter()
            .zip(&points)
            .map(|(d, p)| (bma_core::settings::date_fr(d.day), p.iter().map(|v| number(*v)).collect()))
            .collect(),
    };
    Chart { id: "progression", title, summary, svg, table }
}

/// What a chart of grouped bars per day is.
struct DayBars<'a> {
    id: &'a str,
    title: &'a str,
    summary: &'a str,
    series: &'a [(&'a str, RGBColor)],
    y_desc: &'a str,
}

/// Grouped bars per day: one bar per series side by side.
fn day_bars(
    chart: &DayBars<'_>,
    days: &[DayCount],
    values: &dyn Fn(&DayCount) -> Vec<u64>,
    y_format: &dyn Fn(&u64) -> String,
) -> Option<String> {
    let DayBars { id, title, summary, series, y_desc } = *chart;
    let n = days.len();
    let max = top(days.iter().flat_map(values).max().unwrap_or(0));
    let width = 0.8 / series.len().max(1) as f64;
    draw_svg(id, title, summary, HEIGHT + LEGEND, |root| {
        let (band, body) = root.split_vertically(LEGEND);
        legend(&band, series)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(day_axis(n), 0..max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(10)
            .y_labels(6)
            .label_style(FONT)
            .x_label_formatter(&|x| day_label(days, *x))
            .y_label_formatter(y_format)
            .y_desc(y_desc)
            .draw()
            .map_err(|e| e.to_string())?;
        let mut bars = Vec::new();
        for (i, d) in days.iter().enumerate() {
            for (k, v) in values(d).into_iter().enumerate() {
                if v == 0 {
                    continue;
                }
                let x = i as f64 - 0.4 + k as f64 * width;
                bars.push(Rectangle::new([(x, 0), (x + width, v)], series[k].1.filled()));
            }
        }
        chart.draw_series(bars).map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Emails per day: sent, bounced, left uncertain.
pub(crate) fn emails(days: &[DayCount], today: Date) -> Chart {
    let days = past(days, today);
    let sum = |f: fn(&DayCount) -> u64| days.iter().map(f).sum::<u64>();
    let (sent, bounced, uncertain) = (sum(|d| d.emails_sent), sum(|d| d.emails_bounced), sum(|d| d.emails_uncertain));
    let title = "Emails par jour".to_owned();
    let summary = format!(
        "{} emails remis au relais, {} revenus en erreur, {} dont la distribution n'a pu être confirmée.",
        number(sent),
        number(bounced),
        number(uncertain)
    );
    let series = [("envoyés", BLUE), ("revenus en erreur", VERMILION), ("incertains", ORANGE)];
    let values = |d: &DayCount| vec![d.emails_sent, d.emails_bounced, d.emails_uncertain];
    let bars = DayBars { id: "graphique-emails", title: &title, summary: &summary, series: &series, y_desc: "emails" };
    let svg = day_bars(&bars, days, &values, &|v| number(*v));
    let columns = ["Jour", "Envoyés", "Revenus en erreur", "Incertains"];
    let table = Table::by_day("Emails de chaque jour", &columns, days, |d| values(d).into_iter().map(number).collect());
    Chart { id: "emails", title, summary, svg, table }
}

/// Forms per day: received (first answers) and corrected.
pub(crate) fn forms(days: &[DayCount], today: Date) -> Chart {
    let days = past(days, today);
    let received: u64 = days.iter().map(|d| d.forms_received).sum();
    let corrected: u64 = days.iter().map(|d| d.forms_corrected).sum();
    let title = "Formulaires par jour".to_owned();
    let summary = format!("{} formulaires reçus, {} corrections.", number(received), number(corrected));
    let series = [("reçus", ORANGE), ("corrigés", PURPLE)];
    let values = |d: &DayCount| vec![d.forms_received, d.forms_corrected];
    let bars = DayBars {
        id: "graphique-formulaires",
        title: &title,
        summary: &summary,
        series: &series,
        y_desc: "formulaires",
    };
    let svg = day_bars(&bars, days, &values, &|v| number(*v));
    let columns = ["Jour", "Reçus", "Corrigés"];
    let table =
        Table::by_day("Formulaires de chaque jour", &columns, days, |d| values(d).into_iter().map(number).collect());
    Chart { id: "formulaires", title, summary, svg, table }
}

/// Presync volume per day, in megabytes (the messages in the table).
pub(crate) fn presync(days: &[DayCount], today: Date) -> Chart {
    let days = past(days, today);
    let bytes: u64 = days.iter().map(|d| d.presync_bytes).sum();
    let messages: u64 = days.iter().map(|d| d.presync_messages).sum();
    let title = "Volume présynchronisé par jour".to_owned();
    let summary = format!("{} messages, {} copiés d'avance.", number(messages), megabytes(bytes));
    let series = [("octets copiés", BLUE)];
    let values = |d: &DayCount| vec![d.presync_bytes];
    let bars = DayBars { id: "graphique-presync", title: &title, summary: &summary, series: &series, y_desc: "Mo" };
    let svg = day_bars(&bars, days, &values, &|v| number((v + 500_000) / 1_000_000));
    let columns = ["Jour", "Messages", "Octets", "Mo"];
    let table = Table::by_day("Présynchronisation de chaque jour", &columns, days, |d| {
        vec![number(d.presync_messages), number(d.presync_bytes), megabytes(d.presync_bytes)]
    });
    Chart { id: "presync", title, summary, svg, table }
}

/// A week of cutovers: done and planned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Week {
    done: u64,
    planned: u64,
}

/// Cutovers per week (Monday to Sunday): done, and planned for the weeks to
/// come, against the weekly capacity (`None`: no limit).
pub(crate) fn cutover_weeks(days: &[DayCount], planned: &[PlannedCutovers], capacity: Option<u32>) -> Chart {
    let mut weeks: BTreeMap<Date, Week> = BTreeMap::new();
    for d in days.iter().filter(|d| d.cutovers > 0) {
        weeks.entry(week_of(d.day)).or_default().done += d.cutovers;
    }
    for p in planned {
        weeks.entry(week_of(p.day)).or_default().planned += p.count;
    }
    // Weeks between the first and the last shown too, empty.
    if let (Some(first), Some(last)) = (weeks.keys().next().copied(), weeks.keys().next_back().copied()) {
        let mut w = first;
        while w < last {
            weeks.entry(w).or_default();
            w += Duration::weeks(1);
        }
    }
    let done: u64 = weeks.values().map(|w| w.done).sum();
    let to_come: u64 = weeks.values().map(|w| w.planned).sum();
    let over = capacity.map_or(0, |c| weeks.values().filter(|w| w.done + w.planned > u64::from(c)).count());
    let title = "Bascules par semaine et capacité".to_owned();
    let summary = format!(
        "{} bascules faites, {} planifiées ; {}.",
        number(done),
        number(to_come),
        match capacity {
            Some(c) if over > 0 =>
                format!("capacité de {} par semaine, dépassée {} semaine(s)", number(u64::from(c)), over),
            Some(c) => format!("capacité de {} par semaine, jamais dépassée", number(u64::from(c))),
            None => "pas de limite de capacité hebdomadaire".to_owned(),
        }
    );
    let n = weeks.len();
    let labels: Vec<String> = weeks.keys().map(|w| short_day(*w)).collect();
    let most = weeks.values().map(|w| w.done + w.planned).max().unwrap_or(0);
    let max = top(most.max(capacity.map_or(0, u64::from)));
    let mut series = vec![("faites", GREEN), ("planifiées", PURPLE)];
    if capacity.is_some() {
        series.push(("capacité", VERMILION));
    }
    let svg = draw_svg("graphique-bascules", &title, &summary, HEIGHT + LEGEND, |root| {
        let (band, body) = root.split_vertically(LEGEND);
        legend(&band, &series)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(categories(n).into_segmented(), 0..max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(n.clamp(1, 20))
            .y_labels(6)
            .label_style(FONT)
            .x_label_formatter(&|v| category_label(&labels, v))
            .x_desc("semaine du lundi")
            .y_desc("bascules")
            .draw()
            .map_err(|e| e.to_string())?;
        let mut bars = Vec::new();
        for (i, w) in weeks.values().enumerate() {
            let (a, b) = segment(i, n);
            for (from, to, colour) in [(0, w.done, GREEN), (w.done, w.done + w.planned, PURPLE)] {
                if to > from {
                    let mut bar = Rectangle::new([(a.clone(), from), (b.clone(), to)], colour.filled());
                    bar.set_margin(0, 0, 8, 8);
                    bars.push(bar);
                }
            }
        }
        chart.draw_series(bars).map_err(|e| e.to_string())?;
        if let Some(c) = capacity {
            let c = u64::from(c);
            let line =
                PathElement::new(vec![(SegmentValue::Exact(0), c), (SegmentValue::Last, c)], VERMILION.stroke_width(2));
            chart.draw_series(std::iter::once(line)).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    let capacity_cell = capacity.map_or_else(|| "sans limite".to_owned(), |c| number(u64::from(c)));
    let table = Table {
        caption: "Bascules de chaque semaine (du lundi au dimanche)".to_owned(),
        columns: ["Semaine du", "Faites", "Planifiées", "Capacité"].map(str::to_owned).to_vec(),
        rows: weeks
            .iter()
            .map(|(w, c)| {
                let cells = vec![number(c.done), number(c.planned), capacity_cell.clone()];
                (bma_core::settings::date_fr(*w), cells)
            })
            .collect(),
    };
    Chart { id: "bascules", title, summary, svg, table }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn numbers_the_french_way() {
        let cases = [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1_000, "1\u{a0}000"),
            (3_500, "3\u{a0}500"),
            (5_001_000, "5\u{a0}001\u{a0}000"),
            (123_456_789, "123\u{a0}456\u{a0}789"),
        ];
        for (n, text) in cases {
            assert_eq!(number(n), text, "{n}");
        }
        let cases = [(0, "0,0"), (49_999, "0,0"), (50_000, "0,1"), (5_001_000, "5,0"), (1_234_567_890, "1\u{a0}234,6")];
        for (n, text) in cases {
            assert_eq!(megabytes(n), format!("{text}\u{a0}Mo"), "{n}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a < b & c > \"d\" 'e'"), "a &lt; b &amp; c &gt; &quot;d&quot; &apos;e&apos;");
        assert_eq!(escape("École"), "École");
    }

    #[test]
    fn axes() {
        let cases = [(0, 1), (1, 1), (3, 5), (7, 10), (10, 10), (11, 20), (260, 500), (3_500, 5_000), (5_001, 10_000)];
        for (max, expected) in cases {
            assert_eq!(top(max), expected, "{max}");
        }
        assert_eq!(categories(1), 0..1);
        assert_eq!(categories(11), 0..10);
        assert!(matches!(segment(0, 1), (SegmentValue::Exact(0), SegmentValue::Exact(1))));
        assert!(matches!(segment(10, 11), (SegmentValue::Exact(10), SegmentValue::Last)));
        assert_eq!(week_of(date!(2024 - 05 - 14)), date!(2024 - 05 - 13));
        assert_eq!(week_of(date!(2024 - 05 - 13)), date!(2024 - 05 - 13));
        assert_eq!(week_of(date!(2024 - 05 - 19)), date!(2024 - 05 - 13));
    }

    fn sample_days() -> Vec<DayCount> {
        let mut days: Vec<DayCount> =
            (0..10).map(|i| DayCount::empty(date!(2024 - 04 - 22) + Duration::days(i))).collect();
        days[0].emails_sent = 4;
        days[0].entered.insert(State::Invited, 4);
        days[1].emails_bounced = 1;
        days[1].forms_received = 2;
        days[2].presync_bytes = 5_001_000;
        days[2].presync_messages = 130;
        days[4].emails_uncertain = 1;
        days[8].cutovers = 1;
        days
    }

    /// Every chart: an SVG named by its title and description, escaped,
    /// the same bytes twice, small; its table the figures drawn.
    #[test]
    fn charts_are_labelled_images_with_their_table() {
        let days = sample_days();
        let today = date!(2024 - 04 - 30);
        let states: BTreeMap<State, u64> = [(State::Invited, 3), (State::Migrated, 1)].into();
        let waves = vec![
            WaveStateCount { wave: None, state: State::Imported, count: 1 },
            WaveStateCount { wave: Some(date!(2024 - 04 - 22)), state: State::Invited, count: 3 },
            WaveStateCount { wave: Some(date!(2024 - 04 - 22)), state: State::Migrated, count: 1 },
        ];
        let planned = vec![PlannedCutovers { day: date!(2024 - 05 - 21), count: 2, bytes: 0 }];
        let make = || {
            vec![
                by_state(&states),
                by_wave(&waves),
                progress(&days, today),
                emails(&days, today),
                forms(&days, today),
                presync(&days, today),
                cutover_weeks(&days, &planned, Some(1)),
            ]
        };
        let (first, again) = (make(), make());
        for (chart, same) in first.iter().zip(&again) {
            let svg = chart.svg.as_deref().unwrap_or_else(|| panic!("{} drawn", chart.id));
            assert_eq!(Some(svg), same.svg.as_deref(), "{}: deterministic", chart.id);
            let id = format!("graphique-{}", chart.id);
            assert!(
                svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"720\" height=\""),
                "{}",
                &svg[..120]
            );
            assert!(svg.contains(&format!("role=\"img\" aria-labelledby=\"{id}-titre {id}-desc\">")), "{}", chart.id);
            assert!(svg.contains(&format!("<title id=\"{id}-titre\">{}</title>", escape(&chart.title))));
            assert!(svg.contains(&format!("<desc id=\"{id}-desc\">{}</desc>", escape(&chart.summary))));
            assert_eq!(svg.matches("<svg").count(), 1, "{}", chart.id);
            assert!(svg.trim_end().ends_with("</svg>"), "{}", chart.id);
            assert!(svg.len() < 40_000, "{}: {} bytes", chart.id, svg.len());
            assert!(!svg.contains("<script"), "{}", chart.id);
            for (_, cells) in &chart.table.rows {
                assert_eq!(cells.len() + 1, chart.table.columns.len(), "{}", chart.id);
            }
        }
        let cells = |c: &Chart, row: &str| c.table.rows.iter().find(|r| r.0 == row).map(|r| r.1.clone());
        let [states, waves, progress, emails, forms, presync, cutovers] = first.try_into().unwrap();
        assert_eq!(states.table.rows.len(), State::ALL.len() + 1);
        assert_eq!(cells(&states, "invitation envoyée"), Some(vec!["3".into()]));
        assert_eq!(cells(&states, "Total"), Some(vec!["4".into()]));
        assert_eq!(
            cells(&waves, "sans vague"),
            Some(["1", "0", "0", "0", "0", "0", "0", "1"].map(String::from).to_vec())
        );
        assert_eq!(
            cells(&waves, "22 avril 2024"),
            Some(["0", "3", "0", "0", "0", "1", "0", "4"].map(String::from).to_vec())
        );
        // The days up to today: 9 of the 10.
        assert_eq!(progress.table.rows.len(), 9);
        assert_eq!(cells(&progress, "30 avril 2024"), Some(["4", "2", "1"].map(String::from).to_vec()));
        assert_eq!(cells(&emails, "22 avril 2024"), Some(["4", "0", "0"].map(String::from).to_vec()));
        assert_eq!(cells(&emails, "26 avril 2024"), Some(["0", "0", "1"].map(String::from).to_vec()));
        assert_eq!(cells(&forms, "23 avril 2024"), Some(["2", "0"].map(String::from).to_vec()));
        assert_eq!(
            cells(&presync, "24 avril 2024"),
            Some(vec!["130".into(), "5\u{a0}001\u{a0}000".into(), "5,0\u{a0}Mo".into()])
        );
        assert_eq!(cutovers.table.rows.len(), 4, "from the week of 04-29 to that of 05-20");
        assert_eq!(cells(&cutovers, "29 avril 2024"), Some(["1", "0", "1"].map(String::from).to_vec()));
        assert_eq!(cells(&cutovers, "6 mai 2024"), Some(["0", "0", "1"].map(String::from).to_vec()));
        assert_eq!(cells(&cutovers, "13 mai 2024"), Some(["0", "0", "1"].map(String::from).to_vec()));
        assert_eq!(cells(&cutovers, "20 mai 2024"), Some(["0", "2", "1"].map(String::from).to_vec()));
        assert!(cutovers.summary.contains("dépassée 1 semaine(s)"), "{}", cutovers.summary);
        if std::env::var_os("BMA_CHARTS_OUT").is_some() {
            for c in [&states, &waves, &progress, &emails, &forms, &presync, &cutovers] {
                std::fs::write(format!("/tmp/chart-{}.svg", c.id), c.svg.as_deref().unwrap_or("")).unwrap();
            }
        }
    }

    #[test]
    fn nothing_yet() {
        let today = date!(2024 - 04 - 22);
        for chart in [
            by_state(&BTreeMap::new()),
            by_wave(&[]),
            progress(&[], today),
            emails(&[], today),
            presync(&[], today),
            cutover_weeks(&[], &[], None),
        ] {
            assert!(chart.svg.is_some(), "{} drawn empty", chart.id);
        }
    }

    #[test]
    fn text_in_the_svg_is_escaped() {
        let svg = labelled(
            "<svg width=\"1\" height=\"2\" viewBox=\"0 0 1 2\" xmlns=\"x\">\n<rect/></svg>",
            "g",
            "a<b",
            "c&d",
        )
        .unwrap();
        assert!(svg.contains("<title id=\"g-titre\">a&lt;b</title>"), "{svg}");
        assert!(svg.contains("<desc id=\"g-desc\">c&amp;d</desc>\n<rect/></svg>"), "{svg}");
    }
}

//! The report's colours, one source for every chart and the HTML: a severity scale (grey for
//! informational, then light to dark red, so order reads without a legend and survives
//! red-green colour blindness) and viridis for quantities (perceptually uniform, readable in
//! grey print and by colour-blind readers), with white kept for "nothing".

use crate::rank::Severity;

/// RGB of a severity.
pub fn severity(s: Severity) -> (u8, u8, u8) {
    match s {
        Severity::Informational => (170, 170, 170),
        Severity::Low => (252, 174, 145),
        Severity::Medium => (251, 106, 74),
        Severity::High => (203, 24, 29),
        Severity::Critical => (103, 0, 13),
    }
}

/// `#rrggbb` of a severity, for the HTML.
pub fn severity_hex(s: Severity) -> String {
    let (r, g, b) = severity(s);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// CSS classes `sev-<name>` for headings and table cells, from the same colours as the charts.
pub fn severity_css() -> String {
    Severity::ALL
        .iter()
        .map(|s| {
            let text = if matches!(s, Severity::High | Severity::Critical) {
                "#fff"
            } else {
                "#222"
            };
            format!(
                "h3.sev-{n}{{border-left-color:{c}}}td.sev-{n}{{background:{c};color:{text}}}",
                n = s.name(),
                c = severity_hex(*s)
            )
        })
        .collect()
}

/// Viridis anchors (matplotlib's, every ninth of the scale).
const VIRIDIS: [(u8, u8, u8); 10] = [
    (0x44, 0x01, 0x54),
    (0x48, 0x28, 0x78),
    (0x3e, 0x49, 0x89),
    (0x31, 0x68, 0x8e),
    (0x26, 0x82, 0x8e),
    (0x1f, 0x9e, 0x89),
    (0x35, 0xb7, 0x79),
    (0x6e, 0xce, 0x58),
    (0xb5, 0xde, 0x2b),
    (0xfd, 0xe7, 0x25),
];

/// Viridis at `f` in 0–1 (low: dark violet, high: yellow), linearly between anchors.
pub fn viridis(f: f64) -> (u8, u8, u8) {
    let x = f.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let t = x - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Severities darken as they rise (the scale reads in grey too); viridis brightens.
    #[test]
    fn scales_are_monotonic_in_lightness() {
        let light = |(r, g, b): (u8, u8, u8)| {
            0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b)
        };
        let sev: Vec<f64> = Severity::ALL[1..]
            .iter()
            .map(|s| light(severity(*s)))
            .collect();
        assert!(sev.windows(2).all(|w| w[0] > w[1]), "{sev:?}");
        let vir: Vec<f64> = (0..=20)
            .map(|i| light(viridis(f64::from(i) / 20.0)))
            .collect();
        assert!(vir.windows(2).all(|w| w[0] < w[1]), "{vir:?}");
        assert_eq!((viridis(0.0), viridis(1.0)), (VIRIDIS[0], VIRIDIS[9]));
    }
}

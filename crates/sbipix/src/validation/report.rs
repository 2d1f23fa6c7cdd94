//! The Markdown page and tables of a validation.

use super::simulated::ValidationReport;
use crate::products::map::SNR_BANDS;
use sbipix_diagnostics::ParamMetrics;
use std::collections::BTreeMap;

/// The Markdown page: the table, the targets, the figures.
pub fn markdown(r: &ValidationReport, names: &[String]) -> String {
    let mut s = format!(
        "# Validation of `{}`\n\n{} fresh simulations from the model's prior and {} (seed {}), {} posterior draws each; {} pass the map selection (mean S/N over {} > {}).\n\n## Pixels a map would fit\n\n",
        r.model,
        r.n,
        if r.like.is_some() { "the noise of the `--like` data" } else { "survey" },
        r.seed,
        r.n_draws,
        r.n_selected,
        SNR_BANDS.join(", "),
        r.snr_min
    );
    if let Some(l) = &r.like {
        s.push_str(&format!(
            "Test pixels like `{}` (`--like`): its noise (a survey learnt from it), the band masks of its {} pixels above the S/N cut ({} measured), and their S/N: shares {} in the S/N bins below.\n\n",
            l.source,
            l.pixels,
            l.bands_measured.join(" "),
            l.snr_share.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(" / ")
        ));
    }
    s.push_str(&metrics_table(&r.parameters, names));
    if !r.parameters_by_snr.is_empty() {
        let title = format!("By S/N (mean over {}): R² and 68 % coverage", SNR_BANDS.join(", "));
        s.push_str(&snr_table(&title, r, names, |m| format!("{:.3} / {:.2}", m.r2, m.coverage_68)));
        let title = "By S/N: CRPS (mean over the cases, in each parameter's units; lower is better)";
        s.push_str(&snr_table(title, r, names, |m| format!("{:.4}", m.crps)));
    }
    for (title, groups) in
        [("depth factor (× the learnt survey's σ_bg)", &r.coverage_by_depth), ("band coverage pattern", &r.coverage_by_pattern)]
    {
        if groups.is_empty() {
            continue;
        }
        s.push_str(&format!("\n## Coverage 68 % / 95 % by {title}\n\nCalibrated intervals give coverages inside the ranges shown on as many independent cases at 99.73 % (3σ).\n\n| group | cases | 3σ range 68 % | 3σ range 95 % |"));
        for n in names {
            s.push_str(&format!(" {n} |"));
        }
        s.push_str(" calibrated |\n|---|---|---|---|");
        s.push_str(&"---|".repeat(names.len() + 1));
        s.push('\n');
        for g in groups {
            s.push_str(&format!(
                "| {} | {} | {:.3}–{:.3} | {:.3}–{:.3} |",
                g.group, g.cases, g.bounds_68.0, g.bounds_68.1, g.bounds_95.0, g.bounds_95.1
            ));
            for n in names {
                s.push_str(&format!(" {:.3} / {:.3} |", g.coverage_68[n], g.coverage_95[n]));
            }
            s.push_str(if g.calibrated { " yes |\n" } else { " **no** |\n" });
        }
    }
    s.push_str(&format!(
        "\n## All test cases, detected or not\n\n{}\nTARP (all cases): max |ECP − α| = {:.3}.\n",
        metrics_table(&r.parameters_all, names),
        r.tarp_all.max_deviation
    ));
    s.push_str(&format!(
        "\nTARP (selected cases, all parameters jointly): max |ECP − α| = {:.3}, area = {:.3}.\n\n",
        r.tarp.max_deviation, r.tarp.area
    ));
    s.push_str("Targets: R²(log_mstar) ≥ 0.99 (SBIPIX paper), R²(mass_weighted_age_gyr) ≥ 0.88 (best JADES peer), 68 %/95 % coverage within 0.05/0.03 of nominal.\n\n");
    if let Some(c) = &r.reference {
        s.push_str(&format!(
            "## Against the likelihood-based reference posterior\n\nThe first {} selected cases, also fitted by tempered SMC with the same forward model, prior and a Gaussian likelihood ({} particles, {:.0} likelihood evaluations per case, {:.0} s). The reference is the best a posterior can do with this information: R² well below it means the network has room to improve; equal means the data, not the network, limit the accuracy.\n\n| parameter | R² network | R² reference | R² reference mean (ceiling) | NMAD network | NMAD reference | coverage 68 % network | coverage 68 % reference | network median in reference 68 % |\n|---|---|---|---|---|---|---|---|---|\n",
            c.cases, c.particles, c.evaluations_per_case, c.seconds
        ));
        for n in names {
            let (a, b) = (&c.model[n], &c.reference[n]);
            s.push_str(&format!(
                "| {n} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} |\n",
                a.r2, b.r2, c.reference_mean_r2[n], a.nmad, b.nmad, a.coverage_68, b.coverage_68, c.model_median_in_reference_68[n]
            ));
        }
        s.push('\n');
    }
    s.push_str(
        "![truth vs median](truth_vs_median.png)\n\n![coverage](coverage.png)\n\n![SBC ranks](sbc_ranks.png)\n\n![TARP](tarp.png)\n",
    );
    s
}

/// A section with one row per S/N bin and one cell per parameter.
fn snr_table(title: &str, r: &ValidationReport, names: &[String], cell: impl Fn(&ParamMetrics) -> String) -> String {
    let mut s = format!("\n## {title}\n\n| S/N | cases |");
    for n in names {
        s.push_str(&format!(" {n} |"));
    }
    s.push_str("\n|---|---|");
    s.push_str(&"---|".repeat(names.len()));
    s.push('\n');
    for (label, cases, m) in &r.parameters_by_snr {
        s.push_str(&format!("| {label} | {cases} |"));
        for n in names {
            s.push_str(&format!(" {} |", cell(&m[n])));
        }
        s.push('\n');
    }
    s
}

/// The metrics as a Markdown table.
pub fn metrics_table(params: &BTreeMap<String, ParamMetrics>, names: &[String]) -> String {
    let mut s = String::from(
        "| parameter | R² | R² (mean) | CRPS | bias | NMAD | outliers | median 68 % width | coverage 68 % | coverage 95 % | SBC KS p |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for n in names {
        let m = &params[n];
        s.push_str(&format!(
            "| {n} | {:.3} | {:.3} | {:.4} | {:+.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2e} |\n",
            m.r2, m.r2_mean, m.crps, m.bias, m.nmad, m.outlier_frac, m.median_width_68, m.coverage_68, m.coverage_95, m.sbc_ks_pvalue
        ));
    }
    s
}

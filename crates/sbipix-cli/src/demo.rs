//! `sbipix demo`: the forward model on built-in example galaxies — photometry through the 19
//! JADES bands (CSV), a table on the terminal and a figure of their spectra and band fluxes.

use crate::commands::log;
use anyhow::{Context, Result};
use plotters::prelude::*;
use sbipix::io::DataStore;
use sbipix::sps::constants::ab_mag_from_ujy;
use sbipix::sps::{ModelConfig, SfhFamily, SpsModel};
use sbipix::{FilterChoice, ParamTable, build_sps_model, photometry_catalog};
use std::path::Path;

/// The built-in galaxies (delayed-τ SFHs), as a parameter table.
const EXAMPLES: &str = "\
id,redshift,log_mass_formed,age_gyr,tau_gyr,logzsol,av_mag,logu
quiescent_z1,1.0,11.0,5.0,0.3,0.2,0.2,-2
star_forming_z2,2.0,10.0,2.0,3.0,-0.3,1.0,-2
dusty_z4.33,4.33,10.5,0.8,1.0,0.0,3.0,-2
starburst_z6,6.0,8.5,0.05,0.02,-1.5,0.1,-2
young_z14.3,14.3,8.7,0.1,0.05,-1.5,0.0,-2
";

pub fn demo(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let table = ParamTable::parse_csv(EXAMPLES, "built-in examples", SfhFamily::DelayedTau)?;
    let params_path = out.join("galaxies.csv");
    sbipix::io::write_atomic(&params_path, |w| Ok(w.write_all(EXAMPLES.as_bytes())?))?;

    let store = DataStore::from_env()?;
    let model = build_sps_model(&store, &FilterChoice::Jades, ModelConfig::default(), &log)?;
    let phot_path = out.join("photometry.csv");
    photometry_catalog(&model, &table, &phot_path, &|_| {})?;

    let ids = table.ids.clone().unwrap_or_default();
    let bands = model.band_names();
    let show = ["F090W", "F150W", "F200W", "F277W", "F444W", "F606W"];
    println!("{:<16} {:>6} {:>7} {:>9} {:>6}  {}", "galaxy", "z", "log M*", "log SFR", "MWA", "AB mag: ".to_string() + &show.join("  "));
    let mut curves = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let p = table.params(i);
        let (flux, d) = model.photometry(&p)?;
        let mags: Vec<String> = show
            .iter()
            .map(|b| {
                let k = bands.iter().position(|x| x == b).expect("JADES band");
                let m = ab_mag_from_ujy(flux[k]);
                if m.is_finite() && m < 99.0 { format!("{m:5.2}") } else { "  -  ".into() }
            })
            .collect();
        println!(
            "{id:<16} {:>6.2} {:>7.2} {:>9.2} {:>6.3}          {}",
            p.redshift,
            d.log_mstar,
            d.log_sfr_100myr,
            d.mass_weighted_age_gyr,
            mags.join("  ")
        );
        let (wave, fnu) = model.spectrum(&p)?;
        curves.push((id.clone(), p.redshift, wave, fnu, flux));
    }
    let fig = out.join("seds.png");
    plot_seds(&model, &curves, &fig)?;
    log(&format!(
        "sbipix: wrote {}, {} and {}",
        params_path.display(),
        phot_path.display(),
        fig.display()
    ));
    Ok(())
}

type Curve = (String, f64, Vec<f64>, Vec<f64>, Vec<f64>);

fn plot_seds(model: &SpsModel, curves: &[Curve], path: &Path) -> Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| anyhow::anyhow!("cannot load the embedded font"))?;
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (1100, 700)).into_drawing_area();
        root.fill(&WHITE)?;
        let (xmin, xmax) = (0.3f64, 5.5f64);
        let mut chart = ChartBuilder::on(&root)
            .caption("sbipix demo: model spectra and 19-band JADES photometry", ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((xmin..xmax).log_scale(), (1e-4f64..1e3f64).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("observed wavelength (µm)")
            .y_desc("f_ν (µJy)")
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .draw()?;
        use plotters::style::full_palette::{GREEN_800, ORANGE_800, PURPLE};
        let colours = [BLUE, GREEN_800, RED, ORANGE_800, PURPLE];
        let pivots: Vec<f64> = model.filters().map(|f| f.pivot_wavelength_aa() / 1e4).collect();
        for (k, (id, z, wave, fnu, flux)) in curves.iter().enumerate() {
            let c = colours[k % colours.len()];
            let pts = wave.iter().zip(fnu).filter_map(|(w, f)| {
                let x = w * (1.0 + z) / 1e4;
                (x > xmin && x < xmax && *f > 1e-4).then_some((x, f.min(1e3)))
            });
            chart
                .draw_series(LineSeries::new(pts, c.mix(0.6).stroke_width(1)))?
                .label(format!("{id} (z = {z})"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
            chart.draw_series(
                pivots.iter().zip(flux).filter(|(_, f)| **f > 1e-4).map(|(x, f)| Circle::new((*x, *f), 5, c.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()?;
        root.present()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

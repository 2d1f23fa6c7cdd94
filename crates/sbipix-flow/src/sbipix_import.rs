//! Import of the SBIPIX authors' released network (`weights.safetensors` as converted from their
//! sbi pickle: nflows MAF, 5 transforms, tanh MADEs with 2 blocks of 128, BoxUniform prior).

use crate::dense::{Activation, Linear};
use crate::error::Result;
use crate::maf::{Made, Maf, MafLayer};
use crate::model::{Architecture, BoundMethod, FORMAT, FORMAT_VERSION, FlowConfig, FlowModel, Net, ParamSpec, Tensors};
use std::path::Path;

/// The base-distribution constant as pickled by nflows (float32 of 3.5·ln 2π).
pub const SBIPIX_LOG_Z_F32: f64 = 6.43256950378418;

fn masked(t: &Tensors, prefix: &str, n_in: usize, n_out: usize) -> Result<Linear<f64>> {
    let w = t.float(&format!("{prefix}.weight"), &[n_out, n_in])?;
    let m = t.float(&format!("{prefix}.mask"), &[n_out, n_in])?;
    let b = t.float(&format!("{prefix}.bias"), &[n_out])?;
    Ok(Linear::new(n_in, n_out, w.iter().zip(&m).map(|(a, b)| a * b).collect(), b))
}

/// Reads the converted SBIPIX network. `names` labels the 7 parameters.
pub fn import_sbipix(path: &Path, names: &[&str]) -> Result<FlowModel<f64>> {
    let t = Tensors::read(path)?;
    let d = 7;
    let dx = 39;
    let hidden = 128;
    let low = t.float("prior.low", &[d])?;
    let high = t.float("prior.high", &[d])?;
    let shift = t.float("theta_standardize.shift", &[d])?;
    let scale = t.float("theta_standardize.scale", &[d])?;
    let layers = (0..5)
        .map(|k| {
            let p = format!("transform{k}.made");
            Ok(MafLayer {
                made: Made {
                    dim: d,
                    initial: masked(&t, &format!("{p}.initial_layer"), d, hidden)?,
                    context: Linear::new(
                        dx,
                        hidden,
                        t.float(&format!("{p}.context_layer.weight"), &[hidden, dx])?,
                        t.float(&format!("{p}.context_layer.bias"), &[hidden])?,
                    ),
                    blocks: (0..2).map(|b| masked(&t, &format!("{p}.blocks.{b}"), hidden, hidden)).collect::<Result<_>>()?,
                    last: masked(&t, &format!("{p}.final_layer"), hidden, 2 * d)?,
                    activation: Activation::Tanh,
                },
                perm: t.perm(&format!("transform{k}.permutation"), d)?,
            })
        })
        .collect::<Result<_>>()?;
    let config = FlowConfig {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        architecture: Architecture::Maf { layers: 5, hidden, blocks: 2, activation: Activation::Tanh },
        params: names
            .iter()
            .enumerate()
            .map(|(i, n)| ParamSpec { name: n.to_string(), lower: Some(low[i]), upper: Some(high[i]) })
            .collect(),
        dim_x: dx,
        bound_method: BoundMethod::Reject,
        theta_shift: shift,
        theta_scale: scale,
        x_mean: t.float("x_standardize.mean", &[dx])?,
        x_std: t.float("x_standardize.std", &[dx])?,
        base_log_z: SBIPIX_LOG_Z_F32,
        // SBIPIX's bounds are the prior's box (rejection above)
        theta_support: Vec::new(),
    };
    config.validate(&t.path)?;
    Ok(FlowModel { config, net: Net::Maf(Maf { dim: d, layers }) })
}

//! Training checkpoints: the state after every epoch (weights, Adam moments, best weights, the
//! schedule's counters), written atomically, read back by `--resume`.

use crate::error::{FlowError, Result};
use crate::train::{EpochReport, TrainConfig};
use crate::train_net::{Adam, Params};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    pub(crate) epoch_done: usize,
    pub(crate) lr: f64,
    pub(crate) best_val: f64,
    pub(crate) best_epoch: usize,
    pub(crate) since_best: usize,
    pub(crate) since_lr: usize,
    pub(crate) adam_step: u64,
    pub(crate) epochs: Vec<EpochReport>,
    pub(crate) config: TrainConfig,
    pub(crate) n: usize,
}

pub(crate) fn save_checkpoint(dir: &Path, p: &Params, adam: &Adam, best: &[Vec<f32>], st: &CheckpointState) -> Result<()> {
    let err = |e: String| FlowError::Model { path: dir.display().to_string(), reason: e };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let mut hm: HashMap<String, Tensor> = HashMap::new();
    let (pv, mv, vv, bv) = (adam.tensors(p, &adam.p)?, adam.tensors(p, &adam.m)?, adam.tensors(p, &adam.v)?, adam.tensors(p, best)?);
    for (i, (name, _)) in p.vars.iter().enumerate() {
        hm.insert(format!("param.{name}"), pv[i].clone());
        hm.insert(format!("adam_m.{name}"), mv[i].clone());
        hm.insert(format!("adam_v.{name}"), vv[i].clone());
        hm.insert(format!("best.{name}"), bv[i].clone());
    }
    let tmp = dir.join("checkpoint.safetensors.tmp");
    candle_core::safetensors::save(&hm, &tmp)?;
    std::fs::rename(&tmp, dir.join("checkpoint.safetensors")).map_err(|e| err(e.to_string()))?;
    let js = dir.join("checkpoint.json.tmp");
    std::fs::write(&js, serde_json::to_string_pretty(st).expect("state serialises")).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&js, dir.join("checkpoint.json")).map_err(|e| err(e.to_string()))?;
    Ok(())
}

pub(crate) fn load_checkpoint(
    dir: &Path,
    p: &Params,
    adam: &mut Adam,
    best: &mut [Vec<f32>],
    st: &mut CheckpointState,
    cfg: &TrainConfig,
    n: usize,
) -> Result<()> {
    let err = |e: String| FlowError::Model { path: dir.display().to_string(), reason: e };
    let text = std::fs::read_to_string(dir.join("checkpoint.json")).map_err(|e| err(format!("checkpoint.json: {e}")))?;
    let saved: CheckpointState = serde_json::from_str(&text).map_err(|e| err(format!("checkpoint.json: {e}")))?;
    if saved.config.architecture != cfg.architecture || saved.config.seed != cfg.seed || saved.n != n {
        return Err(err("the checkpoint was made with another architecture, seed or training set".into()));
    }
    let ts = candle_core::safetensors::load(dir.join("checkpoint.safetensors"), &Device::Cpu)?;
    let get = |k: &str, like: &Tensor| -> Result<Vec<f32>> {
        let t = ts.get(k).ok_or_else(|| err(format!("checkpoint lacks `{k}`")))?;
        if t.dims() != like.dims() {
            return Err(err(format!("`{k}` has shape {:?}, the model {:?} (another architecture?)", t.dims(), like.dims())));
        }
        Ok(t.flatten_all()?.to_vec1::<f32>()?)
    };
    for (i, (name, v)) in p.vars.iter().enumerate() {
        adam.p[i] = get(&format!("param.{name}"), v.as_tensor())?;
        adam.m[i] = get(&format!("adam_m.{name}"), v.as_tensor())?;
        adam.v[i] = get(&format!("adam_v.{name}"), v.as_tensor())?;
        best[i] = get(&format!("best.{name}"), v.as_tensor())?;
    }
    for ((_, v), t) in p.vars.iter().zip(adam.tensors(p, &adam.p)?) {
        v.set(&t)?;
    }
    adam.step = saved.adam_step;
    *st = CheckpointState { config: cfg.clone(), ..saved };
    Ok(())
}

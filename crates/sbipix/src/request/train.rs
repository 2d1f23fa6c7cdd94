//! `sbipix train`, `sbipix.train`.

use crate::inference::model::ModelManifest;
use crate::inference::training::{TrainRun, train_model};
use crate::{Error, Result};
use sbipix_flow::Architecture;
use sbipix_flow::dense::Activation;
use sbipix_flow::train::{EpochReport, Schedule, TrainConfig, TrainReport};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The kind of normalizing flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// Neural spline flow with coupling layers: cheap in both directions.
    #[default]
    Nsf,
    /// Masked autoregressive flow (sbi's default).
    Maf,
}

impl std::str::FromStr for FlowKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nsf" => Ok(Self::Nsf),
            "maf" => Ok(Self::Maf),
            _ => Err(Error::invalid("flow", s, "unknown flow (nsf, maf)")),
        }
    }
}

/// A learning-rate schedule by name (`plateau`, `cosine`).
pub fn parse_schedule(s: &str) -> Result<Schedule> {
    match s {
        "plateau" => Ok(Schedule::Plateau),
        "cosine" => Ok(Schedule::Cosine),
        _ => Err(Error::invalid("schedule", s, "unknown learning-rate schedule (plateau, cosine)")),
    }
}

/// A flow trained on a training set, written as a model folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainRequest {
    /// Training set folder (`sbipix simulate`).
    pub data: PathBuf,
    /// Output model folder.
    pub out: PathBuf,
    pub flow: FlowKind,
    /// Flow transforms (coupling layers / MADEs).
    pub layers: usize,
    /// Hidden units per layer.
    pub hidden: usize,
    /// Hidden layers of each conditioner (NSF) / hidden blocks after the first (MAF).
    pub hidden_layers: usize,
    /// Spline bins (NSF).
    pub bins: usize,
    /// Width of the MLP of a conditional affine map before the spline couplings (NSF); 0: none.
    pub affine_hidden: usize,
    /// Infer only these parameters of the training set, in this order; None: all of them.
    pub params: Option<Vec<String>>,
    /// The network's input encoding; None: the training set's (`asinh_flux`).
    pub encoding: Option<sbipix_sim::EncodingKind>,
    pub seed: u64,
    pub batch_size: usize,
    /// Learning rate; None: the flow's own (1e-3 NSF, 5e-4 MAF).
    pub lr: Option<f64>,
    pub max_epochs: usize,
    pub schedule: Schedule,
    /// Stop after this many epochs without a better validation loss.
    pub patience: usize,
    /// Checkpoint folder; None: `OUT.checkpoint`.
    pub checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint.
    pub resume: bool,
    /// Replace an existing output folder.
    pub overwrite: bool,
    /// Data-parallel chunks per mini-batch (= threads); None: every core. The same seed and
    /// thread count give the same model.
    pub threads: Option<usize>,
}

impl Default for TrainRequest {
    /// The flow's own defaults ([`TrainConfig::nsf`]), as a front end asks for them.
    fn default() -> Self {
        let c = TrainConfig::nsf();
        let Architecture::Nsf { layers, hidden, extra_hidden_layers, bins, affine_hidden, .. } = c.architecture else {
            unreachable!("TrainConfig::nsf() is an NSF")
        };
        Self {
            data: PathBuf::new(),
            out: PathBuf::new(),
            flow: FlowKind::Nsf,
            layers,
            hidden,
            hidden_layers: extra_hidden_layers + 1,
            bins,
            affine_hidden,
            params: None,
            encoding: None,
            seed: c.seed,
            batch_size: c.batch_size,
            lr: None,
            max_epochs: c.max_epochs,
            schedule: c.schedule,
            patience: c.patience,
            checkpoint: None,
            resume: false,
            overwrite: false,
            threads: None,
        }
    }
}

impl TrainRequest {
    /// Refuses bad numbers: layers, hidden units, hidden layers, epochs ≥ 1; batches ≥ 2; NSF
    /// bins ≥ 2; a learning rate > 0; threads ≥ 1.
    pub fn validate(&self) -> Result<()> {
        super::at_least("layers", self.layers, 1, "the number of flow transforms")?;
        super::at_least("hidden", self.hidden, 1, "the number of hidden units per layer")?;
        super::at_least("hidden_layers", self.hidden_layers, 1, "the number of hidden layers")?;
        super::at_least("batch_size", self.batch_size, 2, "the batch size")?;
        super::at_least("max_epochs", self.max_epochs, 1, "the number of epochs")?;
        if self.flow == FlowKind::Nsf {
            super::at_least("bins", self.bins, 2, "the number of spline bins")?;
        }
        if let Some(lr) = self.lr
            && !(lr.is_finite() && lr > 0.0)
        {
            return Err(Error::invalid("lr", lr, "the learning rate must be a finite number > 0"));
        }
        if let Some(t) = self.threads {
            super::at_least("threads", t, 1, "the number of threads")?;
        }
        Ok(())
    }

    /// The flow's training settings.
    pub fn config(&self) -> TrainConfig {
        let base = match self.flow {
            FlowKind::Nsf => TrainConfig::nsf(),
            FlowKind::Maf => TrainConfig::maf(),
        };
        let architecture = match self.flow {
            FlowKind::Nsf => Architecture::Nsf {
                layers: self.layers,
                hidden: self.hidden,
                extra_hidden_layers: self.hidden_layers.saturating_sub(1),
                bins: self.bins,
                tail_bound: sbipix_flow::DEFAULT_TAIL_BOUND,
                affine_hidden: self.affine_hidden,
            },
            FlowKind::Maf => {
                Architecture::Maf { layers: self.layers, hidden: self.hidden, blocks: self.hidden_layers, activation: Activation::Relu }
            }
        };
        TrainConfig {
            architecture,
            batch_size: self.batch_size,
            learning_rate: self.lr.unwrap_or(base.learning_rate),
            max_epochs: self.max_epochs,
            patience: self.patience,
            schedule: self.schedule,
            seed: self.seed,
            threads: self.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
            ..base
        }
    }

    /// The checkpoint folder: `checkpoint`, or `OUT.checkpoint`.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.checkpoint.clone().unwrap_or_else(|| {
            let mut p = self.out.clone().into_os_string();
            p.push(".checkpoint");
            PathBuf::from(p)
        })
    }

    /// Trains and writes the model folder (atomically); `progress` after every epoch. The
    /// checkpoint is removed once the model is written (kept after a failure, for `resume`).
    pub fn run(&self, progress: &mut dyn FnMut(&EpochReport)) -> Result<(ModelManifest, TrainReport)> {
        self.validate()?;
        if self.out.exists() && !self.overwrite {
            return Err(sbipix_io::IoError::OutputExists { path: self.out.clone() }.into());
        }
        let checkpoint = self.checkpoint_dir();
        if self.resume && !checkpoint.join("checkpoint.json").is_file() {
            return Err(Error::file(&checkpoint, "no checkpoint to resume from (checkpoint.json)"));
        }
        let run = TrainRun {
            checkpoint: Some(&checkpoint),
            resume: self.resume,
            overwrite: self.overwrite,
            params: self.params.as_deref(),
            encoding: self.encoding,
        };
        let r = train_model(&self.data, &self.out, &self.config(), run, progress)?;
        // the checkpoint has served its purpose once the model is written
        let _ = std::fs::remove_dir_all(&checkpoint);
        Ok(r)
    }
}

//! The stage binary's commands. Each reads declared inputs, computes a claim with a verdict from
//! the data, and writes `claim` (Parquet), `figure_png` and `figure_svg`.
//!
//! | command | claim | inputs |
//! |---|---|---|
//! | `c3` | minimal model: transition in K, abrupt acquisition, transience | `summaries`, `curves` (K sweep); `transient_summaries`, `transient_curves` (optional) |
//! | `c4` | loss landscape over (w, beta) | none; or `curves` + `summaries` of MLP-only runs to set the memorized distribution |
//! | `c5` | memorization law I_K(inf) ~ K^nu | `curves`, `summaries` (MLP-only, K x seed) |
//! | `c6` | K* ~ N^(1/nu) | `summaries` (transformer, K x N x seed); `nu_claim` (optional, the c5 claim) |
//! | `c13` | t_ICL ~ N e^-beta0, K* ~ N^(1/nu) e^(-beta0/nu) | `summaries` (minimal, K = inf, beta0 x N x seed); `curves` (optional); `kstar_summaries` + `mlp_curves` + `mlp_summaries` (optional) |

mod c13;
mod c3;
mod c4;
mod c5;
mod c6;
mod common;

pub use c13::C13Params;
pub use c3::C3Params;
pub use c4::C4Params;
pub use c5::C5Params;
pub use c6::C6Params;

use icl_store::task::{check_params, ParamError, Stage, TaskSpec};

pub const COMMANDS: [&str; 5] = ["c3", "c4", "c5", "c6", "c13"];

/// The `icl-fit-nu` stage.
pub struct FitNuStage;

fn check_typed<P: serde::de::DeserializeOwned + common::Validate>(
    params: &serde_json::Value,
) -> Vec<ParamError> {
    match check_params::<P>(params) {
        Ok(p) => p.validate(),
        Err(e) => e,
    }
}

impl Stage for FitNuStage {
    fn check(&self, command: &str, params: &serde_json::Value) -> Vec<ParamError> {
        match command {
            "c3" => check_typed::<C3Params>(params),
            "c4" => check_typed::<C4Params>(params),
            "c5" => check_typed::<C5Params>(params),
            "c6" => check_typed::<C6Params>(params),
            "c13" => check_typed::<C13Params>(params),
            other => vec![ParamError::new(
                "command",
                format!(
                    "unknown command `{other}`; allowed: {}",
                    COMMANDS.join(", ")
                ),
            )],
        }
    }

    fn run(&self, task: &TaskSpec) -> anyhow::Result<()> {
        let errs = self.check(&task.command, &task.params);
        if !errs.is_empty() {
            let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "stage {}: invalid parameters: {}",
                task.stage,
                msgs.join("; ")
            );
        }
        let out = match task.command.as_str() {
            "c3" => c3::run(task, &task.params_as()?)?,
            "c4" => c4::run(task, &task.params_as()?)?,
            "c5" => c5::run(task, &task.params_as()?)?,
            "c6" => c6::run(task, &task.params_as()?)?,
            "c13" => c13::run(task, &task.params_as()?)?,
            other => anyhow::bail!(
                "unknown command `{other}`; allowed: {}",
                COMMANDS.join(", ")
            ),
        };
        common::write_outputs(task, &out)
    }
}

//! The `icl` CLI: reads `pipeline.yaml`, expands stages into cached tasks, and runs the uncached
//! ones as child processes of the stage binaries. It knows nothing about the science.
//!
//! # pipeline.yaml
//!
//! ```yaml
//! version: 1                      # format version (only 1)
//! default_profile: quick          # profile used without --profile
//! publish_dir: results            # where `publish:` copies go (relative to this file)
//! diff:                           # how `icl diff` compares claim tables
//!   key: [claim]                  # columns that identify a row
//!   tolerances: {value: {abs: 0.05, rel: 0.25}, default: {abs: 0.0}}
//!   ignore: [details]             # columns not compared
//! slurm:                          # defaults of `reproduce --executor slurm` (all optional; a
//!   partition: cpu                #   profile's `slurm:` overrides key by key, the command line
//!   time: "2:00:00"               #   overrides both): account, mem, cpus_per_task,
//!   max_retries: 2                #   array_throttle, poll_interval too; see [`slurm`]
//! stages:
//!   items:
//!     bin: icl-datagen            # binary next to `icl`; its crate is crates/icl-datagen
//!     command: items              # sub-job of the binary (TaskSpec.command)
//!     params: {D: 63, data_seed: 1}
//!     matrix: {K: [1000, 2000]}   # one task per point of the cartesian product
//!     outputs: [items]            # the stage writes out_dir/items.<ext>
//!   testsets:
//!     bin: icl-datagen
//!     command: testsets
//!     params: {D: 63, N: 20, n_test: 2000, test_seed: 2, data_seed: 1}
//!     matrix: {K: [1000, 2000]}
//!     inputs: {items: items.items}   # the items task whose matrix values equal my params
//!     outputs: [novel_items, icl_test, iwl_test]
//!   claim_c1:
//!     bin: icl-eval
//!     command: c1
//!     inputs: {summaries: "train.summary[*]"}   # [*] gathers every matching upstream task
//!     outputs: [claim, figure_png]
//!     publish: {figure_png: figures/c1.png}     # copied into publish_dir after the run
//!     threads: 1                                # TaskSpec.threads and RAYON_NUM_THREADS
//! profiles:
//!   ci:    {publish_dir: results/ci, stages: {train: {params: {epochs: 2}, matrix: {seed: [0, 1]}}}}
//!   quick: {}
//! ```
//!
//! **Writing each setting once** (see [`compose`]):
//!
//! ```yaml
//! defaults:                        # named parameter sets
//!   data: {D: 63, data_seed: 1}
//!   training: {lr: 0.01, batch: 128}
//! templates:                       # a chain of stages, written once
//!   experiment:
//!     items: {bin: icl-datagen, command: items, use: data, takes: [K], outputs: [items]}
//!     train:
//!       bin: icl-train
//!       command: train
//!       use: [data, training]      # inherited in order, then overridden
//!       inputs: {items: items.items}   # a role of the template: this experiment's stage
//!       outputs: [curve, summary]
//! stages:
//!   sweep:                         # an experiment: expands to items_sweep, train_sweep
//!     template: experiment
//!     params: {N: 8}               # to every stage whose `takes` lists it (no `takes`: all)
//!     matrix: {K: [64, 128], seed: [0, 1]}   # likewise
//!     names: {train: train_k}      # optional: another name than <role>_<experiment>
//!     share: {items: items_other}  # optional: use an existing stage instead of generating one
//!   claim_c1: {bin: icl-eval, command: c1, use: data, inputs: ..., outputs: [claim]}
//! profiles:
//!   ci:
//!     defaults: {training: {lr: 0.1}}          # change a set for every stage using it
//!     stages:
//!       sweep: {matrix: {K: [64]}}             # change an experiment: its stages follow
//!       train_sweep: {params: {epochs: 1}}     # or one generated stage by name
//! ```
//!
//! Layers, lowest first: `use:` sets, the template's `params`, the experiment's, then the
//! profile's changes (sets, experiment, stage by name). Every value keeps the line it was written
//! on, for errors. In the file `null` is a value (`early_stop: null`); in a profile it deletes.
//! The expansion is pure rewriting: a stage written out in full and the same stage produced by
//! an experiment have identical tasks and cache keys.
//!
//! **Matrix axes**: a list of values; `{range: [a, b]}` (integers a..b, b exclusive);
//! `{logspace: [a, b, n]}` (n points from 10^a to 10^b inclusive, floats at 12 significant
//! digits); `{linspace: [a, b, n]}` (n points from a to b inclusive; integers when a and b are
//! integers and every point is integral). Either generator takes `round: int` or `round: even`
//! for integers (`{logspace: [2.5, 5, 11], round: even}`); which values a parameter accepts
//! (K even, say) is the stage binary's `check`. The first key varies slowest. Values in an axis
//! must be distinct. YAML `.inf` becomes the string `"inf"` (`K: [1000, .inf]`).
//!
//! **Matrix blocks**: `matrix:` may be a list of such mappings; the tasks are the union of the
//! blocks' products (axes that move together, such as a K range and a budget per N):
//!
//! ```yaml
//! matrix:
//!   - {N: [8], epochs: [30], K: [256, 512, 1024], seed: {range: [0, 5]}}
//!   - {N: [16], epochs: [60], K: [512, 1024, 2048], seed: {range: [0, 5]}}
//! ```
//!
//! Every block has the same keys (the first block's order is the matrix-key order). A point
//! two blocks share is one task (as when an experiment's items stage takes only K).
//!
//! **Params passed to the binary** = the stage's params with the matrix point applied (matrix
//! values override params): one flat JSON object (values may themselves be objects).
//!
//! **Inputs**: `stage.output` feeds exactly one upstream task: the one whose every matrix key
//! equals this task's param of that name (an upstream stage without a matrix always matches);
//! zero or several matches is a config error. `stage.output[*]` gathers all upstream tasks in
//! matrix order, keeping those whose matrix values equal this task's params where this task has
//! a param of that name. A list of references concatenates.
//!
//! **Profiles** deep-merge `params` into the stage's (`null` deletes a key), replace `matrix`
//! axes key by key in every block (`null` deletes an axis; new keys are appended) or, given a
//! list of blocks, replace the whole matrix, and may set `threads` and
//! `publish_dir`; keyed by a stage, an experiment or a generated stage's name. `defaults:`
//! deep-merges into the named sets. `--profile` picks one; otherwise `default_profile`.
//!
//! **Validation** (exit code 2, nothing written, not even `data/`): unknown keys and wrong types
//! (serde, with line and column), unknown profiles, inputs naming missing stages or outputs,
//! cycles, `publish` on a matrix stage, unmatched single inputs, and the science params of
//! every task through `BIN check`, each error mapped back to the YAML line the value came from
//! (the stage's params or matrix, or the profile override that set it).
//!
//! # Store, keys, scheduling
//!
//! See [`key`] (the cache key), [`fingerprint`] (code fingerprints), `icl_store::store` (object
//! and record layout), [`run`] (scheduler), [`state`] (what counts as cached).

pub mod app;
pub mod check;
pub mod cli;
pub mod compose;
pub mod config;
pub mod diff;
pub mod error;
pub mod fingerprint;
pub mod gc;
pub mod key;
pub mod listing;
pub mod lock;
pub mod plan;
pub mod progress;
pub mod run;
pub mod runs;
pub mod signals;
pub mod slurm;
pub mod state;
pub mod status;
pub mod yamlpos;

//! The `icl` command line (clap). Exit codes: 0 ok (or `diff`: same), 1 task failure (or `diff`:
//! different), 2 bad usage or bad pipeline.yaml, 3 store locked and `--no-wait`, 130 interrupted.

use crate::app::{Ctx, Env};
use crate::config::Config;
use crate::error::CliError;
use crate::run::{ExecutorKind, RunOpts};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "icl",
    version,
    about = "Cached pipeline runner for the ICL kinetics reproduction",
    long_about = "Runs the stages declared in pipeline.yaml as cached tasks (one per matrix point), \
                  storing every artifact under data/objects/ named by its blake3.\n\n\
                  Exit codes: 0 ok, 1 a task failed (diff: tables differ), 2 bad usage or bad \
                  pipeline.yaml, 3 store locked with --no-wait, 130 interrupted."
)]
pub struct Cli {
    /// The pipeline file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "pipeline.yaml"
    )]
    pub file: PathBuf,
    /// The artifact store [default: data/ next to the pipeline file].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Folder holding the stage binaries [default: the folder of `icl`; env ICL_BIN_DIR].
    #[arg(long, global = true)]
    pub bin_dir: Option<PathBuf>,
    /// Cargo workspace whose crates are fingerprinted [default: found above the pipeline file;
    /// env ICL_WORKSPACE].
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run every task that is not cached (then publish results).
    Reproduce {
        /// Profile to apply [default: default_profile of pipeline.yaml].
        #[arg(long)]
        profile: Option<String>,
        /// Tasks run in parallel [default: number of cores].
        #[arg(short, long, value_parser = clap::value_parser!(u64).range(1..))]
        jobs: Option<u64>,
        /// Run only this stage and what it needs (repeatable).
        #[arg(long = "stage", value_name = "STAGE")]
        stages: Vec<String>,
        /// Where `publish:` copies go [default: the profile's publish_dir].
        #[arg(long)]
        publish_dir: Option<PathBuf>,
        /// Exit with code 3 instead of waiting when another runner holds the store's lock.
        #[arg(long)]
        no_wait: bool,
        /// Where tasks run: `local` child processes, or `slurm` job arrays (the store must be on
        /// a filesystem the compute nodes share).
        #[arg(long, value_enum, default_value_t = ExecutorArg::Local)]
        executor: ExecutorArg,
        #[command(flatten)]
        slurm: SlurmArgs,
    },
    /// Per stage: tasks cached, to run, and blocked on upstream tasks that must run first.
    Status {
        #[arg(long)]
        profile: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// For each task of STAGE that would run: which key component changed since its last run.
    Why {
        stage: String,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One table of every task of STAGE: matrix values, run record and, for stages with a
    /// `summary` output, its columns. Parquet or CSV by the extension of --out; else printed.
    Runs {
        stage: String,
        #[arg(long)]
        profile: Option<String>,
        /// Write the table here (.parquet or .csv).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Every task of a profile with its key components, digest and (when known) key.
    #[command(hide = true)]
    Plan {
        #[arg(long)]
        profile: Option<String>,
        /// Machine-readable output (the only format).
        #[arg(long)]
        json: bool,
    },
    /// Compare two tables (Parquet files, or folders holding claims.parquet); Markdown report.
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// Key columns matching rows [default: diff.key of pipeline.yaml; none = by position].
        #[arg(long = "key", value_name = "COL")]
        keys: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete objects, run records and logs that no task of the pipeline (any profile) reaches.
    Gc {
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        no_wait: bool,
    },
    /// Check pipeline.yaml (structure, references, cycles, stage params) and exit.
    Validate {
        /// Check only this profile [default: every profile].
        #[arg(long)]
        profile: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorArg {
    Local,
    Slurm,
}

/// `--executor slurm` options; each overrides the `slurm:` key of the same name in
/// pipeline.yaml (and its profile).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Slurm executor (override the slurm: section of pipeline.yaml)")]
pub struct SlurmArgs {
    /// sbatch --partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// sbatch --account.
    #[arg(long)]
    pub account: Option<String>,
    /// sbatch --time per array task (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S).
    #[arg(long)]
    pub time: Option<String>,
    /// sbatch --mem per array task (e.g. 4G).
    #[arg(long)]
    pub mem: Option<String>,
    /// sbatch --cpus-per-task [default: the largest `threads` of a batch's tasks].
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// At most this many array tasks of one job at once (--array=0-N%THROTTLE).
    #[arg(long)]
    pub array_throttle: Option<u32>,
    /// Resubmit a failed array task up to this many times [default: 2].
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Seconds between squeue polls [default: 10].
    #[arg(long)]
    pub poll_interval: Option<f64>,
}

impl SlurmArgs {
    fn any(&self) -> bool {
        self.partition.is_some()
            || self.account.is_some()
            || self.time.is_some()
            || self.mem.is_some()
            || self.cpus_per_task.is_some()
            || self.array_throttle.is_some()
            || self.max_retries.is_some()
            || self.poll_interval.is_some()
    }

    fn raw(&self) -> crate::config::RawSlurm {
        crate::config::RawSlurm {
            partition: self.partition.clone(),
            account: self.account.clone(),
            time: self.time.clone(),
            mem: self.mem.clone(),
            cpus_per_task: self.cpus_per_task,
            array_throttle: self.array_throttle,
            max_retries: self.max_retries,
            poll_interval: self.poll_interval,
        }
    }
}

/// The executor from `--executor` and the slurm options (file, profile, then command line).
fn executor(ctx: &Ctx, arg: ExecutorArg, args: &SlurmArgs) -> Result<ExecutorKind, CliError> {
    match arg {
        ExecutorArg::Local => {
            if args.any() {
                return Err(CliError::Usage(
                    "the Slurm options (--partition, --account, --time, --mem, --cpus-per-task, \
                     --array-throttle, --max-retries, --poll-interval) need --executor slurm"
                        .into(),
                ));
            }
            Ok(ExecutorKind::Local)
        }
        ExecutorArg::Slurm => {
            let file = ctx.cfg.slurm(&ctx.plan.res.profile)?;
            let cli = args.raw();
            if let Some((k, msg)) = cli.problems().into_iter().next() {
                return Err(CliError::Usage(format!("--{}: {msg}", k.replace('_', "-"))));
            }
            Ok(ExecutorKind::Slurm(file.merged(&cli).settings()))
        }
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help / --version exit 0, usage errors exit 2.
            e.exit();
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match &e {
                CliError::Different | CliError::Interrupted => {}
                other => eprintln!("{other}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let env = Env::new(
        cli.file.clone(),
        cli.data_dir.clone(),
        cli.bin_dir.clone(),
        cli.workspace.clone(),
    )?;
    match cli.cmd {
        Cmd::Reproduce {
            profile,
            jobs,
            stages,
            publish_dir,
            no_wait,
            executor: exec_arg,
            slurm,
        } => {
            let ctx = Ctx::load(&env, profile.as_deref(), true)?;
            let executor = executor(&ctx, exec_arg, &slurm)?;
            let jobs = jobs.map(|j| j as usize).unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            crate::run::reproduce(
                &ctx,
                &RunOpts {
                    jobs,
                    stages,
                    publish_dir,
                    no_wait,
                    executor,
                },
            )?;
            Ok(())
        }
        Cmd::Status { profile, json } => {
            let ctx = Ctx::load(&env, profile.as_deref(), true)?;
            crate::status::status(&ctx, json)
        }
        Cmd::Why {
            stage,
            profile,
            json,
        } => {
            let ctx = Ctx::load(&env, profile.as_deref(), true)?;
            crate::status::why(&ctx, &stage, json)
        }
        Cmd::Runs {
            stage,
            profile,
            out,
        } => {
            let ctx = Ctx::load(&env, profile.as_deref(), true)?;
            crate::runs::runs(&ctx, &stage, out.as_deref())
        }
        Cmd::Plan { profile, json: _ } => {
            let ctx = Ctx::load(&env, profile.as_deref(), true)?;
            println!("{}", crate::listing::plan_json(&ctx)?);
            Ok(())
        }
        Cmd::Diff { a, b, keys, json } => {
            // The diff section is optional; without a pipeline file: no keys, exact comparison.
            let cfg = if env.file.exists() {
                Config::load(&env.file)?.diff_config()
            } else {
                Default::default()
            };
            let rep = crate::diff::diff_files(&a, &b, &cfg, &keys)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rep).map_err(anyhow::Error::from)?
                );
            } else {
                print!("{}", crate::diff::markdown(&rep));
            }
            if rep.same {
                Ok(())
            } else {
                Err(CliError::Different)
            }
        }
        Cmd::Gc { dry_run, no_wait } => {
            crate::gc::gc(&env, dry_run, no_wait)?;
            Ok(())
        }
        Cmd::Validate { profile } => {
            let cfg = Config::load(&env.file)?;
            let profiles: Vec<Option<String>> = match profile {
                Some(p) => vec![Some(p)],
                None if cfg.profile_names().is_empty() => vec![None],
                None => cfg.profile_names().into_iter().map(Some).collect(),
            };
            let mut all_errs = Vec::new();
            let mut lines = Vec::new();
            // The default profile must exist too (each named profile is checked below).
            if let Err(e) = cfg.resolve(None) {
                all_errs.extend(e.0);
            }
            for p in &profiles {
                match Ctx::from_config(&env, cfg.clone(), p.as_deref(), true) {
                    Ok(ctx) => lines.push(format!(
                        "profile {}: {} stage(s), {} task(s)",
                        ctx.plan.res.profile,
                        ctx.plan.res.stages.len(),
                        ctx.plan.tasks.len()
                    )),
                    Err(CliError::Config(errs)) => {
                        for e in errs.0 {
                            if !all_errs.contains(&e) {
                                all_errs.push(e);
                            }
                        }
                    }
                    Err(other) => return Err(other),
                }
            }
            if !all_errs.is_empty() {
                return Err(CliError::Config(crate::error::ConfigErrors(all_errs)));
            }
            println!("{} is valid", env.file.display());
            for l in lines {
                println!("  {l}");
            }
            Ok(())
        }
    }
}

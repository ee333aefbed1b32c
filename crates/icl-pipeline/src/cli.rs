//! The `icl` command line (clap). Exit codes: 0 ok (or `diff`: same), 1 task failure (or `diff`:
//! different), 2 bad usage or bad pipeline.yaml, 3 store locked and `--no-wait`, 130 interrupted.

use crate::app::{Ctx, Env};
use crate::config::Config;
use crate::error::CliError;
use crate::run::RunOpts;
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
        } => {
            let ctx = Ctx::load(&env, profile.as_deref(), true)?;
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

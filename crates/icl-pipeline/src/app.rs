//! Loading everything a command needs: the config, one profile's plan, code fingerprints, the
//! stage binaries' parameter checks and the store handle. Nothing here writes to disk.

use crate::check;
use crate::config::Config;
use crate::error::{CliError, ConfigErrors};
use crate::fingerprint::Fingerprinter;
use crate::plan::Plan;
use icl_store::store::Store;
use std::path::{Path, PathBuf};

/// Where things are: the pipeline file, the store, the stage binaries and the workspace sources.
#[derive(Debug, Clone)]
pub struct Env {
    pub file: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub bin_dir: PathBuf,
    pub workspace: PathBuf,
}

impl Env {
    /// Resolve locations: explicit options first, then `ICL_BIN_DIR` / `ICL_WORKSPACE`, then
    /// defaults (binaries next to `icl`; the Cargo workspace above the pipeline file, else the
    /// one `icl` was built from).
    pub fn new(
        file: PathBuf,
        data_dir: Option<PathBuf>,
        bin_dir: Option<PathBuf>,
        workspace: Option<PathBuf>,
    ) -> anyhow::Result<Env> {
        let bin_dir = match bin_dir.or_else(|| std::env::var_os("ICL_BIN_DIR").map(PathBuf::from)) {
            Some(d) => d,
            None => std::env::current_exe()?
                .parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| anyhow::anyhow!("cannot find the folder of the icl binary"))?,
        };
        let workspace =
            match workspace.or_else(|| std::env::var_os("ICL_WORKSPACE").map(PathBuf::from)) {
                Some(w) => w,
                None => find_workspace(&file).unwrap_or_else(|| {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("..")
                        .join("..")
                }),
            };
        Ok(Env {
            file,
            data_dir,
            bin_dir: absolute(&bin_dir),
            workspace: absolute(&workspace),
        })
    }

    /// The store: `--data-dir`, else `data/` next to the pipeline file (absolute, so task files
    /// can name inputs by absolute path).
    pub fn store(&self, cfg: &Config) -> Store {
        let root = match &self.data_dir {
            Some(d) => absolute(d),
            None => cfg.dir.join("data"),
        };
        Store::new(root)
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The nearest folder at or above the pipeline file holding a `Cargo.toml` with `[workspace]`.
fn find_workspace(file: &Path) -> Option<PathBuf> {
    let start = absolute(file);
    let mut dir = start.parent();
    while let Some(d) = dir {
        let toml = d.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&toml) {
            if text.lines().any(|l| l.trim() == "[workspace]") {
                return Some(d.to_path_buf());
            }
        }
        dir = d.parent();
    }
    None
}

/// One profile of the pipeline, ready to probe or run.
pub struct Ctx {
    pub env: Env,
    pub cfg: Config,
    pub plan: Plan,
    /// Code fingerprint per stage (indexed like `plan.res.stages`).
    pub codes: Vec<String>,
    pub store: Store,
}

impl Ctx {
    /// Load and validate. `check_params`: also run every stage binary's `check`.
    pub fn load(env: &Env, profile: Option<&str>, check_params: bool) -> Result<Ctx, CliError> {
        let cfg = Config::load(&env.file)?;
        Self::from_config(env, cfg, profile, check_params)
    }

    pub fn from_config(
        env: &Env,
        cfg: Config,
        profile: Option<&str>,
        check_params: bool,
    ) -> Result<Ctx, CliError> {
        let res = cfg.resolve(profile)?;
        let plan = Plan::build(&cfg, res)?;
        let mut fp = Fingerprinter::new(&env.workspace).map_err(CliError::Other)?;
        let mut codes = Vec::new();
        let mut errs = Vec::new();
        for s in &plan.res.stages {
            match fp.fingerprint(&s.bin) {
                Ok(c) => codes.push(c),
                Err(e) => {
                    errs.push(cfg.err_at(
                        &s.yaml(&["bin"]),
                        format!(
                            "{e:#} (allowed: a crate folder crates/<bin> in the workspace {})",
                            fp.workspace().display()
                        ),
                    ));
                    codes.push(String::new());
                }
            }
        }
        if !errs.is_empty() {
            return Err(ConfigErrors(errs).into());
        }
        if check_params {
            check::check_params(&cfg, &plan, &env.bin_dir)?;
        }
        let store = env.store(&cfg);
        Ok(Ctx {
            env: env.clone(),
            cfg,
            plan,
            codes,
            store,
        })
    }
}

//! Memorization law (nu), the theory's reduced dynamics, K*(N) fits, and the stage `icl-fit-nu`
//! that turns them into claims C3, C4, C5, C6 and C13.
//!
//! - [`ode`]: adaptive Dormand-Prince integrator with a terminal event (finite-time blow-up).
//! - [`theory`]: the reduced (w, beta) dynamics, s*(beta0), t_ICL(N, beta0), predicted K*.
//! - [`landscape`]: the exact data-averaged loss over (w, beta), its gradient and flow.
//! - [`memo`]: I_K(t), saturation, nu with a bootstrap interval.
//! - [`kstar`]: K* per N (the one definition, `icl_claim::kstar`), log K* vs log N with a bootstrap interval.
//! - statistics (trapezoids, least squares, quantiles, seeded resampling): `icl_claim::stats`.
//! - [`io`]: artifacts -> polars frames -> typed rows.
//! - [`stage`]: the stage commands `c3`, `c4`, `c5`, `c6`, `c13`.

pub mod io;
pub mod kstar;
pub mod landscape;
pub mod memo;
pub mod ode;
pub mod stage;
pub mod theory;

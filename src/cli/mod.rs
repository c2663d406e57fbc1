//! Command-line interface: the raw `clap` arguments (`cli/args.rs`) and their resolution into a
//! validated [`Config`](crate::config::Config) and [`RunOptions`](crate::engine::pipeline::RunOptions)
//! (`cli/resolve.rs`: [`run_config`], [`run_options`]), in one place (ripgrep's lowargs → hiargs split).

mod args;
mod resolve;

pub use args::*;
pub use resolve::{device_options, run_config, run_options, system_flag, together};

//! Configuration: the YAML file, the environment (zero-config), and the
//! validated internal form the proxy runs on.
pub mod model;
pub use model::*;

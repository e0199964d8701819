//! backstop: a backup server driven by SQL over the PostgreSQL wire protocol.
//!
//! A statement arrives in `server`, is parsed by `sql`, applied by `control` to the `catalog`
//! and the `executor`, whose jobs move bytes through the `engine` from a `source` to a
//! `storage` destination. Queries over the `views` are answered by DataFusion.

pub mod catalog;
pub mod control;
pub mod engine;
pub mod error;
pub mod events;
pub mod executor;
pub mod server;
pub mod source;
pub mod sql;
pub mod storage;
pub mod views;

//! bioxen's XAPI client: how it creates and watches Lua VMs on an XCP-ng pool.
//!
//! Layers, each knowing only the one below: [`transport`] (JSON-RPC over HTTPS with the
//! configured [`tls`] trust), [`client`] (sessions and typed calls), [`lifecycle`]
//! (create / stop / destroy with undo) and [`event_cache`] (a live copy of the pool
//! fed by `event.from`); [`rrd`] reads the pool's CPU and memory figures. [`wire`] holds the value encodings the simulator serves.

pub mod client;
pub mod event_cache;
pub mod lifecycle;
pub mod rrd;
pub mod tls;
pub mod transport;
pub mod wire;

pub use bioxen_proto::XapiError;
pub use client::{Login, XapiClient};
pub use event_cache::{EventCache, PoolStatus, PoolVm};
pub use lifecycle::StepError;

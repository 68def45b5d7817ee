//! What every Taproom binary reports the same way, router and subgraphs alike.
//!
//! - [`logs`]: the log format (`--log-format text|json`), colours only on a terminal, and the
//!   subscriber every `main` starts.
//! - [`context`]: the ids that tie one client request's log lines together across processes: the
//!   W3C `traceparent` (accepted from the client or started by the router, and passed on to every
//!   subgraph request) and `x-request-id` (accepted or generated, and echoed to the client).

pub mod context;
pub mod logs;
pub mod metrics;
pub mod traces;

//! Fetching pages from the API: `client` (HTTP, auth, retry, host pinning), `paginate` (one
//! file per pagination style behind the `Paginator` trait) and `extract` (finding the records
//! in a page body).

pub mod client;
pub mod extract;
mod page_scan;
pub mod page_size;
pub mod paginate;
pub mod request;
pub mod retry;
pub mod trace;
pub mod upstream;

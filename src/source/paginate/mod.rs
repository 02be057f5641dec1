//! Pagination styles (being written).

/// Which pagination style to use, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaginationConfig {
    Single,
}

//! What the Lambda runtime tells a function about itself, and what follows from it.
//!
//! These variables are set by Lambda, not by the deployment, so they are not among the
//! [`crate::settings`] variables that Terraform is checked against.

use tripline_core::Parallelism;

/// Set by Lambda: the function's memory, in MB.
pub const MEMORY_SIZE_VAR: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// Lambda memory that comes with one full vCPU; CPU is allotted in proportion to memory.
pub const ONE_VCPU_MB: u32 = 1769;

/// Whether work that can overlap on a second core (inflate, compress, detect) should get
/// threads of its own, given the function's memory ([`MEMORY_SIZE_VAR`], in MB). The threads
/// shorten an object only where there is more than one vCPU's worth of CPU; below that they
/// take turns on one share and only add their hand-over cost to what the function is billed
/// for (BENCHMARKS.md). Unknown (outside Lambda): use them.
pub fn parallelism(memory_mb: Option<&str>) -> Parallelism {
    let threads = memory_mb
        .and_then(|m| m.trim().parse::<u32>().ok())
        .is_none_or(|mb| mb > ONE_VCPU_MB);
    if threads {
        Parallelism::Threads
    } else {
        Parallelism::Inline
    }
}

/// [`parallelism`] for this process, from [`MEMORY_SIZE_VAR`].
pub fn parallelism_here() -> Parallelism {
    parallelism(std::env::var(MEMORY_SIZE_VAR).ok().as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads_pay(memory_mb: Option<&str>) -> bool {
        parallelism(memory_mb) == Parallelism::Threads
    }

    #[test]
    fn threads_only_with_more_than_one_vcpu() {
        assert!(!threads_pay(Some("128")));
        assert!(!threads_pay(Some("1024")));
        assert!(!threads_pay(Some("1769")));
        assert!(!threads_pay(Some(" 1769\n")));
        assert!(threads_pay(Some("1770")));
        assert!(threads_pay(Some("3008")));
        // Outside Lambda, or a value we can't read: the threads.
        assert!(threads_pay(None));
        assert!(threads_pay(Some("lots")));
    }
}

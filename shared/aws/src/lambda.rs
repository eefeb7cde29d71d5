//! What the Lambda runtime tells a function about itself, and what follows from it.
//!
//! These variables are set by Lambda, not by the deployment, so they are not among the
//! [`crate::settings`] variables that Terraform is checked against.

/// Set by Lambda: the function's memory, in MB.
pub const MEMORY_SIZE_VAR: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// Lambda memory that comes with one full vCPU; CPU is allotted in proportion to memory.
pub const ONE_VCPU_MB: u32 = 1769;

/// Whether work that can overlap on a second core (inflate, deflate) should get threads of its
/// own, given the function's memory ([`MEMORY_SIZE_VAR`], in MB). The threads shorten an object
/// only where there is more than one vCPU's worth of CPU; below that they take turns on one
/// share, and the same work inline used 4-11% less CPU in the bench (BENCHMARKS.md), which is
/// what such a function is billed for. Unknown (outside Lambda): use them.
pub fn threads_pay(memory_mb: Option<&str>) -> bool {
    memory_mb
        .and_then(|m| m.trim().parse::<u32>().ok())
        .is_none_or(|mb| mb > ONE_VCPU_MB)
}

/// [`threads_pay`] for this process, from [`MEMORY_SIZE_VAR`].
pub fn threads_pay_here() -> bool {
    threads_pay(std::env::var(MEMORY_SIZE_VAR).ok().as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

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

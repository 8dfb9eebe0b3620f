//! Memory and table limits for guest instances: a cap per instance, and a
//! budget shared by every instance running at once, so that a burst of
//! memory-hungry requests cannot push a small device into the OOM killer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmi::ResourceLimiter;
use wasmi::errors::MemoryError;
use wasmi_core::LimiterError;

/// Core instances one store may hold: a core module is one, a component is
/// one per core module it instantiates (real toolchains: 3 to 14).
const MAX_CORE_INSTANCES: usize = 32;

/// Linear memory all live instances hold together, in bytes.
pub struct MemoryBudget {
    used: AtomicUsize,
    total: usize,
    /// Instances holding a share of the budget now (live stores).
    instances: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(total: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            total,
            instances: AtomicUsize::new(0),
        })
    }

    fn try_reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|n| *n <= self.total)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Guest instances alive now.
    pub fn instances(&self) -> usize {
        self.instances.load(Ordering::Relaxed)
    }
}

/// One instance's limiter; what it reserved goes back to the budget when
/// the store (and with it the instance) is dropped.
pub struct GuestLimiter {
    memory_cap: usize,
    table_cap: usize,
    budget: Option<Arc<MemoryBudget>>,
    reserved: usize,
    /// Table elements of all the store's tables.
    table_elements: usize,
    /// A growth was refused because of the shared budget, not the instance's
    /// own cap: the request was unlucky, not the guest wrong.
    pub budget_refused: bool,
}

impl GuestLimiter {
    pub fn new(memory_cap: usize, table_cap: usize, budget: Option<Arc<MemoryBudget>>) -> Self {
        if let Some(budget) = &budget {
            budget.instances.fetch_add(1, Ordering::Relaxed);
        }
        Self {
            memory_cap,
            table_cap,
            budget,
            reserved: 0,
            table_elements: 0,
            budget_refused: false,
        }
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        // The cap covers all of the store's memories together: a component's
        // core modules share one instance's allowance.
        let delta = desired.saturating_sub(current);
        if self.reserved.saturating_add(delta) > self.memory_cap {
            return Ok(false);
        }
        if let Some(budget) = &self.budget
            && !budget.try_reserve(delta)
        {
            self.budget_refused = true;
            return Ok(false);
        }
        self.reserved += delta;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: &MemoryError) -> Result<(), LimiterError> {
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        // Like memory, the cap covers every table of the store together.
        let delta = desired.saturating_sub(current);
        if self.table_elements.saturating_add(delta) > self.table_cap {
            return Ok(false);
        }
        self.table_elements += delta;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn tables(&self) -> usize {
        4 * MAX_CORE_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_CORE_INSTANCES
    }
}

impl Drop for GuestLimiter {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.reserved);
            budget.instances.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grows(limiter: &mut GuestLimiter, current: usize, desired: usize) -> bool {
        limiter
            .memory_growing(current, desired, None)
            .expect("the limiter never errors")
    }

    #[test]
    fn the_budget_is_shared_and_returned() {
        let budget = MemoryBudget::new(100);
        let mut a = GuestLimiter::new(80, 10, Some(budget.clone()));
        let mut b = GuestLimiter::new(80, 10, Some(budget.clone()));
        assert!(grows(&mut a, 0, 60));
        assert!(!grows(&mut b, 0, 60));
        assert!(b.budget_refused);
        assert!(!grows(&mut a, 60, 90), "over the instance cap");
        assert!(!a.budget_refused);
        assert_eq!(budget.instances(), 2);
        drop(a);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.instances(), 1);
        assert!(grows(&mut b, 0, 60));
    }

    #[test]
    fn caps_cover_all_memories_and_tables_together() {
        let mut l = GuestLimiter::new(100, 10, None);
        assert!(grows(&mut l, 0, 60), "a first memory");
        assert!(!grows(&mut l, 0, 60), "a second one past the cap");
        assert!(grows(&mut l, 0, 40), "a second one within it");
        let table = |l: &mut GuestLimiter, current, desired| {
            l.table_growing(current, desired, None)
                .expect("never errors")
        };
        assert!(table(&mut l, 0, 6));
        assert!(!table(&mut l, 0, 6));
        assert!(table(&mut l, 0, 4));
    }
}

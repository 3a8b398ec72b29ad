//! One stable memory, shared out by a `MemoryManager`, with a reservation that grows it *before*
//! a write instead of during one.
//!
//! ic-stable-structures panics when a structure cannot grow its memory in the middle of a write:
//! in a canister that is a trap, which keeps the state whole but tells the caller nothing. So
//! every operation that writes first reserves an upper bound of what it may write
//! ([`StableSpace::reserve`]): the underlying memory is grown up front so that no structure
//! needs to grow it during the write, or the operation is refused with a typed
//! [`StorageFull`] before anything is written.
//!
//! The manager gives each virtual memory whole buckets of [`BUCKET_PAGES`] pages, and grows the
//! underlying memory only when it hands out a new bucket. A reservation names, per virtual
//! memory, an upper bound of how much it may grow, and counts the new buckets that would take
//! beyond what each memory's last bucket has left.

use std::cell::RefCell;

use ic_stable_structures::Memory;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use plugin_host_api::StorageFull;

use crate::limits::WASM_PAGE_BYTES;

/// Pages per bucket of the memory manager (its default, which `MemoryManager::init` uses).
pub const BUCKET_PAGES: u64 = 128;
/// The most buckets one memory manager hands out (ic-stable-structures' `MAX_NUM_BUCKETS`).
const MAX_BUCKETS: u64 = 32_768;
/// Pages before the first bucket (the manager's header).
const HEADER_PAGES: u64 = 1;

/// The canister's stable memory and the virtual memories handed out of it.
pub struct StableSpace<M: Memory + Clone> {
    manager: MemoryManager<M>,
    memory: M,
    handed_out: RefCell<Vec<MemoryId>>,
}

impl<M: Memory + Clone> StableSpace<M> {
    /// Opens the memory manager kept in `memory` (a new one if it holds none).
    pub fn init(memory: M) -> Self {
        Self {
            manager: MemoryManager::init(memory.clone()),
            memory,
            handed_out: RefCell::default(),
        }
    }

    /// The virtual memory with this id. Every id ever used must be asked for (retired ones
    /// too), so that reservations count their buckets.
    pub fn get(&self, id: MemoryId) -> VirtualMemory<M> {
        let mut handed_out = self.handed_out.borrow_mut();
        if !handed_out.contains(&id) {
            handed_out.push(id);
        }
        self.manager.get(id)
    }

    /// Makes sure that the memories named in `growth` may grow by up to the bytes given for each
    /// without the underlying memory having to grow; grows it now if needed. Nothing else
    /// changes. A refusal names the bytes asked for in all.
    pub fn reserve(
        &self,
        growth: impl IntoIterator<Item = (MemoryId, u64)>,
    ) -> Result<(), StorageFull> {
        let handed_out = self.handed_out.borrow();
        let mut buckets = 0u64;
        for id in handed_out.iter() {
            buckets += self.manager.get(*id).size().div_ceil(BUCKET_PAGES);
        }
        let (mut extra, mut requested) = (0u64, 0u64);
        for (id, bytes) in growth {
            requested = requested.saturating_add(bytes);
            let size = self.manager.get(id).size();
            let left = size.div_ceil(BUCKET_PAGES) * BUCKET_PAGES - size;
            let pages = bytes.div_ceil(WASM_PAGE_BYTES);
            extra += pages.saturating_sub(left).div_ceil(BUCKET_PAGES);
        }
        let full = || StorageFull {
            requested_bytes: requested,
            stable_bytes: self.memory.size() * WASM_PAGE_BYTES,
        };
        let total = buckets.saturating_add(extra);
        if total > MAX_BUCKETS {
            return Err(full());
        }
        let needed = HEADER_PAGES + total * BUCKET_PAGES;
        let size = self.memory.size();
        if needed > size && self.memory.grow(needed - size) < 0 {
            return Err(full());
        }
        Ok(())
    }

    /// Bytes of the underlying stable memory.
    pub fn stable_bytes(&self) -> u64 {
        self.memory.size() * WASM_PAGE_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// A memory that refuses to grow past a number of pages.
    #[derive(Clone)]
    struct Capped(Rc<RefCell<Vec<u8>>>, u64);

    impl Memory for Capped {
        fn size(&self) -> u64 {
            self.0.borrow().len() as u64 / WASM_PAGE_BYTES
        }
        fn grow(&self, pages: u64) -> i64 {
            let size = self.size();
            if size + pages > self.1 {
                return -1;
            }
            self.0
                .borrow_mut()
                .resize(((size + pages) * WASM_PAGE_BYTES) as usize, 0);
            size as i64
        }
        fn read(&self, offset: u64, dst: &mut [u8]) {
            let start = offset as usize;
            dst.copy_from_slice(&self.0.borrow()[start..start + dst.len()]);
        }
        fn write(&self, offset: u64, src: &[u8]) {
            let start = offset as usize;
            self.0.borrow_mut()[start..start + src.len()].copy_from_slice(src);
        }
    }

    #[test]
    fn a_reservation_covers_the_writes_it_was_made_for() {
        let space = StableSpace::init(Capped(Rc::default(), 1 + 3 * BUCKET_PAGES));
        let a = space.get(MemoryId::new(0));
        let b = space.get(MemoryId::new(1));
        let both = |bytes| [(MemoryId::new(0), bytes), (MemoryId::new(1), bytes)];
        space
            .reserve(both(100_000))
            .expect("room for a bucket each");
        assert_eq!(space.memory.size(), 1 + 2 * BUCKET_PAGES);
        // Neither memory needs the underlying memory to grow for writes this large.
        assert_eq!(a.grow(2), 0);
        assert_eq!(b.grow(2), 0);
        assert_eq!(space.memory.size(), 1 + 2 * BUCKET_PAGES);
        // Both still have room in their bucket for this much.
        space
            .reserve(both(100 * WASM_PAGE_BYTES))
            .expect("no growth needed");
        assert_eq!(space.memory.size(), 1 + 2 * BUCKET_PAGES);
        // A memory that would need a second bucket each does not fit in 3 buckets.
        assert_eq!(
            space.reserve(both(200 * WASM_PAGE_BYTES)),
            Err(StorageFull {
                requested_bytes: 400 * WASM_PAGE_BYTES,
                stable_bytes: (1 + 2 * BUCKET_PAGES) * WASM_PAGE_BYTES,
            })
        );
        assert_eq!(
            space.memory.size(),
            1 + 2 * BUCKET_PAGES,
            "a refusal changes nothing"
        );
        // Growth of one memory alone needs a bucket for it alone.
        space
            .reserve([(MemoryId::new(0), 200 * WASM_PAGE_BYTES)])
            .expect("one more bucket");
        assert_eq!(space.memory.size(), 1 + 3 * BUCKET_PAGES);
    }
}

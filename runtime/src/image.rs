//! Reading a canister's stable memory whole: the counterpart of [`Canister::set_stable_memory`],
//! for tests that compare two canisters' stable memories or keep one (a golden snapshot of a
//! stable layout).

use crate::canister::Canister;
use crate::cost::WASM_PAGE;
use crate::stable::PAGE;

/// Bytes in one of the 4 KiB pages [`Canister::stable_memory_pages`] lists.
pub const STABLE_PAGE_BYTES: usize = PAGE as usize;

impl Canister {
    /// The canister's whole stable memory as committed: [`Canister::stable_size_pages`] × 64 KiB
    /// bytes, zeros where nothing was written. [`Canister::set_stable_memory`] takes it back.
    /// It is as large as the stable memory: [`Canister::stable_memory_pages`] reads a large one
    /// without building it.
    pub fn stable_memory(&self) -> Vec<u8> {
        let size = self.stable.size_pages() * WASM_PAGE;
        let mut bytes =
            vec![0; usize::try_from(size).expect("stable memory fits the address space")];
        for (index, page) in self.stable_memory_pages() {
            let at = (index * PAGE) as usize;
            bytes[at..at + STABLE_PAGE_BYTES].copy_from_slice(page);
        }
        bytes
    }

    /// The 4 KiB pages of the committed stable memory that hold a byte other than zero, in
    /// increasing order, each with its index (its offset / 4096): with
    /// [`Canister::stable_size_pages`], the whole stable memory, whatever its size, without
    /// building it. A page written with zeros only is not listed.
    pub fn stable_memory_pages(
        &self,
    ) -> impl Iterator<Item = (u64, &[u8; STABLE_PAGE_BYTES])> + '_ {
        self.stable
            .pages
            .iter()
            .filter(|(_, page)| page.iter().any(|&b| b != 0))
            .map(|(&index, page)| (index, &**page))
    }
}

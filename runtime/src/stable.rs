//! Stable memory: sparse 4 KiB pages, and a per-message copy-on-write overlay.
//!
//! Invariant: the committed [`StableMemory`] is only changed by [`Overlay::commit`]; a message
//! that traps drops its overlay, so a rollback copies nothing.

use std::collections::BTreeMap;

use crate::cost::{MAX_STABLE_DIRTY_BYTES, MAX_STABLE_PAGES, WASM_PAGE};

/// Granularity of dirty tracking and of storage.
pub const PAGE: u64 = 4096;

type Page = Box<[u8; PAGE as usize]>;

fn zero_page() -> Page {
    Box::new([0; PAGE as usize])
}

/// A canister's committed stable memory. Pages never written read as zeros.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StableMemory {
    /// Size in wasm pages (64 KiB), as `stable64_size` reports it.
    pub(crate) size: u64,
    /// Written 4 KiB pages by index.
    pub(crate) pages: BTreeMap<u64, Page>,
}

impl StableMemory {
    /// Size in wasm pages (64 KiB).
    pub fn size_pages(&self) -> u64 {
        self.size
    }

    /// A stable memory holding `bytes`, its size rounded up to whole wasm pages (zeros after
    /// `bytes`). Only pages that are not all zeros are stored.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let pages = bytes
            .chunks(PAGE as usize)
            .enumerate()
            .filter(|(_, chunk)| chunk.iter().any(|&b| b != 0))
            .map(|(index, chunk)| {
                let mut page = zero_page();
                page[..chunk.len()].copy_from_slice(chunk);
                (index as u64, page)
            })
            .collect();
        StableMemory {
            size: (bytes.len() as u64).div_ceil(WASM_PAGE),
            pages,
        }
    }

    /// Reads `buf.len()` bytes at `offset` (the caller checked the bounds).
    #[cfg(test)]
    pub fn read(&self, offset: u64, buf: &mut [u8]) {
        read_pages(offset, buf, |i| self.pages.get(&i));
    }
}

fn read_pages<'a>(offset: u64, buf: &mut [u8], page: impl Fn(u64) -> Option<&'a Page>) {
    let mut done = 0usize;
    while done < buf.len() {
        let at = offset + done as u64;
        let index = at / PAGE;
        let within = (at % PAGE) as usize;
        let n = (PAGE as usize - within).min(buf.len() - done);
        let out = &mut buf[done..done + n];
        match page(index) {
            Some(p) => out.copy_from_slice(&p[within..within + n]),
            None => out.fill(0),
        }
        done += n;
    }
}

/// Why a stable-memory access traps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StableError {
    /// The access reaches past the current size.
    OutOfBounds {
        /// First byte.
        offset: u64,
        /// Length.
        size: u64,
        /// Current size in bytes.
        len: u64,
    },
    /// The message wrote more than [`MAX_STABLE_DIRTY_BYTES`].
    TooManyDirtyPages,
}

impl std::fmt::Display for StableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StableError::OutOfBounds { offset, size, len } => write!(
                f,
                "stable memory out of bounds: access of {size} bytes at {offset}, size is {len} bytes"
            ),
            StableError::TooManyDirtyPages => write!(
                f,
                "a message may write at most {MAX_STABLE_DIRTY_BYTES} bytes of stable memory"
            ),
        }
    }
}

/// One message's (or one install's) view of stable memory: the committed pages plus its own writes.
#[derive(Debug, Default)]
pub struct Overlay {
    base: StableMemory,
    size: u64,
    dirty: BTreeMap<u64, Page>,
}

impl Overlay {
    /// Starts a message over `base`.
    pub fn new(base: StableMemory) -> Self {
        Overlay {
            size: base.size,
            base,
            dirty: BTreeMap::new(),
        }
    }

    /// Current size in wasm pages.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Grows by `pages` wasm pages; returns the old size, or `None` past the 500 GiB limit.
    pub fn grow(&mut self, pages: u64) -> Option<u64> {
        let old = self.size;
        let new = old.checked_add(pages)?;
        if new > MAX_STABLE_PAGES {
            return None;
        }
        self.size = new;
        Some(old)
    }

    fn check(&self, offset: u64, size: u64) -> Result<(), StableError> {
        let len = self.size * WASM_PAGE;
        match offset.checked_add(size) {
            Some(end) if end <= len => Ok(()),
            _ => Err(StableError::OutOfBounds { offset, size, len }),
        }
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), StableError> {
        self.check(offset, buf.len() as u64)?;
        read_pages(offset, buf, |i| {
            self.dirty.get(&i).or_else(|| self.base.pages.get(&i))
        });
        Ok(())
    }

    /// Writes `data` at `offset`; returns how many pages this message dirtied for the first time.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<u64, StableError> {
        self.check(offset, data.len() as u64)?;
        let mut newly = 0;
        let mut done = 0usize;
        while done < data.len() {
            let at = offset + done as u64;
            let index = at / PAGE;
            let within = (at % PAGE) as usize;
            let n = (PAGE as usize - within).min(data.len() - done);
            let page = match self.dirty.entry(index) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    newly += 1;
                    e.insert(
                        self.base
                            .pages
                            .get(&index)
                            .cloned()
                            .unwrap_or_else(zero_page),
                    )
                }
            };
            page[within..within + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        if self.dirty.len() as u64 * PAGE > MAX_STABLE_DIRTY_BYTES {
            return Err(StableError::TooManyDirtyPages);
        }
        Ok(newly)
    }

    /// Applies this message's writes and growth to the committed memory.
    pub fn commit(self) -> StableMemory {
        let mut base = self.base;
        base.size = self.size;
        base.pages.extend(self.dirty);
        base
    }

    /// Drops this message's writes and growth.
    pub fn rollback(self) -> StableMemory {
        self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_invisible_until_commit() {
        let mut o = Overlay::new(StableMemory::default());
        assert_eq!(o.grow(1), Some(0));
        assert_eq!(o.write(4090, &[1; 10]), Ok(2));
        assert_eq!(o.write(4095, &[2; 2]), Ok(0));
        let mut buf = [0; 10];
        o.read(4090, &mut buf).expect("in bounds");
        assert_eq!(buf, [1, 1, 1, 1, 1, 2, 2, 1, 1, 1]);
        let rolled = o.rollback();
        assert_eq!(rolled, StableMemory::default());
        let mut o = Overlay::new(rolled);
        o.grow(1);
        o.write(0, &[7]).expect("in bounds");
        let committed = o.commit();
        let mut b = [0; 2];
        committed.read(0, &mut b);
        assert_eq!(b, [7, 0]);
        assert_eq!(committed.size_pages(), 1);
    }

    #[test]
    fn an_image_reads_back_and_keeps_only_pages_that_are_not_zeros() {
        let mut bytes = vec![0; 3 * PAGE as usize + 5];
        bytes[1] = 1;
        bytes[3 * PAGE as usize + 4] = 2;
        let memory = StableMemory::from_bytes(&bytes);
        assert_eq!(memory.size_pages(), 1);
        assert_eq!(memory.pages.keys().copied().collect::<Vec<_>>(), [0, 3]);
        let mut back = vec![9; WASM_PAGE as usize];
        memory.read(0, &mut back);
        bytes.resize(WASM_PAGE as usize, 0);
        assert!(back == bytes);
        assert_eq!(StableMemory::from_bytes(&[]), StableMemory::default());
    }

    #[test]
    fn out_of_bounds_and_growth_limit() {
        let mut o = Overlay::new(StableMemory::default());
        assert!(matches!(
            o.read(0, &mut [0]),
            Err(StableError::OutOfBounds { .. })
        ));
        assert_eq!(o.grow(MAX_STABLE_PAGES + 1), None);
        assert_eq!(o.grow(MAX_STABLE_PAGES), Some(0));
    }
}

//! The per-call byte arena ("kernel memory" in Extism's words): blocks addressed by `u64` handles.
//!
//! A handle is the offset of a block's first byte; offset 0 is never a block, so handle 0 means
//! "none" (Extism's empty block: length 0). Freed space is reused (best fit, neighbours merged),
//! as Extism's kernel reuses it, so a plugin that allocates and frees in a loop does not run into
//! the arena cap. Every access is checked against a live block and returns a `Result`: no guest
//! value reaches an index or an unchecked addition.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::collections::{BTreeMap, BTreeSet};

use plugin_host_api::LimitExceeded;

/// Bytes kept between calls: a larger arena is given back to the heap when a call ends.
const KEPT_CAPACITY: usize = 64 * 1024;

/// Why an arena access failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArenaError {
    /// `[offset, offset + len)` does not lie inside one live block.
    OutOfBounds {
        /// The offset asked for.
        offset: u64,
        /// Bytes asked for.
        len: u64,
    },
    /// A cap would be exceeded.
    Limit(LimitExceeded),
}

/// The arena of one call.
#[derive(Debug, Default)]
pub struct Arena {
    /// Bytes up to the end of the highest block; offset 0 is unused.
    bytes: Vec<u8>,
    /// Live blocks: start -> length (never 0).
    blocks: BTreeMap<u64, u64>,
    /// Free ranges below the end: start -> length, merged with their neighbours.
    free: BTreeMap<u64, u64>,
    /// The same free ranges by (length, start), for best fit.
    free_by_size: BTreeSet<(u64, u64)>,
    max_bytes: u64,
    max_blocks: usize,
}

impl Arena {
    /// An empty arena with these caps.
    pub fn new(max_bytes: u64, max_blocks: usize) -> Self {
        Self {
            max_bytes,
            max_blocks,
            ..Self::default()
        }
    }

    /// Frees every block; keeps at most [`KEPT_CAPACITY`] bytes of heap for the next call.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.bytes.shrink_to(KEPT_CAPACITY);
        self.blocks = BTreeMap::new();
        self.free = BTreeMap::new();
        self.free_by_size = BTreeSet::new();
    }

    /// Heap bytes the arena holds (its bytes and an estimate of its maps).
    pub fn heap_bytes(&self) -> u64 {
        let entries = self
            .blocks
            .len()
            .saturating_add(self.free.len().saturating_mul(2));
        (self.bytes.capacity() as u64).saturating_add(48u64.saturating_mul(entries as u64))
    }

    /// A new zeroed block of `len` bytes; `len` 0 gives handle 0.
    pub fn alloc(&mut self, len: u64) -> Result<u64, ArenaError> {
        if len == 0 {
            return Ok(0);
        }
        if self.blocks.len() >= self.max_blocks {
            return Err(ArenaError::Limit(LimitExceeded {
                limit: "arena blocks".into(),
                requested: (self.blocks.len() as u64).saturating_add(1),
                max: self.max_blocks as u64,
            }));
        }
        if let Some(&(size, start)) = self.free_by_size.range((len, 0)..).next() {
            self.take_free(start, size);
            if size > len {
                // `len < size`, and `start + size` is below the end of the arena.
                self.put_free(start.saturating_add(len), size.saturating_sub(len));
            }
            self.fill(start, len, 0)?;
            self.blocks.insert(start, len);
            return Ok(start);
        }
        let start = (self.bytes.len() as u64).max(1);
        let end = start.checked_add(len).filter(|end| *end <= self.max_bytes);
        let Some(end) = end else {
            return Err(ArenaError::Limit(LimitExceeded {
                limit: "arena bytes".into(),
                requested: start.saturating_add(len),
                max: self.max_bytes,
            }));
        };
        // `end <= max_bytes`, which fits the heap's address space (the cap is far below it).
        self.bytes.resize(end as usize, 0);
        self.blocks.insert(start, len);
        Ok(start)
    }

    /// Whether a block of `len` bytes could fit at all (checked before a host call charges for
    /// allocating it).
    pub fn fits(&self, len: u64) -> Result<(), ArenaError> {
        if len >= self.max_bytes {
            return Err(ArenaError::Limit(LimitExceeded {
                limit: "arena bytes".into(),
                requested: len,
                max: self.max_bytes,
            }));
        }
        Ok(())
    }

    /// A new block holding `data`; empty data gives handle 0.
    pub fn alloc_bytes(&mut self, data: &[u8]) -> Result<u64, ArenaError> {
        let handle = self.alloc(data.len() as u64)?;
        if handle != 0 {
            self.write(handle, data)?;
        }
        Ok(handle)
    }

    /// Frees the block starting at `handle`. Returns whether it was a live block.
    pub fn free(&mut self, handle: u64) -> bool {
        let Some(len) = self.blocks.remove(&handle) else {
            return false;
        };
        let (mut start, mut end) = (handle, handle.saturating_add(len));
        // Merge with a free neighbour below and above.
        if let Some((&below, &size)) = self.free.range(..start).next_back()
            && below.saturating_add(size) == start
        {
            self.take_free(below, size);
            start = below;
        }
        if let Some(&size) = self.free.get(&end) {
            self.take_free(end, size);
            end = end.saturating_add(size);
        }
        if end == self.bytes.len() as u64 {
            // The highest block: give the space back instead of listing it.
            self.bytes.truncate(start.max(1) as usize);
        } else {
            self.put_free(start, end.saturating_sub(start));
        }
        true
    }

    /// The length of the block starting at `handle` (0 for handle 0 or anything else).
    pub fn length(&self, handle: u64) -> u64 {
        self.blocks.get(&handle).copied().unwrap_or(0)
    }

    /// Whether `handle` starts a live block.
    pub fn is_block(&self, handle: u64) -> bool {
        self.blocks.contains_key(&handle)
    }

    /// The bytes of the block starting at `handle`; handle 0 is the empty block.
    pub fn block(&self, handle: u64) -> Result<&[u8], ArenaError> {
        if handle == 0 {
            return Ok(&[]);
        }
        match self.blocks.get(&handle) {
            Some(&len) => self.read(handle, len),
            None => Err(ArenaError::OutOfBounds {
                offset: handle,
                len: 0,
            }),
        }
    }

    /// `len` bytes at `offset`, which must lie inside one live block (any `len` 0 read is empty).
    pub fn read(&self, offset: u64, len: u64) -> Result<&[u8], ArenaError> {
        if len == 0 {
            return Ok(&[]);
        }
        let range = self.checked(offset, len)?;
        self.bytes
            .get(range)
            .ok_or(ArenaError::OutOfBounds { offset, len })
    }

    /// Writes `data` at `offset`, which must lie inside one live block.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), ArenaError> {
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len() as u64;
        let range = self.checked(offset, len)?;
        self.bytes
            .get_mut(range)
            .ok_or(ArenaError::OutOfBounds { offset, len })?
            .copy_from_slice(data);
        Ok(())
    }

    /// `len` bytes at `offset` within the arena's span, live or not (for an output whose block
    /// the guest freed after setting it); `None` outside the span.
    pub fn read_spanned(&self, offset: u64, len: u64) -> Option<&[u8]> {
        if len == 0 {
            return Some(&[]);
        }
        let start = usize::try_from(offset).ok()?;
        let end = usize::try_from(offset.checked_add(len)?).ok()?;
        self.bytes.get(start..end)
    }

    fn fill(&mut self, offset: u64, len: u64, value: u8) -> Result<(), ArenaError> {
        let range = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(offset.saturating_add(len)).ok())
            .map(|(start, end)| start..end);
        range
            .and_then(|range| self.bytes.get_mut(range))
            .ok_or(ArenaError::OutOfBounds { offset, len })?
            .fill(value);
        Ok(())
    }

    /// The byte range of `[offset, offset + len)` if it lies inside one live block.
    fn checked(&self, offset: u64, len: u64) -> Result<std::ops::Range<usize>, ArenaError> {
        let out = ArenaError::OutOfBounds { offset, len };
        let (&start, &size) = self
            .blocks
            .range(..=offset)
            .next_back()
            .ok_or(out.clone())?;
        let end = offset.checked_add(len).ok_or(out.clone())?;
        if end > start.saturating_add(size) {
            return Err(out);
        }
        let start = usize::try_from(offset).map_err(|_| out.clone())?;
        let end = usize::try_from(end).map_err(|_| out)?;
        Ok(start..end)
    }

    fn put_free(&mut self, start: u64, len: u64) {
        self.free.insert(start, len);
        self.free_by_size.insert((len, start));
    }

    fn take_free(&mut self, start: u64, len: u64) {
        self.free.remove(&start);
        self.free_by_size.remove(&(len, start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena() -> Arena {
        Arena::new(1024, 8)
    }

    #[test]
    fn blocks_are_checked_and_handle_zero_is_empty() {
        let mut a = arena();
        assert_eq!(a.alloc(0), Ok(0));
        assert_eq!(a.block(0), Ok(&[][..]));
        assert_eq!(a.length(0), 0);
        let h = a.alloc_bytes(b"hello").expect("alloc");
        assert_eq!(h, 1, "offset 0 is never a block");
        assert_eq!(a.read(h + 1, 4), Ok(&b"ello"[..]));
        assert!(a.read(h + 1, 5).is_err(), "past the block");
        assert!(a.read(u64::MAX, 2).is_err(), "wrapping range");
        assert!(a.read(0, 1).is_err());
        assert!(a.write(h + 4, b"!!").is_err());
        assert!(a.free(h));
        assert!(!a.free(h), "freed twice");
        assert!(a.block(h).is_err(), "freed block");
    }

    #[test]
    fn freed_space_is_reused_and_caps_hold() {
        let mut a = arena();
        let x = a.alloc(100).expect("x");
        let y = a.alloc(100).expect("y");
        let z = a.alloc(100).expect("z");
        a.write(y, &[7; 100]).expect("write");
        assert!(a.free(x) && a.free(y));
        // x and y merged into one free range; a new block reuses it, zeroed.
        let w = a.alloc(150).expect("w");
        assert_eq!(w, x);
        assert_eq!(a.read(w, 150).map(|b| b.iter().all(|b| *b == 0)), Ok(true));
        assert!(a.free(z) && a.free(w));
        assert_eq!(a.bytes.len(), 1, "freeing the top block shrinks the arena");
        for _ in 0..1000 {
            let h = a.alloc(900).expect("reused");
            assert!(a.free(h));
        }
        assert!(matches!(a.alloc(2000), Err(ArenaError::Limit(_))));
        assert!(matches!(a.alloc(u64::MAX), Err(ArenaError::Limit(_))));
        for _ in 0..8 {
            a.alloc(1).expect("block");
        }
        assert!(matches!(
            a.alloc(1),
            Err(ArenaError::Limit(LimitExceeded { limit, .. })) if limit == "arena blocks"
        ));
    }
}

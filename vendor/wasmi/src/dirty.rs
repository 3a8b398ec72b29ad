//! **plugin_host patch** (see `PATCH.md`): which 1 KiB spans of linear memory the executor wrote.
//!
//! Every store instruction and every `memory.copy`, `memory.fill` and `memory.init` that succeeds
//! marks the chunks it wrote in a per-thread bitmap, so a host that keeps a copy of an instance's
//! memory can find what changed without reading all of it. Marks do not say which memory was
//! written: a host that uses them runs modules with one memory, drains the marks after each
//! execution and treats them as a superset (a stale mark only costs a comparison). Writes made
//! through the embedder API (`Memory::write`, `Memory::data_mut`, data segments at
//! instantiation) are not marked.

/// Bytes per marked span (a host that saves memory in larger chunks compares only the marked
/// spans of each).
pub const CHUNK_BYTES: usize = 1024;

#[cfg(feature = "simd")]
compile_error!("the dirty-chunk patch does not mark SIMD stores: do not enable `simd`");

#[cfg(feature = "std")]
mod bitmap {
    use super::CHUNK_BYTES;
    use core::cell::Cell;

    /// Words of 64 chunks each: enough for a 4 GiB memory.
    const WORDS: usize = (u32::MAX as usize / CHUNK_BYTES + 1) / 64;

    std::thread_local! {
        static MARKS: [Cell<u64>; WORDS] = const { [const { Cell::new(0) }; WORDS] };
    }

    #[inline]
    pub fn mark(first: usize, last: usize) {
        MARKS.with(|words| {
            for chunk in first..=last {
                if let Some(word) = words.get(chunk / 64) {
                    word.set(word.get() | 1 << (chunk % 64));
                }
            }
        });
    }

    /// Marks chunks `first` and `last` (equal, or neighbours): a store's, without a loop.
    #[inline]
    pub fn mark_pair(first: usize, last: usize) {
        MARKS.with(|words| {
            if let Some(word) = words.get(first / 64) {
                word.set(word.get() | 1 << (first % 64));
            }
            if last != first
                && let Some(word) = words.get(last / 64)
            {
                word.set(word.get() | 1 << (last % 64));
            }
        });
    }

    pub fn drain(chunks: usize, visit: &mut dyn FnMut(usize)) {
        MARKS.with(|words| drain_words(&words[..chunks.div_ceil(64).min(WORDS)], chunks, visit));
    }

    /// Visits and clears the marks in `words`. Most words are clear: they are tested eight at a
    /// time (one fold, which wasm SIMD vectorises) and not written back.
    #[cfg_attr(target_family = "wasm", target_feature(enable = "simd128"))]
    fn drain_words(words: &[Cell<u64>], chunks: usize, visit: &mut dyn FnMut(usize)) {
        let (blocks, rest) = words.as_chunks::<8>();
        let clear = |block: &[Cell<u64>; 8]| block.iter().fold(0, |acc, w| acc | w.get()) == 0;
        let marked = blocks
            .iter()
            .enumerate()
            .filter(|(_, block)| !clear(block))
            .flat_map(|(at, block)| block.iter().enumerate().map(move |(i, w)| (at * 8 + i, w)))
            .chain(rest.iter().enumerate().map(|(i, w)| (blocks.len() * 8 + i, w)));
        for (index, word) in marked {
            let mut bits = word.replace(0);
            while bits != 0 {
                let chunk = index * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if chunk < chunks {
                    visit(chunk);
                }
            }
        }
    }
}

/// Without `std` there is no per-thread bitmap: nothing is marked and every chunk counts as
/// written.
#[cfg(not(feature = "std"))]
mod bitmap {
    #[inline]
    pub fn mark(_first: usize, _last: usize) {}

    #[inline]
    pub fn mark_pair(_first: usize, _last: usize) {}

    pub fn drain(chunks: usize, visit: &mut dyn FnMut(usize)) {
        (0..chunks).for_each(visit);
    }
}

/// Marks the chunks of `len` bytes written at `address` (nothing if `len` is 0). The executor
/// marks what it writes; an embedder that writes an instance's memory itself may mark that too.
#[inline]
pub fn mark(address: usize, len: usize) {
    if len > 0 {
        bitmap::mark(
            address / CHUNK_BYTES,
            address.saturating_add(len - 1) / CHUNK_BYTES,
        );
    }
}

/// Marks the chunks of a `BYTES`-byte store (1 to 8 bytes) at `address`: the chunk of its first
/// byte and that of its last. Cheaper than [`mark`]'s loop over a range of chunks.
#[inline]
fn mark_store<const BYTES: usize>(address: usize) {
    bitmap::mark_pair(
        address / CHUNK_BYTES,
        address.saturating_add(BYTES - 1) / CHUNK_BYTES,
    );
}

/// Calls `visit` with the index of each marked chunk of a memory of `memory_len` bytes, in
/// ascending order, and clears the marks it visits (and any beyond `memory_len` in the same
/// 64-chunk word).
pub fn drain(memory_len: usize, mut visit: impl FnMut(usize)) {
    bitmap::drain(memory_len.div_ceil(CHUNK_BYTES), &mut visit);
}

/// The executor's view of `wasmi_core::wasm`: the same functions, with every store marking the
/// bytes it wrote.
pub(crate) mod wasm {
    pub use wasmi_core::wasm::*;
    use wasmi_core::TrapCode;

    macro_rules! marking_stores {
        ( $( ($store:ident, $store_at:ident, $ty:ty, $bytes:literal) ),* $(,)? ) => {
            $(
                #[doc = concat!("`wasmi_core::wasm::", stringify!($store), "`, marking what it wrote.")]
                #[inline]
                pub fn $store(memory: &mut [u8], ptr: u64, offset: u64, value: $ty) -> Result<(), TrapCode> {
                    wasmi_core::wasm::$store(memory, ptr, offset, value)?;
                    // The store succeeded, so `ptr + offset` neither overflowed nor left memory.
                    super::mark_store::<$bytes>((ptr + offset) as usize);
                    Ok(())
                }

                #[doc = concat!("`wasmi_core::wasm::", stringify!($store_at), "`, marking what it wrote.")]
                #[inline]
                pub fn $store_at(memory: &mut [u8], address: usize, value: $ty) -> Result<(), TrapCode> {
                    wasmi_core::wasm::$store_at(memory, address, value)?;
                    super::mark_store::<$bytes>(address);
                    Ok(())
                }
            )*
        };
    }
    marking_stores! {
        (store32, store32_at, u32, 4),
        (store64, store64_at, u64, 8),
        (store_f32, store_f32_at, f32, 4),
        (store_f64, store_f64_at, f64, 8),
        (i32_store8, i32_store8_at, i32, 1),
        (i32_store16, i32_store16_at, i32, 2),
        (i64_store8, i64_store8_at, i64, 1),
        (i64_store16, i64_store16_at, i64, 2),
        (i64_store32, i64_store32_at, i64, 4),
    }
}

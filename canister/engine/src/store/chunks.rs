//! Memory chunk contents in fixed 4 KiB slots of a raw stable memory (layout in the docs of
//! `store`).

use ic_stable_structures::Memory;

use super::CHUNK_BYTES;

/// Memory chunk contents in fixed 4 KiB slots of a raw stable memory, written in place, with a
/// free list threaded through the free slots (layout in the module docs).
pub struct ChunkData<M: Memory> {
    memory: M,
    /// Slots ever allocated (in use or free).
    pub slots: u64,
    /// The first free slot + 1 (0: none).
    free: u64,
}

impl<M: Memory> ChunkData<M> {
    /// Opens the slots kept in `memory`.
    pub fn init(memory: M) -> Self {
        let mut header = [0u8; 16];
        if memory.size() > 0 {
            memory.read(0, &mut header);
        }
        let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
        Self {
            slots: word(0),
            free: word(8),
            memory,
        }
    }

    fn offset(slot: u64) -> u64 {
        (slot + 1) * CHUNK_BYTES as u64
    }

    fn save_header(&self) {
        let mut header = [0u8; 16];
        header[..8].copy_from_slice(&self.slots.to_le_bytes());
        header[8..].copy_from_slice(&self.free.to_le_bytes());
        self.memory.write(0, &header);
    }

    /// A slot for a new chunk: a freed one if any, else a new one.
    pub fn allocate(&mut self) -> u64 {
        let slot = if self.free > 0 {
            let slot = self.free - 1;
            let mut next = [0u8; 8];
            self.memory.read(Self::offset(slot), &mut next);
            self.free = u64::from_le_bytes(next);
            slot
        } else {
            let slot = self.slots;
            self.slots += 1;
            let needed = Self::offset(slot + 1).div_ceil(65536);
            if needed > self.memory.size() {
                let grown = self.memory.grow(needed - self.memory.size());
                assert!(grown >= 0, "stable memory is exhausted");
            }
            slot
        };
        self.save_header();
        slot
    }

    /// Gives a slot back.
    pub fn free(&mut self, slot: u64) {
        self.memory
            .write(Self::offset(slot), &self.free.to_le_bytes());
        self.free = slot + 1;
        self.save_header();
    }

    /// Writes a chunk into its slot.
    pub fn write(&self, slot: u64, bytes: &[u8]) {
        assert_eq!(bytes.len(), CHUNK_BYTES, "memory is stored in whole chunks");
        self.memory.write(Self::offset(slot), bytes);
    }

    /// Writes `bytes` into a slot, `at` bytes into its chunk.
    pub fn write_at(&self, slot: u64, at: usize, bytes: &[u8]) {
        assert!(at + bytes.len() <= CHUNK_BYTES, "a write within one chunk");
        self.memory.write(Self::offset(slot) + at as u64, bytes);
    }

    /// Reads a chunk from its slot.
    pub fn read(&self, slot: u64) -> Vec<u8> {
        let mut chunk = vec![0u8; CHUNK_BYTES];
        self.memory.read(Self::offset(slot), &mut chunk);
        chunk
    }
}

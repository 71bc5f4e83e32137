//! A FIFO queue stored in fixed-size chunks: it grows one chunk at a time
//! and frees a chunk as soon as its last element is popped, so growing never
//! copies what it holds (a `VecDeque` reallocates and copies everything,
//! faulting in fresh pages for all of it, each time it grows) and memory
//! follows the length within a chunk at either end.

use std::collections::VecDeque;
use std::ops::Index;

/// A FIFO queue of `T` in chunks of `chunk` elements (a power of two).
#[derive(Debug)]
pub(super) struct ChunkedRing<T> {
    /// The chunks, oldest first; each has `chunk` elements of capacity.
    chunks: VecDeque<Vec<T>>,
    /// Elements already popped from the front chunk.
    popped: usize,
    /// Elements held.
    len: usize,
    /// Elements per chunk.
    chunk: usize,
}

impl<T> ChunkedRing<T> {
    /// An empty queue whose chunks hold `chunk` elements (rounded up to a power of two).
    pub(super) fn new(chunk: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            popped: 0,
            len: 0,
            chunk: chunk.max(1).next_power_of_two(),
        }
    }

    /// Elements held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Elements the allocated chunks can hold, popped places of the front chunk included.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.chunks.len() * self.chunk
    }

    /// The oldest element.
    pub(super) fn front(&self) -> Option<&T> {
        self.chunks.front()?.get(self.popped)
    }

    /// The newest element.
    #[cfg(test)]
    pub(super) fn back(&self) -> Option<&T> {
        self.chunks.back()?.last()
    }

    /// Appends `value` as the newest element.
    pub(super) fn push_back(&mut self, value: T) {
        if self.chunks.back().is_none_or(|last| last.len() == self.chunk) {
            self.chunks.push_back(Vec::with_capacity(self.chunk));
        }
        self.chunks.back_mut().expect("a chunk with room").push(value);
        self.len += 1;
    }

    /// Removes the oldest element; its chunk is freed once every element in it was popped.
    pub(super) fn pop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        self.len -= 1;
        self.popped += 1;
        // Only the newest chunk can be partly filled, so a front chunk whose
        // elements were all popped is either full or the last one.
        if self.chunks.front().is_some_and(|front| self.popped == front.len()) {
            self.chunks.pop_front();
            self.popped = 0;
        }
    }

    /// Returns the memory of the chunk list itself beyond what it needs.
    pub(super) fn shrink(&mut self) {
        self.chunks.shrink_to_fit();
    }
}

impl<T> Index<usize> for ChunkedRing<T> {
    type Output = T;

    /// The element `offset` places after the oldest.
    fn index(&self, offset: usize) -> &T {
        assert!(offset < self.len, "offset {offset} beyond {} elements", self.len);
        let at = self.popped + offset;
        // `chunk` is a power of two.
        &self.chunks[at >> self.chunk.trailing_zeros()][at & (self.chunk - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Behaves as a `VecDeque` for any sequence of pushes and pops, and holds at most two chunks it does not need.
        #[test]
        fn matches_a_vecdeque(ops in proptest::collection::vec(any::<bool>(), 0..600), chunk in 1usize..9) {
            let mut ring = ChunkedRing::new(chunk);
            let mut model = VecDeque::new();
            for (n, push) in ops.into_iter().enumerate() {
                if push {
                    ring.push_back(n);
                    model.push_back(n);
                } else {
                    ring.pop_front();
                    model.pop_front();
                }
                prop_assert_eq!(ring.len(), model.len());
                prop_assert_eq!(ring.front(), model.front());
                prop_assert_eq!(ring.back(), model.back());
                for (offset, value) in model.iter().enumerate() {
                    prop_assert_eq!(&ring[offset], value);
                }
                let chunk = ring.chunk;
                prop_assert!(ring.capacity() <= model.len().div_ceil(chunk) * chunk + 2 * chunk);
            }
        }
    }

    #[test]
    fn an_emptied_ring_frees_its_chunks() {
        let mut ring = ChunkedRing::new(4);
        for n in 0..10 {
            ring.push_back(n);
        }
        assert_eq!(ring.capacity(), 12);
        for _ in 0..10 {
            ring.pop_front();
        }
        assert_eq!((ring.len(), ring.capacity(), ring.front()), (0, 0, None));
        ring.pop_front();
        ring.push_back(7);
        assert_eq!((ring.front(), ring.back(), ring[0]), (Some(&7), Some(&7), 7));
    }

    #[test]
    #[should_panic(expected = "beyond")]
    fn indexing_past_the_end_panics() {
        let mut ring = ChunkedRing::new(4);
        ring.push_back(1);
        let _ = ring[1];
    }
}

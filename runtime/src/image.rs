//! [`AlignedBuf`]: the writable image of a global-data section before load,
//! aligned so that the generated section struct can be borrowed from it.

use crate::Plain;

/// Alignment of every [`AlignedBuf`]: enough for any type BPF C declares
/// (`aligned(64)` at most in practice).
pub const IMAGE_ALIGN: usize = 64;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Chunk([u8; IMAGE_ALIGN]);

/// A byte buffer of a given length, 64-byte aligned, zero-padded to a
/// multiple of 64 bytes.
#[derive(Clone)]
pub struct AlignedBuf {
    chunks: Vec<Chunk>,
    len: usize,
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish()
    }
}

impl AlignedBuf {
    /// A copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut chunks = vec![Chunk([0; IMAGE_ALIGN]); bytes.len().div_ceil(IMAGE_ALIGN)];
        for (c, src) in chunks.iter_mut().zip(bytes.chunks(IMAGE_ALIGN)) {
            c.0[..src.len()].copy_from_slice(src);
        }
        AlignedBuf {
            chunks,
            len: bytes.len(),
        }
    }

    /// Length of the section in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the section is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn capacity(&self) -> usize {
        self.chunks.len() * IMAGE_ALIGN
    }

    fn all_bytes(&self) -> &[u8] {
        let ptr = self.chunks.as_ptr().cast::<u8>();
        #[allow(unsafe_code)]
        // SAFETY: `Chunk` is `repr(C)` over a byte array with no padding, so
        // the vector's storage is `capacity()` initialised bytes; the slice
        // borrows `self`.
        unsafe {
            std::slice::from_raw_parts(ptr, self.capacity())
        }
    }

    fn all_bytes_mut(&mut self) -> &mut [u8] {
        let cap = self.capacity();
        let ptr = self.chunks.as_mut_ptr().cast::<u8>();
        #[allow(unsafe_code)]
        // SAFETY: as in `all_bytes`, with the unique borrow of `self`; any
        // byte value is a valid `Chunk`.
        unsafe {
            std::slice::from_raw_parts_mut(ptr, cap)
        }
    }

    /// The section's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.all_bytes()[..self.len]
    }

    /// The section's bytes, writable.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.all_bytes_mut()[..len]
    }

    /// The buffer viewed as `T` (the generated section struct, whose size is
    /// the section size rounded up to its alignment). `None` if `T` is larger
    /// than the buffer's capacity or more aligned than [`IMAGE_ALIGN`].
    pub fn get<T: Plain>(&self) -> Option<&T> {
        if std::mem::size_of::<T>() > self.capacity() || std::mem::align_of::<T>() > IMAGE_ALIGN {
            return None;
        }
        let ptr = self.chunks.as_ptr().cast::<T>();
        #[allow(unsafe_code)]
        // SAFETY: the storage is 64-aligned (>= align_of::<T>()), holds at
        // least size_of::<T>() initialised bytes, and every bit pattern is a
        // valid T (Plain). The reference borrows `self`.
        unsafe {
            Some(&*ptr)
        }
    }

    /// The buffer viewed as `&mut T`; see [`AlignedBuf::get`]. Bytes past
    /// the section length (alignment padding) are never sent to the kernel.
    pub fn get_mut<T: Plain>(&mut self) -> Option<&mut T> {
        if std::mem::size_of::<T>() > self.capacity() || std::mem::align_of::<T>() > IMAGE_ALIGN {
            return None;
        }
        let ptr = self.chunks.as_mut_ptr().cast::<T>();
        #[allow(unsafe_code)]
        // SAFETY: as in `get`; the unique borrow of `self` makes the
        // reference unique, and any bytes written through it leave the
        // buffer valid (bytes are always valid).
        unsafe {
            Some(&mut *ptr)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AlignedBuf;

    #[test]
    fn views() {
        let mut b = AlignedBuf::from_bytes(&[1, 2, 3, 4, 5]);
        assert_eq!(b.as_bytes(), &[1, 2, 3, 4, 5]);
        *b.get_mut::<u32>().unwrap() = 0x0a0b0c0d;
        assert_eq!(b.as_bytes(), &[0x0d, 0x0c, 0x0b, 0x0a, 5]);
        assert_eq!(
            *b.get::<[u8; 8]>().unwrap(),
            [0x0d, 0x0c, 0x0b, 0x0a, 5, 0, 0, 0]
        );
        assert!(b.get::<[u8; 65]>().is_none());
        assert!(AlignedBuf::from_bytes(&[]).get::<u8>().is_none());
    }
}

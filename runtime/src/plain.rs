//! [`Plain`]: types that are nothing but bytes.
//!
//! Every Rust type skelgen generates from BTF implements [`Plain`], so that map
//! keys and values, ring buffer samples and global data can be copied to and
//! from raw bytes without `unsafe` at the call site. The generated code also
//! uses the helpers at the bottom of this module: bitfield access
//! ([`bits_get`], [`bits_get_signed`], [`bits_set`]) and union member access
//! ([`load_at`], [`store_at`]), all safe and all total (out-of-range requests
//! read zeroes or write nothing rather than panicking).

use core::mem::size_of;

/// A type for which every bit pattern of its size is a valid value and whose
/// every byte is part of a field: it can be viewed as bytes and rebuilt from
/// any bytes.
///
/// # Safety
///
/// An implementor must be `#[repr(C)]`, `#[repr(transparent)]` or
/// `#[repr(C, packed)]` (or a primitive), must have no padding bytes that are
/// not explicit fields (padding is uninitialised memory, and
/// [`Plain::as_bytes`] would read it), and every bit pattern of its size must
/// be a valid value: no `bool`, no `char`, no Rust `enum`, no references,
/// no `NonZero*`. skelgen's generated types uphold this and assert their
/// size and field offsets against BTF at compile time.
pub unsafe trait Plain: Copy + 'static {
    /// The value's `size_of::<Self>()` bytes, in memory order.
    fn as_bytes(&self) -> &[u8] {
        let ptr = (self as *const Self).cast::<u8>();
        // SAFETY: `self` is a valid reference to `size_of::<Self>()` bytes, all
        // initialised because `Self: Plain` has no implicit padding; u8 has
        // alignment 1; the slice borrows `self`, so it cannot outlive it.
        unsafe { core::slice::from_raw_parts(ptr, size_of::<Self>()) }
    }

    /// The value's bytes, writable: any bytes written leave a valid `Self`.
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        let ptr = (self as *mut Self).cast::<u8>();
        // SAFETY: as in `as_bytes`, and the unique borrow of `self` is held by
        // the slice; every bit pattern is a valid `Self`, so whatever the
        // caller writes leaves `*self` valid.
        unsafe { core::slice::from_raw_parts_mut(ptr, size_of::<Self>()) }
    }

    /// Copies a value out of `bytes`, which must be exactly
    /// `size_of::<Self>()` long (`None` otherwise). No alignment needed.
    fn read_from(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != size_of::<Self>() {
            return None;
        }
        Self::read_from_prefix(bytes)
    }

    /// Copies a value out of the first `size_of::<Self>()` bytes of `bytes`
    /// (`None` if it is shorter). No alignment needed.
    fn read_from_prefix(bytes: &[u8]) -> Option<Self> {
        let src = bytes.get(..size_of::<Self>())?;
        let mut out = Self::zeroed();
        out.as_bytes_mut().copy_from_slice(src);
        Some(out)
    }

    /// The all-zeroes value.
    fn zeroed() -> Self {
        // SAFETY: every bit pattern, all zeroes included, is a valid `Self`.
        unsafe { core::mem::zeroed() }
    }
}

macro_rules! impl_plain {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: a primitive without padding, valid for every bit pattern.
            unsafe impl Plain for $t {}
        )*
    };
}

impl_plain!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    ()
);

// SAFETY: arrays have no padding between elements, and an array is valid for
// every bit pattern when its element is.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

// SAFETY: `CBool` is `repr(transparent)` over a `u8` and keeps every byte as
// it is (its accessors treat any non-zero byte as true), so every bit pattern
// is a valid `CBool`.
unsafe impl Plain for crate::CBool {}

/// Reads the `width`-bit field starting `bit_offset` bits into `bytes`
/// (little-endian bit numbering, as BTF records bitfields of a BPF object),
/// zero-extended. Bits outside `bytes` read as 0; `width` is capped at 64.
pub fn bits_get(bytes: &[u8], bit_offset: u32, width: u32) -> u64 {
    let width = width.min(64);
    if width == 0 {
        return 0;
    }
    let first = (bit_offset / 8) as usize;
    let shift = bit_offset % 8;
    // shift + width <= 7 + 64 bits: at most 9 bytes, which fit a u128.
    let mut acc: u128 = 0;
    for i in 0..9usize {
        let b = bytes.get(first.saturating_add(i)).copied().unwrap_or(0);
        acc |= u128::from(b) << (8 * i);
    }
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    ((acc >> shift) as u64) & mask
}

/// [`bits_get`], sign-extended from bit `width - 1`.
pub fn bits_get_signed(bytes: &[u8], bit_offset: u32, width: u32) -> i64 {
    let width = width.min(64);
    if width == 0 {
        return 0;
    }
    let raw = bits_get(bytes, bit_offset, width);
    let unused = 64 - width;
    ((raw << unused) as i64) >> unused
}

/// Writes the low `width` bits of `value` into the `width`-bit field starting
/// `bit_offset` bits into `bytes`, leaving every other bit as it was. Bits
/// that fall outside `bytes` are dropped; `width` is capped at 64.
pub fn bits_set(bytes: &mut [u8], bit_offset: u32, width: u32, value: u64) {
    let width = width.min(64);
    if width == 0 {
        return;
    }
    let first = (bit_offset / 8) as usize;
    let shift = bit_offset % 8;
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let field_mask = u128::from(mask) << shift;
    let field_bits = u128::from(value & mask) << shift;
    for i in 0..9usize {
        let Some(b) = bytes.get_mut(first.saturating_add(i)) else {
            break;
        };
        let m = (field_mask >> (8 * i)) as u8;
        let v = (field_bits >> (8 * i)) as u8;
        *b = (*b & !m) | v;
    }
}

/// Copies a `T` out of `bytes` at `offset` (a union member). Bytes past the
/// end of `bytes` read as zero.
pub fn load_at<T: Plain>(bytes: &[u8], offset: usize) -> T {
    let mut out = T::zeroed();
    let src = bytes.get(offset..).unwrap_or(&[]);
    let dst = out.as_bytes_mut();
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
    out
}

/// Copies `value` into `bytes` at `offset` (a union member). Bytes that would
/// fall past the end of `bytes` are dropped.
pub fn store_at<T: Plain>(bytes: &mut [u8], offset: usize, value: &T) {
    let src = value.as_bytes();
    let dst = match bytes.get_mut(offset..) {
        Some(d) => d,
        None => return,
    };
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    struct Pair {
        a: u32,
        b: [u8; 2],
        pad: [u8; 2],
    }
    // SAFETY: repr(C), no implicit padding (4 + 2 + 2 bytes, align 4), all
    // fields Plain.
    unsafe impl Plain for Pair {}

    #[test]
    fn round_trip_unaligned() {
        let v = Pair {
            a: 0x0403_0201,
            b: [5, 6],
            pad: [0, 0],
        };
        assert_eq!(v.as_bytes(), &[1, 2, 3, 4, 5, 6, 0, 0]);
        let mut buf = [0u8; 9];
        buf[1..].copy_from_slice(v.as_bytes());
        assert_eq!(Pair::read_from(&buf[1..]), Some(v));
        assert_eq!(Pair::read_from(&buf), None, "length must match exactly");
        assert_eq!(Pair::read_from_prefix(&buf[1..]), Some(v));
        assert_eq!(Pair::read_from_prefix(&buf[..7]), None, "too short");
        assert_eq!(
            Pair::zeroed(),
            Pair {
                a: 0,
                b: [0; 2],
                pad: [0; 2]
            }
        );
    }

    #[test]
    fn primitives_arrays_and_unit() {
        assert_eq!(u16::read_from(&[0x34, 0x12]), Some(0x1234));
        assert_eq!(i8::read_from(&[0xff]), Some(-1));
        assert_eq!(f32::read_from(&1.5f32.to_le_bytes()), Some(1.5));
        assert_eq!(<[u16; 2]>::read_from(&[1, 0, 2, 0]), Some([1, 2]));
        assert_eq!(<()>::read_from(&[]), Some(()));
        assert_eq!(<[u64; 0]>::zeroed().as_bytes().len(), 0);
        let mut x = 0u32;
        x.as_bytes_mut()[3] = 0x80;
        assert_eq!(x, 0x8000_0000);
    }

    #[test]
    fn bitfields() {
        // a:3 = 5, b:5 = -3 (signed), c:12 = 0xabc across bytes 1..3
        let mut bytes = [0u8; 4];
        bits_set(&mut bytes, 0, 3, 5);
        bits_set(&mut bytes, 3, 5, (-3i64) as u64);
        bits_set(&mut bytes, 8, 12, 0xabc);
        assert_eq!(bits_get(&bytes, 0, 3), 5);
        assert_eq!(bits_get_signed(&bytes, 3, 5), -3);
        assert_eq!(bits_get(&bytes, 3, 5), 0b11101);
        assert_eq!(bits_get(&bytes, 8, 12), 0xabc);
        assert_eq!(bits_get_signed(&bytes, 8, 12), 0xabc - 0x1000);
        assert_eq!(bytes, [0b1110_1101, 0xbc, 0x0a, 0]);
        // Overwriting keeps the neighbours.
        bits_set(&mut bytes, 3, 5, 0);
        assert_eq!(bits_get(&bytes, 0, 3), 5);
        assert_eq!(bits_get(&bytes, 8, 12), 0xabc);
        // A full 64-bit field at an odd bit offset spans 9 bytes.
        let mut wide = [0u8; 9];
        bits_set(&mut wide, 7, 64, u64::MAX - 1);
        assert_eq!(bits_get(&wide, 7, 64), u64::MAX - 1);
        assert_eq!(bits_get_signed(&wide, 7, 64), -2);
        assert_eq!(wide[0], 0);
        // Out of range: zeroes, no panic.
        assert_eq!(bits_get(&[], 100, 8), 0);
        bits_set(&mut [], 100, 8, 1);
        assert_eq!(bits_get(&[0xff], 4, 0), 0);
    }

    #[test]
    fn union_members() {
        let mut storage = [0u8; 8];
        store_at(&mut storage, 0, &0x0102_0304u32);
        assert_eq!(load_at::<u16>(&storage, 0), 0x0304);
        assert_eq!(load_at::<[u8; 4]>(&storage, 0), [4, 3, 2, 1]);
        // Past the end: zero-filled / truncated.
        assert_eq!(load_at::<u32>(&storage, 6), 0);
        assert_eq!(load_at::<u64>(&storage, 100), 0);
        store_at(&mut storage, 6, &u32::MAX);
        assert_eq!(storage, [4, 3, 2, 1, 0, 0, 0xff, 0xff]);
        store_at(&mut storage, 100, &1u8);
    }
}

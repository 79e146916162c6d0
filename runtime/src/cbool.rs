//! [`CBool`]: C's `_Bool` as skeletons hold it.

use core::fmt;

/// A C `_Bool` (or `bool`) in memory shared with BPF programs: one byte,
/// false when zero and true otherwise.
///
/// A Rust `bool` must be 0 or 1, but a BPF program may store any byte in a
/// `bool` (`*p = 2` passes the verifier), so reading such memory as a Rust
/// `bool` would be undefined behaviour. `CBool` keeps the byte as it is and
/// converts on access, treating any non-zero byte as `true`, as C does.
/// Generated types use it for every `_Bool`, so a field reads and writes as
/// a Rust `bool` in one step:
///
/// ```
/// use skelgen_runtime::CBool;
///
/// let mut targ_failed = CBool::default(); // what a zeroed .rodata holds
/// assert!(!targ_failed.get());
/// targ_failed = true.into();
/// assert_eq!(targ_failed, true);
/// // A byte a BPF program stored: still `true`.
/// assert!(CBool::from_raw(2).get());
/// ```
///
/// Equality and hashing follow the truth value: `CBool::from_raw(2) ==
/// CBool::TRUE`.
#[repr(transparent)]
#[derive(Clone, Copy, Default)]
pub struct CBool(u8);

impl CBool {
    /// `false` (the byte 0).
    pub const FALSE: Self = Self(0);
    /// `true` (the byte 1, what C stores for `true`).
    pub const TRUE: Self = Self(1);

    /// The C value of `b`: 1 for `true`, 0 for `false`.
    pub const fn new(b: bool) -> Self {
        Self(b as u8)
    }

    /// The truth value: `true` for any non-zero byte.
    pub const fn get(self) -> bool {
        self.0 != 0
    }

    /// Stores `b` (as 1 or 0).
    pub fn set(&mut self, b: bool) {
        *self = Self::new(b);
    }

    /// The byte as stored, which a BPF program may have set to any value.
    pub const fn raw(self) -> u8 {
        self.0
    }

    /// A `CBool` holding exactly `byte`.
    pub const fn from_raw(byte: u8) -> Self {
        Self(byte)
    }
}

impl From<bool> for CBool {
    fn from(b: bool) -> Self {
        Self::new(b)
    }
}

impl From<CBool> for bool {
    fn from(b: CBool) -> Self {
        b.get()
    }
}

impl PartialEq for CBool {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for CBool {}

impl core::hash::Hash for CBool {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.get().hash(state);
    }
}

impl PartialEq<bool> for CBool {
    fn eq(&self, other: &bool) -> bool {
        self.get() == *other
    }
}

impl PartialEq<CBool> for bool {
    fn eq(&self, other: &CBool) -> bool {
        *self == other.get()
    }
}

impl fmt::Debug for CBool {
    /// `true` or `false`; a byte other than 0 or 1 is shown too
    /// (`true (0x02)`), since it says what the BPF program stored.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 | 1 => fmt::Debug::fmt(&self.get(), f),
            b => write!(f, "true ({b:#04x})"),
        }
    }
}

impl fmt::Display for CBool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.get(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::CBool;
    use crate::Plain;

    #[test]
    fn any_non_zero_byte_is_true() {
        for b in 0..=255u8 {
            let c = CBool::from_raw(b);
            assert_eq!(c.get(), b != 0);
            assert_eq!(c, b != 0);
            assert_eq!(bool::from(c), b != 0);
            assert_eq!(c.raw(), b);
        }
        assert_eq!(CBool::from_raw(2), CBool::TRUE);
        assert_ne!(CBool::FALSE, CBool::TRUE);
        assert_eq!(format!("{:?}", CBool::from_raw(2)), "true (0x02)");
        assert_eq!(format!("{:?} {}", CBool::TRUE, CBool::FALSE), "true false");
    }

    #[test]
    fn plain_round_trip() {
        assert_eq!(core::mem::size_of::<CBool>(), 1);
        let mut c = CBool::default();
        assert_eq!(c, false);
        c.set(true);
        assert_eq!(c.as_bytes(), &[1]);
        assert_eq!(CBool::read_from(&[7]).map(CBool::raw), Some(7));
    }
}

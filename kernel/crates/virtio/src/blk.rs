//! virtio-blk (virtio 1.x, 5.2): request types, feature bits, what the
//! configuration space and a request's status byte and used length may
//! say.
//!
//! A request is a chain of a 16-byte header (device reads), the data
//! (device writes it for a read, reads it for a write; absent for a flush)
//! and one status byte the device writes last. The used element's `len`
//! counts the bytes the device wrote into the chain, so for every request
//! it must equal the chain's device-writable bytes: a shorter length means
//! the status byte (the last writable byte) is not covered, and the driver
//! must not trust it or the data (2.7.8.2).

use core::fmt;

use crate::Used;

/// Feature: the device is read-only.
pub const F_RO: u64 = 1 << 5;
/// Feature: the device has a volatile write cache and accepts flushes.
pub const F_FLUSH: u64 = 1 << 9;

/// Request type: read (device to memory).
pub const T_IN: u32 = 0;
/// Request type: write (memory to device).
pub const T_OUT: u32 = 1;
/// Request type: flush.
pub const T_FLUSH: u32 = 4;

/// Status: success.
pub const S_OK: u8 = 0;
/// Status: the device failed the request.
pub const S_IOERR: u8 = 1;
/// Status: the device does not support the request.
pub const S_UNSUPP: u8 = 2;
/// What the driver puts in the status byte before submission: no virtio-blk
/// status, so a byte still holding it was never written by the device.
pub const S_UNSET: u8 = 0xff;

/// Bytes of configuration space the driver reads (`capacity`, le64).
pub const CONFIG_BYTES: usize = 8;

/// Bytes in a sector (virtio-blk counts in 512-byte sectors whatever the
/// device's block size).
pub const SECTOR_BYTES: u64 = 512;

/// The device's configuration, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Sectors of 512 bytes.
    pub capacity: u64,
}

/// A configuration the driver refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// Fewer than [`CONFIG_BYTES`] bytes were given.
    Short(usize),
    /// Capacity 0: nothing to read or write.
    Empty,
    /// More sectors than a byte count of 64 bits can address.
    TooLarge(u64),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Short(n) => {
                write!(f, "configuration of {n} bytes, expected {CONFIG_BYTES}")
            }
            ConfigError::Empty => write!(f, "capacity of 0 sectors"),
            ConfigError::TooLarge(c) => write!(f, "capacity of {c} sectors is beyond 2^64 bytes"),
        }
    }
}

impl Config {
    /// Reads the configuration space bytes (from offset 0).
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        let Some(cap) = bytes.first_chunk::<CONFIG_BYTES>() else {
            return Err(ConfigError::Short(bytes.len()));
        };
        let capacity = u64::from_le_bytes(*cap);
        if capacity == 0 {
            return Err(ConfigError::Empty);
        }
        if capacity.checked_mul(SECTOR_BYTES).is_none() {
            return Err(ConfigError::TooLarge(capacity));
        }
        Ok(Config { capacity })
    }

    /// Capacity in bytes (cannot overflow: checked by `parse`).
    pub fn bytes(&self) -> u64 {
        self.capacity * SECTOR_BYTES
    }
}

/// Why one request's response is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Status IOERR: the device failed the request.
    IoError,
    /// Status UNSUPP: the device does not do this request.
    Unsupported,
    /// The status byte still holds [`S_UNSET`]: the device did not write it.
    StatusNotWritten,
    /// A status byte virtio-blk does not define.
    BadStatus(u8),
    /// The used length is not the chain's device-writable length.
    BadLength { len: u32, expected: u64 },
}

impl ResponseError {
    /// The device's own verdict (IOERR, UNSUPP), as opposed to a response
    /// that breaks the protocol.
    pub fn is_device_status(&self) -> bool {
        matches!(self, ResponseError::IoError | ResponseError::Unsupported)
    }

    /// The status byte the error came from, for [`ResponseError::IoError`]
    /// and [`ResponseError::Unsupported`].
    pub fn status(&self) -> Option<u8> {
        match self {
            ResponseError::IoError => Some(S_IOERR),
            ResponseError::Unsupported => Some(S_UNSUPP),
            _ => None,
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ResponseError::IoError => write!(f, "device reported an I/O error"),
            ResponseError::Unsupported => write!(f, "device does not support the request"),
            ResponseError::StatusNotWritten => write!(f, "device did not write the status byte"),
            ResponseError::BadStatus(s) => {
                write!(f, "status byte {s:#04x} is not a virtio-blk status")
            }
            ResponseError::BadLength { len, expected } => write!(
                f,
                "device says it wrote {len} bytes of a chain with {expected} writable"
            ),
        }
    }
}

/// Checks a status byte.
pub fn check_status(status: u8) -> Result<(), ResponseError> {
    match status {
        S_OK => Ok(()),
        S_IOERR => Err(ResponseError::IoError),
        S_UNSUPP => Err(ResponseError::Unsupported),
        S_UNSET => Err(ResponseError::StatusNotWritten),
        s => Err(ResponseError::BadStatus(s)),
    }
}

/// Checks a returned request: its used length, then the status byte the
/// device wrote.
pub fn check_response(used: &Used, status: u8) -> Result<(), ResponseError> {
    if u64::from(used.len) != used.writable {
        return Err(ResponseError::BadLength {
            len: used.len,
            expected: used.writable,
        });
    }
    check_status(status)
}

/// The descriptor length of a data buffer of `len` bytes (descriptor
/// lengths are 32-bit), or `None` if it does not fit with the status byte.
pub fn data_len(len: usize) -> Option<u32> {
    u32::try_from(len).ok().filter(|&l| l < u32::MAX)
}

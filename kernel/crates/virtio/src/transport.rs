//! virtio-mmio transport (virtio 1.x, 4.2): what the identity registers,
//! the offered features, the queue size and the configuration generation
//! counter may say, and what the driver does with each.

use core::fmt;

/// `MagicValue` of every virtio-mmio window ("virt", little-endian).
pub const MAGIC: u32 = 0x7472_6976;

/// Feature bit every modern device offers and every modern driver accepts.
pub const F_VERSION_1: u64 = 1 << 32;

/// Device types (virtio 1.x, 5).
pub const DEVICE_ID_BLOCK: u32 = 2;

/// Why a transport could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    BadMagic(u32),
    Legacy,
    UnsupportedVersion(u32),
    NoDevice,
    FeaturesRejected,
    QueueUnavailable,
    /// The queue is smaller than one request's descriptor chain.
    QueueTooSmall {
        max: u32,
        needed: u16,
    },
    QueueInUse,
    OutOfMemory,
    /// The device did not read back status 0 after a reset.
    ResetTimeout,
    /// The configuration generation counter kept changing while the
    /// configuration space was read.
    ConfigUnstable,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::BadMagic(m) => write!(f, "not a virtio-mmio device (magic {m:#x})"),
            TransportError::Legacy => write!(
                f,
                "legacy virtio-mmio (version 1) device; start QEMU with -global virtio-mmio.force-legacy=false"
            ),
            TransportError::UnsupportedVersion(v) => {
                write!(f, "unsupported virtio-mmio version {v}")
            }
            TransportError::NoDevice => write!(f, "no device behind this transport"),
            TransportError::FeaturesRejected => {
                write!(f, "device rejected the negotiated features")
            }
            TransportError::QueueUnavailable => write!(f, "queue 0 does not exist"),
            TransportError::QueueTooSmall { max, needed } => write!(
                f,
                "queue 0 holds at most {max} descriptors, a request needs {needed}"
            ),
            TransportError::QueueInUse => write!(f, "queue 0 is already live"),
            TransportError::OutOfMemory => write!(f, "no memory for the virtqueue"),
            TransportError::ResetTimeout => write!(f, "device did not complete its reset"),
            TransportError::ConfigUnstable => {
                write!(f, "configuration space kept changing while it was read")
            }
        }
    }
}

/// Checks the identity registers (`MagicValue`, `Version`, `DeviceID`) and
/// returns the device type. An empty slot (device id 0) is
/// [`TransportError::NoDevice`] whatever the version.
pub fn check_identity(magic: u32, version: u32, device_id: u32) -> Result<u32, TransportError> {
    if magic != MAGIC {
        return Err(TransportError::BadMagic(magic));
    }
    if device_id == 0 {
        return Err(TransportError::NoDevice);
    }
    match version {
        2 => Ok(device_id),
        1 => Err(TransportError::Legacy),
        v => Err(TransportError::UnsupportedVersion(v)),
    }
}

/// The features the driver accepts from `offered`: `wanted` ∩ `offered`,
/// plus VERSION_1, which the device must offer.
pub fn accept_features(offered: u64, wanted: u64) -> Result<u64, TransportError> {
    if offered & F_VERSION_1 == 0 {
        return Err(TransportError::FeaturesRejected);
    }
    Ok(offered & (wanted | F_VERSION_1))
}

/// The size of a queue the device offers at most `max` entries of
/// (`QueueNumMax`): `wanted`, or less if the device offers less, and at
/// least `needed` (the longest chain the driver builds).
pub fn queue_size(max: u32, wanted: u16, needed: u16) -> Result<u16, TransportError> {
    if max == 0 {
        return Err(TransportError::QueueUnavailable);
    }
    let size = u32::from(wanted).min(max).min(crate::MAX_QUEUE_SIZE as u32) as u16;
    if size < needed.max(1) {
        return Err(TransportError::QueueTooSmall { max, needed });
    }
    Ok(size)
}

/// Reads a consistent copy of configuration space into `out` (virtio 1.x,
/// 2.5.1): `generation` before and after `read` must agree. Gives up with
/// [`TransportError::ConfigUnstable`] after `tries` attempts rather than
/// spin forever on a device whose counter never settles.
pub fn read_consistent(
    tries: u32,
    mut generation: impl FnMut() -> u32,
    mut read: impl FnMut(&mut [u8]),
    out: &mut [u8],
) -> Result<(), TransportError> {
    for _ in 0..tries {
        let before = generation();
        read(out);
        if generation() == before {
            return Ok(());
        }
    }
    Err(TransportError::ConfigUnstable)
}

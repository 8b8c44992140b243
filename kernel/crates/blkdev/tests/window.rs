//! Window: a partition of another device.

use blkdev::{BlockDevice, BlockError, FaultyDisk, Op, RamDisk, Request, SECTOR_SIZE, Window};

#[test]
fn window_reads_and_writes_land_at_its_offset() {
    let mut w = Window::new(RamDisk::new(64), 10, 20)
        .map_err(|(_, e)| e)
        .unwrap();
    assert_eq!(w.sector_count(), 20);
    let data: Vec<u8> = (0..3 * SECTOR_SIZE).map(|i| (i * 7) as u8).collect();
    w.write_sectors(17, &data).unwrap();
    let mut back = vec![0u8; 3 * SECTOR_SIZE];
    w.read_sectors(17, &mut back).unwrap();
    assert_eq!(back, data);
    // On the inner device the data sits at 10 + 17.
    let mut inner = w.into_inner();
    let mut raw = vec![0u8; 3 * SECTOR_SIZE];
    inner.read_sectors(27, &mut raw).unwrap();
    assert_eq!(raw, data);
    let mut before = vec![1u8; SECTOR_SIZE];
    inner.read_sectors(26, &mut before).unwrap();
    assert!(
        before.iter().all(|&b| b == 0),
        "sector before the write touched"
    );
}

#[test]
fn window_refuses_requests_past_its_end_even_inside_the_device() {
    let mut w = Window::new(RamDisk::new(64), 10, 20)
        .map_err(|(_, e)| e)
        .unwrap();
    let mut buf = vec![0u8; 2 * SECTOR_SIZE];
    assert_eq!(
        w.read_sectors(19, &mut buf),
        Err(BlockError::OutOfRange {
            sector: 19,
            count: 2,
            capacity: 20
        })
    );
    let r = Request {
        tag: 1,
        op: Op::Write,
        sector: 20,
        buf: buf.as_mut_ptr(),
        len: SECTOR_SIZE,
    };
    // SAFETY: refused at submission; the buffer outlives the call anyway.
    assert!(matches!(
        unsafe { w.submit(r) },
        Err(BlockError::OutOfRange { .. })
    ));
    assert_eq!(w.in_flight(), 0);
}

#[test]
fn window_outside_the_device_is_refused() {
    assert!(Window::new(RamDisk::new(64), 60, 5).is_err());
    assert!(Window::new(RamDisk::new(64), 0, 0).is_err());
    assert!(Window::new(RamDisk::new(64), u64::MAX, 2).is_err());
    let (back, e) = Window::new(RamDisk::new(64), 1, 64).err().unwrap();
    assert_eq!(back.sector_count(), 64);
    assert!(matches!(e, BlockError::OutOfRange { capacity: 64, .. }));
    let w = Window::whole(RamDisk::new(64));
    assert_eq!((w.start(), w.sector_count()), (0, 64));
}

#[test]
fn device_errors_name_window_sectors() {
    let mut disk = FaultyDisk::new(RamDisk::new(64));
    disk.fail_read(35);
    let mut w = Window::new(disk, 30, 30).map_err(|(_, e)| e).unwrap();
    let mut buf = vec![0u8; SECTOR_SIZE];
    match w.read_sectors(5, &mut buf) {
        Err(BlockError::Io { sector, .. }) => assert_eq!(sector, 5),
        other => panic!("want an I/O error at window sector 5, got {other:?}"),
    }
    w.read_sectors(6, &mut buf).unwrap();
}

use super::*;
extern crate std;
use std::string::ToString;

fn entry(s: &mut [u8; 512], i: usize, flag: u8, kind: u8, start: u32, len: u32) {
    let e = &mut s[446 + 16 * i..446 + 16 * (i + 1)];
    e[0] = flag;
    e[4] = kind;
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&len.to_le_bytes());
}

fn table() -> [u8; 512] {
    let mut s = [0u8; 512];
    s[440..444].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}

#[test]
fn two_fat32_partitions_as_sd_image_writes_them() {
    let mut s = table();
    entry(&mut s, 0, 0x80, 0x0c, 2048, 131072);
    entry(&mut s, 1, 0x00, 0x0c, 133120, 391168);
    let t = parse(&s, 524288).unwrap();
    assert_eq!(t.signature, 0x1234_5678);
    assert_eq!(t.len(), 2);
    let p: [&Partition; 2] = {
        let mut it = t.partitions();
        [it.next().unwrap(), it.next().unwrap()]
    };
    assert_eq!(
        *p[0],
        Partition {
            index: 1,
            kind: 0x0c,
            bootable: true,
            start: 2048,
            sectors: 131072
        }
    );
    assert_eq!(p[1].start, 133120);
    assert_eq!(p[1].end(), 524288);
    assert!(p[0].is_fat32() && p[1].is_fat32() && !p[1].bootable);
}

#[test]
fn unused_entries_are_skipped_in_any_slot() {
    let mut s = table();
    entry(&mut s, 2, 0, 0x83, 100, 50);
    let t = parse(&s, 1000).unwrap();
    let only = t.partitions().next().map(|p| (p.index, p.kind));
    assert_eq!(only, Some((3, 0x83)));
    assert!(parse(&table(), 10).unwrap().is_empty());
}

#[test]
fn bad_signature_is_refused() {
    let mut s = table();
    entry(&mut s, 0, 0, 0x0c, 2048, 100);
    s[511] = 0x00;
    let e = parse(&s, 10_000).unwrap_err();
    assert_eq!(
        e,
        MbrError::NoSignature {
            found: [0x55, 0x00]
        }
    );
    assert!(e.to_string().contains("55 00"));
    assert_eq!(parse(&s[..100], 10_000), Err(MbrError::Short { len: 100 }));
}

#[test]
fn out_of_range_partition_is_refused() {
    let mut s = table();
    entry(&mut s, 0, 0, 0x0c, 2048, 131072);
    entry(&mut s, 1, 0, 0x0c, 133120, 391169); // one sector past the end
    assert_eq!(
        parse(&s, 524288),
        Err(MbrError::OutOfRange {
            index: 2,
            start: 133120,
            sectors: 391169,
            disk: 524288
        })
    );
    // u32 fields cannot overflow u64 arithmetic.
    let mut s = table();
    entry(&mut s, 0, 0, 0x0c, u32::MAX, u32::MAX);
    assert!(matches!(parse(&s, u64::MAX / 2), Ok(_)));
    assert!(matches!(
        parse(&s, 1 << 32),
        Err(MbrError::OutOfRange { index: 1, .. })
    ));
}

#[test]
fn overlapping_partitions_are_refused() {
    let mut s = table();
    entry(&mut s, 0, 0, 0x0c, 2048, 1000);
    entry(&mut s, 3, 0, 0x0c, 3047, 10); // shares sector 3047
    assert_eq!(parse(&s, 10_000), Err(MbrError::Overlap { a: 1, b: 4 }));
    // Touching is fine.
    entry(&mut s, 3, 0, 0x0c, 3048, 10);
    assert_eq!(parse(&s, 10_000).unwrap().len(), 2);
}

#[test]
fn malformed_entries_are_refused() {
    let mut s = table();
    entry(&mut s, 1, 0x01, 0x0c, 10, 10);
    assert_eq!(
        parse(&s, 100),
        Err(MbrError::BadBootFlag { index: 2, flag: 1 })
    );
    let mut s = table();
    entry(&mut s, 0, 0, 0x0c, 0, 10);
    assert_eq!(parse(&s, 100), Err(MbrError::Empty { index: 1 }));
    let mut s = table();
    entry(&mut s, 0, 0, 0x0c, 10, 0);
    assert_eq!(parse(&s, 100), Err(MbrError::Empty { index: 1 }));
    let mut s = table();
    entry(&mut s, 0, 0, 0xee, 1, 99);
    assert_eq!(parse(&s, 100), Err(MbrError::Gpt));
}

#[test]
fn extended_entries_are_listed_not_followed() {
    let mut s = table();
    entry(&mut s, 0, 0, 0x0f, 2048, 4096);
    let t = parse(&s, 10_000).unwrap();
    let p = t.partitions().next().unwrap();
    assert!(p.is_extended() && !p.is_fat32());
}

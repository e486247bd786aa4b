use std::fs;

use super::*;

fn payload(i: usize) -> Vec<u8> {
    format!("batch-{i}").into_bytes()
}

fn segments_on_disk(dir: &Path) -> Vec<PathBuf> {
    list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn pending_payloads(r: &Recovered) -> Vec<Vec<u8>> {
    r.pending.iter().map(|(_, p)| p.clone()).collect()
}

#[test]
fn reopen_returns_unacknowledged_records_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, recovered) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    assert!(recovered.pending.is_empty());
    let seqs: Vec<u64> = (0..5).map(|i| log.append(&payload(i)).unwrap()).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4]);
    log.ack(1).unwrap();
    log.ack(3).unwrap();
    drop(log);

    let (mut log, recovered) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    assert_eq!(recovered.corrupt, 0);
    assert_eq!(
        recovered
            .pending
            .iter()
            .map(|(s, _)| *s)
            .collect::<Vec<_>>(),
        [0, 2, 4]
    );
    assert_eq!(
        pending_payloads(&recovered),
        [payload(0), payload(2), payload(4)]
    );
    // Numbering continues after the highest sequence seen: no reuse, no duplicates.
    assert_eq!(log.append(&payload(5)).unwrap(), 5);
    log.ack(0).unwrap();
    drop(log);
    let (_, recovered) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    assert_eq!(
        recovered
            .pending
            .iter()
            .map(|(s, _)| *s)
            .collect::<Vec<_>>(),
        [2, 4, 5]
    );
}

#[test]
fn a_torn_tail_is_detected_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    for i in 0..3 {
        log.append(&payload(i)).unwrap();
    }
    drop(log);
    let segment = &segments_on_disk(dir.path())[0];
    let len = fs::metadata(segment).unwrap().len();
    // Cut the last record in the middle of its payload, as a crash during write would.
    fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let (mut log, recovered) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    assert_eq!(recovered.corrupt, 1);
    assert_eq!(pending_payloads(&recovered), [payload(0), payload(1)]);
    // Appending after a torn tail goes to a new segment and is read back intact.
    let seq = log.append(&payload(9)).unwrap();
    assert_eq!(seq, 2);
    drop(log);
    let (_, recovered) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    assert_eq!(
        pending_payloads(&recovered),
        [payload(0), payload(1), payload(9)]
    );
    assert_eq!(recovered.corrupt, 1, "the torn tail is still skipped");
}

#[test]
fn a_torn_header_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    log.append(&payload(0)).unwrap();
    drop(log);
    let segment = &segments_on_disk(dir.path())[0];
    let mut f = fs::OpenOptions::new().append(true).open(segment).unwrap();
    f.write_all(&[7, 0, 0]).unwrap();
    drop(f);
    let (_, recovered) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    assert_eq!(recovered.corrupt, 1);
    assert_eq!(pending_payloads(&recovered), [payload(0)]);
}

#[test]
fn a_bad_checksum_ends_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    for i in 0..3 {
        log.append(&payload(i)).unwrap();
    }
    drop(log);
    let segment = &segments_on_disk(dir.path())[0];
    let mut data = fs::read(segment).unwrap();
    // Flip one payload byte of the second record.
    let second = MAGIC.len() + HEADER + payload(0).len();
    data[second + HEADER] ^= 0xff;
    fs::write(segment, &data).unwrap();

    let (_, recovered) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    assert_eq!(recovered.corrupt, 1);
    assert_eq!(pending_payloads(&recovered), [payload(0)]);
}

#[test]
fn an_absurd_length_is_corruption_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    log.append(&payload(0)).unwrap();
    log.append(&payload(1)).unwrap();
    drop(log);
    let segment = &segments_on_disk(dir.path())[0];
    let mut data = fs::read(segment).unwrap();
    let second = MAGIC.len() + HEADER + payload(0).len();
    data[second..second + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(segment, &data).unwrap();
    let (_, recovered) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    assert_eq!(recovered.corrupt, 1);
    assert_eq!(pending_payloads(&recovered), [payload(0)]);
}

#[test]
fn a_file_without_the_magic_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("seg-00000000000000000000.log"),
        b"not a log",
    )
    .unwrap();
    let (mut log, recovered) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    assert_eq!(recovered.corrupt, 1);
    assert!(recovered.pending.is_empty());
    assert_eq!(log.append(&payload(0)).unwrap(), 0);
}

#[test]
fn fully_acknowledged_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    // Tiny segments: each holds two records.
    let size = (MAGIC.len() + 2 * (HEADER + payload(0).len())) as u64;
    let (mut log, _) = Log::open(dir.path(), true, size).unwrap();
    for i in 0..6 {
        log.append(&payload(i)).unwrap();
    }
    assert_eq!(segments_on_disk(dir.path()).len(), 3);
    log.ack(0).unwrap();
    assert_eq!(segments_on_disk(dir.path()).len(), 3);
    log.ack(1).unwrap();
    assert_eq!(segments_on_disk(dir.path()).len(), 2);
    // The newest segment, done, stays until a newer one exists (numbering continues).
    log.ack(5).unwrap();
    log.ack(4).unwrap();
    assert_eq!(segments_on_disk(dir.path()).len(), 2);
    assert_eq!(log.segment_count(), 2);
    log.ack(4).unwrap();
    drop(log);

    let (mut log, recovered) = Log::open(dir.path(), true, size).unwrap();
    assert_eq!(pending_payloads(&recovered), [payload(2), payload(3)]);
    // Numbering continues past deleted segments.
    assert_eq!(log.append(&payload(6)).unwrap(), 6);
    log.ack(2).unwrap();
    log.ack(3).unwrap();
    log.ack(6).unwrap();
    assert_eq!(
        segments_on_disk(dir.path()),
        [dir.path().join("seg-00000000000000000006.log")]
    );
    drop(log);
    let (_, recovered) = Log::open(dir.path(), true, size).unwrap();
    assert!(recovered.pending.is_empty());
}

#[test]
fn acknowledgements_are_compacted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let size = (MAGIC.len() + HEADER + payload(0).len()) as u64;
    let (mut log, _) = Log::open(dir.path(), false, size).unwrap();
    for i in 0..10 {
        log.append(&payload(i)).unwrap();
    }
    for seq in 0..9 {
        log.ack(seq).unwrap();
    }
    let acks = dir.path().join("acks.log");
    assert_eq!(fs::metadata(&acks).unwrap().len(), 9 * ACK as u64);
    drop(log);
    let (mut log, recovered) = Log::open(dir.path(), false, size).unwrap();
    assert_eq!(pending_payloads(&recovered), [payload(9)]);
    assert_eq!(fs::metadata(&acks).unwrap().len(), 0);
    log.compact_acks().unwrap();
    assert_eq!(log.append(&payload(10)).unwrap(), 10);
}

#[test]
fn a_torn_acknowledgement_resends_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    for i in 0..3 {
        log.append(&payload(i)).unwrap();
    }
    log.ack(0).unwrap();
    log.ack(1).unwrap();
    drop(log);
    let acks = dir.path().join("acks.log");
    let len = fs::metadata(&acks).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&acks)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let (_, recovered) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    assert_eq!(recovered.corrupt, 1);
    assert_eq!(pending_payloads(&recovered), [payload(1), payload(2)]);
}

#[test]
fn oversized_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), false, SEGMENT_SIZE).unwrap();
    let big = vec![0u8; MAX_RECORD + 1];
    assert!(matches!(log.append(&big), Err(LogError::TooLarge(_))));
}

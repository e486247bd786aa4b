//! tcplog hot path per line: split a buffer of Kong tcp-log lines (~2 KB each), decode,
//! run the seed's `json_parser`, then group into OTLP logs, all on one core. Reported as
//! lines per second. Instructions and allocations per line: run the bench binary under
//! `valgrind --tool=callgrind` with `--bench 'json_parser per line' --profile-time 1` and
//! divide `split_and_parse`'s inclusive cost and its `malloc`/`realloc` calls by its calls
//! times 1000 lines.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use otelpipe::receivers::stanza::{into_resource_logs, Entry};
use otelpipe::receivers::tcplog::Config;

/// The collector binary's allocator, so the figure is the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LINES: usize = 1000;

fn kong_buffer() -> Vec<u8> {
    let fixture = include_str!("../tests/fixtures/kong/tcp-log-wire-proxied.ndjson");
    let lines: Vec<&str> = fixture.lines().collect();
    let mut buf = Vec::new();
    for i in 0..LINES {
        buf.extend_from_slice(lines[i % lines.len()].as_bytes());
        buf.push(b'\n');
    }
    buf
}

#[inline(never)]
fn split_and_parse(
    input: &otelpipe::receivers::stanza::input::Input,
    buf: &[u8],
    out: &mut Vec<Entry>,
) {
    let mut start = 0;
    while let Ok(Some(t)) = input.splitter.next(&buf[start..], 0, false) {
        input.handle(&buf[start + t.start..start + t.end], 1, &[], out);
        start += t.advance;
    }
}

fn bench(c: &mut Criterion) {
    let config: Config =
        yaml_serde::from_str("listen_address: 127.0.0.1:0\noperators:\n  - type: json_parser\n")
            .unwrap();
    let input = config.validate().unwrap();
    let buf = kong_buffer();
    let mut group = c.benchmark_group("tcplog");
    group.throughput(Throughput::Elements(LINES as u64));
    group.bench_function("split+json_parser per line", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(LINES),
            |out| {
                split_and_parse(&input, black_box(&buf), out);
                assert_eq!(out.len(), LINES);
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("split+json_parser+to OTLP per line", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(LINES);
            split_and_parse(&input, black_box(&buf), &mut out);
            black_box(into_resource_logs(out))
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

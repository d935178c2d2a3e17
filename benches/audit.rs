//! The audit log's cost per signature: sealing and encoding one `SignatureIssued` envelope
//! (the hash chain's HMAC and the stored JSON), in two passes (`Envelope::seal`, then
//! `Envelope::encode`: the event serialized twice) and in one (`Envelope::seal_into`, what the
//! redb store's group commit uses); and one group commit of 32 Sign requests into a redb store
//! in a temporary directory, durable (`fdatasync`) as in service.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::mpsc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use service_core::AuditLog;
use service_core::audit::{ChainKey, Envelope, Event, GENESIS};
use service_core::ports::SignatureRecord;
use store_redb::RedbStore;

const GROUP: usize = 32;

fn event() -> Event {
    Event::SignatureIssued {
        key_id: "0b6f3c1e-2f5a-4d0e-9a57-6f1c2d3e4f50".into(),
        message_sha256: "5e".repeat(32),
        client: "wallet-backend".into(),
        transaction: None,
        at_ms: 1_765_000_000_000,
    }
}

fn envelope(c: &mut Criterion) {
    let key = ChainKey::new([7; 32]);
    let mut g = c.benchmark_group("audit/envelope");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal_then_encode", |b| {
        b.iter(|| {
            let env = Envelope::seal(&key, &GENESIS, event()).unwrap();
            env.encode().unwrap()
        })
    });
    let mut out = Vec::new();
    g.bench_function("seal_into", |b| {
        b.iter(|| {
            let e = event();
            Envelope::seal_into(&key, &GENESIS, &e, &mut out).unwrap()
        })
    });
    g.finish();
}

fn group_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path(), ChainKey::new([7; 32])).unwrap());
    let mut g = c.benchmark_group("audit/redb");
    g.sample_size(20);
    g.throughput(Throughput::Elements(GROUP as u64));
    g.bench_function("group_commit_32_signs", |b| {
        b.iter(|| {
            let (tx, rx) = mpsc::channel();
            for i in 0..GROUP {
                let tx = tx.clone();
                store.submit_signatures(
                    SignatureRecord {
                        key_id: "0b6f3c1e-2f5a-4d0e-9a57-6f1c2d3e4f50".into(),
                        client: "wallet-backend".into(),
                        message_hashes: vec![[i as u8; 32]],
                        idempotency: None,
                        transaction: None,
                    },
                    Box::new(move |r| tx.send(r.is_ok()).unwrap()),
                );
            }
            assert!(rx.iter().take(GROUP).all(|ok| ok));
        })
    });
    g.finish();
}

criterion_group!(benches, envelope, group_commit);
criterion_main!(benches);

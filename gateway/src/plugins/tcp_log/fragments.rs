//! The serialized `route` and `service` objects, written once per entity and worker thread
//! and then copied into each line: they come from the configuration, not the request.
//!
//! Entries are keyed by the entity's `Arc` allocation and hold a `Weak` to it, so an address
//! cannot be reused by another entity while its entry exists; a configuration change brings
//! new `Arc`s and the old entries are pruned once the cache is full.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use crate::declarative::model::{Route, Service};

/// Entries per thread and kind before dead ones are pruned (and all dropped if none is).
const MAX_ENTRIES: usize = 256;

type Entries<T> = RefCell<Vec<(Weak<T>, Box<[u8]>)>>;

thread_local! {
    static ROUTES: Entries<Route> = const { RefCell::new(Vec::new()) };
    static SERVICES: Entries<Service> = const { RefCell::new(Vec::new()) };
}

fn append<T>(
    cache: &'static std::thread::LocalKey<Entries<T>>,
    entity: &Arc<T>,
    out: &mut Vec<u8>,
    write: impl FnOnce(&T, &mut Vec<u8>),
) {
    cache.with(|cell| {
        let Ok(mut entries) = cell.try_borrow_mut() else {
            write(entity, out);
            return;
        };
        let ptr = Arc::as_ptr(entity);
        if let Some((_, bytes)) = entries.iter().find(|(w, _)| std::ptr::eq(w.as_ptr(), ptr)) {
            out.extend_from_slice(bytes);
            return;
        }
        let start = out.len();
        write(entity, out);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|(w, _)| w.strong_count() > 0);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.push((Arc::downgrade(entity), out[start..].into()));
    });
}

/// Appends `route`'s serialized object, written by `write` the first time.
pub fn route(route: &Arc<Route>, out: &mut Vec<u8>, write: impl FnOnce(&Route, &mut Vec<u8>)) {
    append(&ROUTES, route, out, write);
}

/// Appends `service`'s serialized object, written by `write` the first time.
pub fn service(
    service: &Arc<Service>,
    out: &mut Vec<u8>,
    write: impl FnOnce(&Service, &mut Vec<u8>),
) {
    append(&SERVICES, service, out, write);
}

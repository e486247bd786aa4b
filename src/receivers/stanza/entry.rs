//! One log entry as it moves through the operators, and its conversion into OTLP logs
//! (stanza's `adapter/converter.go`).

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::value;

/// A log entry: what an input read, plus what operators wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    /// The body: the line as a string until a parser is told to replace it.
    pub body: AnyValue,
    /// Log record attributes.
    pub attributes: Vec<KeyValue>,
    /// Resource attributes; entries are grouped by them.
    pub resource: Vec<KeyValue>,
    /// Event time, Unix ns; 0 = unset.
    pub timestamp: u64,
    /// Receive time, Unix ns.
    pub observed_timestamp: u64,
    /// OTLP severity number; 0 = unset.
    pub severity: i32,
    /// Severity text as parsed.
    pub severity_text: String,
    /// Trace id bytes (16) when a trace parser set it.
    pub trace_id: Vec<u8>,
    /// Span id bytes (8).
    pub span_id: Vec<u8>,
    /// W3C trace flags.
    pub trace_flags: u32,
    /// Instrumentation scope name.
    pub scope_name: String,
}

impl Entry {
    /// A new entry with a string body, observed now.
    pub fn new(body: AnyValue, observed_timestamp: u64) -> Self {
        Self {
            body,
            observed_timestamp,
            ..Self::default()
        }
    }

    fn into_record(self) -> LogRecord {
        LogRecord {
            time_unix_nano: self.timestamp,
            observed_time_unix_nano: self.observed_timestamp,
            severity_number: self.severity,
            severity_text: self.severity_text,
            body: Some(self.body),
            attributes: self.attributes,
            dropped_attributes_count: 0,
            flags: self.trace_flags,
            trace_id: self.trace_id,
            span_id: self.span_id,
            event_name: String::new(),
        }
    }
}

/// Unix time now, ns.
pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn same_resource(a: &[KeyValue], b: &[KeyValue]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|kv| value::get(b, &kv.key) == Some(kv.value.as_ref().unwrap_or(&value::nil())))
}

/// Groups entries into ResourceLogs by resource content, then ScopeLogs by scope name,
/// keeping the entries' order within each group.
pub fn into_resource_logs(entries: Vec<Entry>) -> Vec<ResourceLogs> {
    let mut out: Vec<ResourceLogs> = Vec::new();
    // Usually every entry lands in the first group: it gets room for all of them.
    let mut first_capacity = entries.len();
    for mut entry in entries {
        let resource = std::mem::take(&mut entry.resource);
        let scope = std::mem::take(&mut entry.scope_name);
        let index = out.iter().position(|rl| {
            same_resource(
                rl.resource.as_ref().map_or(&[][..], |r| &r.attributes),
                &resource,
            )
        });
        let rl = if let Some(i) = index {
            &mut out[i]
        } else {
            out.push(ResourceLogs {
                resource: Some(Resource {
                    attributes: resource,
                    ..Resource::default()
                }),
                scope_logs: Vec::new(),
                schema_url: String::new(),
            });
            out.last_mut().expect("just pushed")
        };
        let scope_index = rl
            .scope_logs
            .iter()
            .position(|s| s.scope.as_ref().map_or("", |s| &s.name) == scope);
        let sl = if let Some(i) = scope_index {
            &mut rl.scope_logs[i]
        } else {
            rl.scope_logs.push(ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: scope,
                    ..InstrumentationScope::default()
                }),
                log_records: Vec::with_capacity(std::mem::take(&mut first_capacity)),
                schema_url: String::new(),
            });
            rl.scope_logs.last_mut().expect("just pushed")
        };
        sl.log_records.push(entry.into_record());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_resource_then_scope() {
        let mut a = Entry::new(value::string("a"), 1);
        a.resource.push(KeyValue {
            key_strindex: 0,
            key: "host".into(),
            value: Some(value::string("x")),
        });
        let b = Entry::new(value::string("b"), 2);
        let mut c = a.clone();
        c.body = value::string("c");
        c.scope_name = "s".into();
        let mut d = a.clone();
        d.body = value::string("d");
        let logs = into_resource_logs(vec![a, b, c, d]);
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[0].scope_logs.len(), 2);
        assert_eq!(logs[0].scope_logs[0].log_records.len(), 2);
        assert_eq!(logs[0].scope_logs[1].scope.as_ref().unwrap().name, "s");
        assert_eq!(
            logs[1].scope_logs[0].log_records[0].observed_time_unix_nano,
            2
        );
        assert_eq!(logs[1].scope_logs[0].log_records[0].time_unix_nano, 0);
    }
}

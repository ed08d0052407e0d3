//! Forwards the core's warnings and errors to Python's `logging` module,
//! under the logger named `blit`, so that a Python program or the CLI shows
//! them, for example the fallback from the data plane to gRPC streaming.

use std::fmt::Write as _;
use std::sync::Once;

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Installs the forwarding subscriber once per process. It is installed on
/// the first transfer rather than at import, so that `blitd` run through
/// the extension keeps its own log output.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(PythonLogging);
        // Another subscriber may already be set by an embedding program;
        // then that one receives the events instead.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

struct PythonLogging;

impl<S: Subscriber> Layer<S> for PythonLogging {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let level = *event.metadata().level();
        // Less severe than WARN: debug detail that Python need not see.
        if level > Level::WARN {
            return;
        }
        let mut message = MessageText::default();
        event.record(&mut message);
        let python_level = if level == Level::ERROR { 40 } else { 30 };
        Python::attach(|py| {
            let logged = py
                .import("logging")
                .and_then(|logging| logging.call_method1("getLogger", ("blit",)))
                .and_then(|logger| logger.call_method1("log", (python_level, message.text)));
            if let Err(err) = logged {
                err.print(py);
            }
        });
    }
}

/// Collects an event's message and its other fields as `key=value`.
#[derive(Default)]
struct MessageText {
    text: String,
}

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
            return;
        }
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let _ = write!(self.text, "{}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.insert_str(0, value);
            return;
        }
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let _ = write!(self.text, "{}={value}", field.name());
    }
}

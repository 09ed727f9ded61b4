//! Alerts: notifiers and incidents (built by the alerts work).

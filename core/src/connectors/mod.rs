//! Connectors: calls from flows to third-party APIs. The generic HTTP
//! connector is configured once per project and used by `connector` steps.

pub mod http;

pub use http::{ConnectorAuth, ConnectorCall, ConnectorResponse, ConnectorTestResult, HttpConnector, HttpConnectorConfig, Method};

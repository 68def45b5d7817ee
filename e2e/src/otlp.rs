//! An OpenTelemetry collector for tests: takes spans over OTLP/HTTP (protobuf or JSON, on
//! `/v1/traces`) and OTLP/gRPC, decodes them with `opentelemetry-proto`, and keeps them for the
//! test to read. It runs on a runtime of its own, so tests that drive real processes with blocking
//! calls can use it.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        trace_service_server::{TraceService, TraceServiceServer},
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    },
    common::v1::any_value::Value as AnyValue,
};
use prost::Message;

/// One span as the collector received it; ids in lowercase hex (an empty parent for a root).
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// `service.name` of the process that sent it.
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    /// OTLP's span kind: 1 internal, 2 server, 3 client.
    pub kind: i32,
    /// Its attributes, as text.
    pub attributes: HashMap<String, String>,
    /// How it arrived: `http/protobuf`, `http/json` or `grpc`.
    pub protocol: &'static str,
}

type Received = Arc<Mutex<Vec<ReceivedSpan>>>;

/// A running collector; stops when dropped.
pub struct Collector {
    /// `http://127.0.0.1:<port>`: OTLP/HTTP (the exporter appends `/v1/traces`).
    pub http_endpoint: String,
    /// `http://127.0.0.1:<port>`: OTLP/gRPC.
    pub grpc_endpoint: String,
    received: Received,
    _runtime: tokio::runtime::Runtime,
}

fn text(value: Option<AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(text)) => text,
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keeps the spans of `request`.
fn keep(received: &Received, request: ExportTraceServiceRequest, protocol: &'static str) {
    let mut spans = received.lock().expect("never poisoned");
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .into_iter()
            .flat_map(|resource| resource.attributes)
            .find(|attribute| attribute.key == "service.name")
            .map(|attribute| text(attribute.value.and_then(|v| v.value)))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: span.kind,
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|kv| (kv.key, text(kv.value.and_then(|v| v.value))))
                        .collect(),
                    protocol,
                });
            }
        }
    }
}

/// `POST /v1/traces`: an export request in protobuf or JSON, as its content type says.
async fn export_http(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<ExportTraceServiceRequest>(&body) {
            Ok(request) => {
                keep(&received, request, "http/json");
                ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
            }
            Err(e) => (StatusCode::BAD_REQUEST, format!("not OTLP JSON: {e}")).into_response(),
        }
    } else if content_type.starts_with("application/x-protobuf") {
        match ExportTraceServiceRequest::decode(body) {
            Ok(request) => {
                keep(&received, request, "http/protobuf");
                (
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
                    .into_response()
            }
            Err(e) => (StatusCode::BAD_REQUEST, format!("not OTLP protobuf: {e}")).into_response(),
        }
    } else {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {content_type:?}"),
        )
            .into_response()
    }
}

struct Grpc(Received);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        keep(&self.0, request.into_inner(), "grpc");
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Starts both listeners on free loopback ports.
    pub fn start() -> Collector {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let received: Received = Arc::default();
        let (http, grpc) = runtime.block_on(async {
            let http = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binds");
            let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binds");
            (http, grpc)
        });
        let http_addr: SocketAddr = http.local_addr().expect("bound");
        let grpc_addr: SocketAddr = grpc.local_addr().expect("bound");
        let app = Router::new()
            .route("/v1/traces", post(export_http))
            .with_state(received.clone());
        runtime.spawn(async move { axum::serve(http, app).await });
        let service = TraceServiceServer::new(Grpc(received.clone()));
        runtime.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(grpc))
                .await
        });
        Collector {
            http_endpoint: format!("http://{http_addr}"),
            grpc_endpoint: format!("http://{grpc_addr}"),
            received,
            _runtime: runtime,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.lock().expect("never poisoned").clone()
    }

    /// The spans received once `done` holds for them, or all received when `timeout` passes.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) || Instant::now() > deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

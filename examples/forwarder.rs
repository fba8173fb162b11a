//! The do-nothing forwarder the load benchmark compares alertrelay with: axum receives a
//! webhook, reqwest posts a fixed body to the robot, the answer is 200. No parsing, no
//! rendering, no checks: the practical ceiling for a gateway on this machine.
//! Run: `forwarder <listen address> <robot url>`.

use axum::Router;
use axum::extract::State;
use axum::routing::post;

const BODY: &str = r#"{"msgtype":"text","text":{"content":"alert"}}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8061".into());
    let robot = args
        .next()
        .ok_or("usage: forwarder <listen address> <robot url>")?;
    let client = reqwest::Client::new();
    let app = Router::new()
        .route("/dingtalk/{profile}/send", post(forward))
        .with_state((client, robot));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn forward(
    State((client, robot)): State<(reqwest::Client, String)>,
) -> axum::http::StatusCode {
    let sent = client
        .post(&robot)
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => axum::http::StatusCode::OK,
        _ => axum::http::StatusCode::BAD_GATEWAY,
    }
}

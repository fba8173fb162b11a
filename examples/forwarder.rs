//! The do-nothing forwarder the load benchmark compares alertrelay with: axum receives a
//! webhook, reqwest posts a fixed body to the robot, the answer is 200. No parsing, no
//! rendering, no checks: the practical ceiling for a gateway on this machine.
//! Run: `forwarder <listen address> <robot url> [message bytes]`; the optional size pads the
//! posted message (to tell the cost of moving a gateway's bytes from the cost of its work).

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;

const BODY: &str = r#"{"msgtype":"text","text":{"content":"alert"}}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8061".into());
    let robot = args
        .next()
        .ok_or("usage: forwarder <listen address> <robot url> [message bytes]")?;
    let size: usize = args.next().map_or(Ok(0), |size| size.parse())?;
    let body = match size.checked_sub(BODY.len()) {
        Some(pad) if pad > 0 => BODY.replace("alert", &"a".repeat(pad + "alert".len())),
        _ => BODY.to_owned(),
    };
    let client = reqwest::Client::new();
    let app = Router::new()
        .route("/dingtalk/{profile}/send", post(forward))
        .with_state((client, robot, Bytes::from(body)));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn forward(
    State((client, robot, body)): State<(reqwest::Client, String, Bytes)>,
) -> axum::http::StatusCode {
    let sent = client
        .post(&robot)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => axum::http::StatusCode::OK,
        _ => axum::http::StatusCode::BAD_GATEWAY,
    }
}

//! A storm across many robots at a double that counts each message when it arrives, a random
//! lag after it was sent (as a loaded DingTalk does): the budget must hold by the robot's
//! clock, not by alertrelay's.

use std::time::Duration;

use super::{assert_within_budget, burst, delivered_hosts, profile, yaml};
use crate::helpers::spawn_app;

const ROBOTS: usize = 20;
const EACH: usize = 25;

#[tokio::test(start_paused = true)]
async fn twenty_robots_whose_arrivals_lag_are_never_sent_more_than_their_limit_a_minute() {
    let profiles: String = (0..ROBOTS)
        .map(|r| profile(&format!("p{r}"), &format!("tok{r}")))
        .collect();
    let app = spawn_app(&yaml(&profiles), &[]).await;
    // Each request is counted up to 140 ms after it was sent; notifications come 150 ms apart
    // for every robot at once, so each robot's first 20 go out alone and spend its budget,
    // and the other 5 wait for its next minute (where a budget counted from the send, not
    // the answer, lets the robot see a 21st message within its minute).
    app.robot.lag_arrivals(Duration::from_millis(140));

    let storms = (0..ROBOTS).map(|r| {
        let app = &app;
        async move {
            let sends = (0..EACH).map(|i| async move {
                tokio::time::sleep(Duration::from_millis(150) * i as u32).await;
                burst(app, &format!("p{r}"), r * EACH + i..r * EACH + i + 1).await
            });
            futures_util::future::join_all(sends).await
        }
    });
    let answers: Vec<(usize, u16)> = futures_util::future::join_all(storms)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect();

    assert_eq!(
        app.robot.refused(130_101),
        0,
        "alertrelay made the robot throttle"
    );
    assert!(answers.iter().all(|(_, s)| *s == 200), "{answers:?}");
    let received = app.robot.received();
    for r in 0..ROBOTS {
        assert_within_budget(&received, &format!("tok{r}"));
    }
    assert_eq!(
        delivered_hosts(&received),
        (0..ROBOTS * EACH).collect::<Vec<_>>()
    );
}

//! The Redis backend against a real `redis-server` (one per test, on a free port, killed when
//! the test ends): connecting and its errors, health, duplicate suppression across replicas,
//! the shared budget by Redis's clock, the shared throttle, and rediss:// through rustls.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use alertrelay::channel::Window;
use alertrelay::state::Identity;
use alertrelay::state::redis::{
    CALL_TIMEOUT, CONNECT_TIMEOUT, RedisClaim, RedisState, RobotHash, StateError, Take, Waited,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;

use crate::helpers::{Process, free_port};

pub(crate) const PASSWORD: &str = "s3cret-Pass-7781";
const SECOND: Duration = Duration::from_secs(1);

/// A `redis-server` child on 127.0.0.1, without persistence, killed (and reaped) on drop.
pub(crate) struct Redis {
    child: Option<Process>,
    port: u16,
    extra: Vec<String>,
    password: Option<&'static str>,
    dir: tempfile::TempDir,
}

impl Redis {
    pub(crate) async fn start() -> Self {
        Self::launch(None, vec![]).await
    }

    pub(crate) async fn with_password() -> Self {
        Self::launch(Some(PASSWORD), vec![]).await
    }

    async fn launch(password: Option<&'static str>, extra: Vec<String>) -> Self {
        Self::launch_on(free_port(), password, extra).await
    }

    async fn launch_on(port: u16, password: Option<&'static str>, extra: Vec<String>) -> Self {
        let mut redis = Self {
            child: None,
            port,
            extra,
            password,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.run().await;
        redis
    }

    /// Starts the server on its port and waits until it answers PING.
    pub(crate) async fn run(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = self.password {
            command.args(["--requirepass", password]);
        }
        #[allow(clippy::zombie_processes)] // `Process` kills and waits on drop.
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "redis-server: {e}; run scripts/test.sh, which installs it (Debian's redis-server)"
            )
        });
        let mut child = Process(child);
        let started = Instant::now();
        while !self.answers().await {
            if let Some(status) = child.0.try_wait().unwrap() {
                panic!("redis-server on port {} exited: {status}", self.port);
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server on port {} did not answer PING",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child = Some(child);
    }

    /// Whether the plain port answers PING (NOAUTH counts: it is up).
    async fn answers(&self) -> bool {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut line = String::new();
        let mut reader = BufReader::new(&mut stream);
        let read = reader.read_line(&mut line);
        matches!(
            tokio::time::timeout(Duration::from_secs(1), read).await,
            Ok(Ok(_))
        ) && (line.starts_with("+PONG") || line.starts_with("-NOAUTH"))
    }

    pub(crate) fn stop(&mut self) {
        self.child = None;
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub(crate) fn url(&self) -> String {
        match self.password {
            Some(password) => self.url_with(password),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    pub(crate) fn url_with(&self, password: &str) -> String {
        format!("redis://:{password}@127.0.0.1:{}/0", self.port)
    }

    async fn state(&self) -> RedisState {
        RedisState::connect(&self.url(), "t").await.unwrap()
    }

    /// A plain connection for looking inside.
    pub(crate) async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

fn identity(n: u8) -> Identity {
    Identity([n; 32])
}

/// Retries `ping` until it succeeds, for at most `within`.
async fn ping_until_up(state: &RedisState, within: Duration) {
    let started = Instant::now();
    while state.ping().await.is_err() {
        assert!(started.elapsed() < within, "Redis not used again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_wrong_or_missing_password_is_a_clear_error_that_never_shows_a_password() {
    let redis = Redis::with_password().await;

    let wrong = "not-the-Pass-1234";
    let error = RedisState::connect(&redis.url_with(wrong), "t")
        .await
        .unwrap_err();
    assert!(matches!(error, StateError::Auth { .. }), "{error:?}");
    assert!(error.is_misconfigured(), "startup stops on it");
    let message = error.to_string();
    assert!(message.contains("password"), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{}", redis.port)),
        "{message}"
    );
    assert!(
        !message.contains(wrong) && !message.contains(PASSWORD),
        "{message}"
    );
    assert!(!format!("{error:?}").contains(wrong));

    let url = format!("redis://127.0.0.1:{}", redis.port);
    let error = RedisState::connect(&url, "t").await.unwrap_err();
    assert!(
        matches!(error, StateError::Auth { .. }),
        "no password: {error:?}"
    );

    let state = RedisState::connect(&redis.url(), "t").await.unwrap();
    state.ping().await.unwrap();
    assert!(state.is_up());
    assert!(!format!("{state:?}").contains(PASSWORD));
}

#[tokio::test]
async fn nothing_listening_is_a_clear_error_at_once() {
    let port = free_port();
    let started = Instant::now();
    let error = RedisState::connect(&format!("redis://127.0.0.1:{port}"), "t")
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < CONNECT_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, StateError::Unreachable { .. }), "{error:?}");
    assert!(!error.is_misconfigured(), "startup goes on without Redis");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[tokio::test]
async fn a_replica_started_while_redis_is_down_uses_it_once_it_is_up() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let state = RedisState::open(&url, "t").unwrap();
    assert!(!state.is_up(), "not known to be up");
    let started = Instant::now();
    let error = state.claim(identity(1), SECOND).await.unwrap_err();
    assert!(started.elapsed() < CALL_TIMEOUT + Duration::from_millis(200));
    assert!(
        matches!(
            error,
            StateError::Unreachable { .. } | StateError::Timeout { .. }
        ),
        "{error:?}"
    );
    let mut health = state.health();

    let _redis = Redis::launch_on(port, None, vec![]).await;
    ping_until_up(&state, Duration::from_secs(5)).await;
    assert!(state.is_up());
    assert!(health.has_changed().unwrap() && *health.borrow_and_update());
    let claim = state.claim(identity(1), SECOND).await.unwrap();
    assert!(matches!(claim, RedisClaim::Mine(_)), "{claim:?}");
}

#[tokio::test]
async fn a_redis_that_never_answers_fails_connect_within_its_timeout() {
    let redis = Redis::start().await;
    // Stopped, its socket still accepts connections, and nothing answers on them.
    assert_eq!(unsafe { libc::kill(redis.pid(), libc::SIGSTOP) }, 0);
    let started = Instant::now();
    let error = RedisState::connect(&redis.url(), "t").await.unwrap_err();
    let took = started.elapsed();
    assert!(
        took <= CONNECT_TIMEOUT + Duration::from_millis(300),
        "{took:?}"
    );
    assert!(
        matches!(error, StateError::Timeout { .. }),
        "{error:?} after {took:?}"
    );
}

#[tokio::test]
async fn an_unreachable_redis_fails_every_call_within_the_timeout_then_is_used_again() {
    let mut redis = Redis::start().await;
    let state = redis.state().await;
    let mut health = state.health();
    assert!(state.is_up());
    state.ping().await.unwrap();
    assert!(!health.has_changed().unwrap());

    let robot = RobotHash::of("dingtalk:t");
    state.claim(identity(2), SECOND).await.unwrap();

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let failed = state.throttled_for(&robot).await;
        let took = started.elapsed();
        assert!(failed.is_err(), "{failed:?}");
        assert!(took < CALL_TIMEOUT + Duration::from_millis(200), "{took:?}");
        assert!(!state.is_up());
    }
    assert!(health.has_changed().unwrap(), "the change is announced");
    assert!(!*health.borrow_and_update());

    redis.run().await;
    ping_until_up(&state, Duration::from_secs(5)).await;
    assert!(state.is_up());
    assert!(health.has_changed().unwrap());
    assert!(*health.borrow_and_update());
    assert_eq!(state.throttled_for(&robot).await.unwrap(), None);
    // A restarted Redis has forgotten the scripts: they are loaded again.
    let claim = state.claim(identity(1), SECOND).await.unwrap();
    assert!(matches!(claim, RedisClaim::Mine(_)), "{claim:?}");
}

#[tokio::test]
async fn a_redis_that_stops_answering_costs_a_call_the_timeout_and_no_more() {
    let redis = Redis::start().await;
    let state = redis.state().await;
    let robot = RobotHash::of("dingtalk:t");

    assert_eq!(unsafe { libc::kill(redis.pid(), libc::SIGSTOP) }, 0);
    for _ in 0..2 {
        let started = Instant::now();
        let error = state.claim(identity(1), Duration::from_secs(5)).await;
        let took = started.elapsed();
        assert!(
            matches!(error, Err(StateError::Timeout { .. })),
            "{error:?}"
        );
        assert!(took >= CALL_TIMEOUT - Duration::from_millis(5), "{took:?}");
        assert!(took < CALL_TIMEOUT + Duration::from_millis(200), "{took:?}");
        assert!(!state.is_up());
    }

    assert_eq!(unsafe { libc::kill(redis.pid(), libc::SIGCONT) }, 0);
    ping_until_up(&state, Duration::from_secs(5)).await;
    assert_eq!(state.throttled_for(&robot).await.unwrap(), None);
    assert!(state.is_up());
}

#[tokio::test]
async fn two_replicas_claiming_at_once_make_one_delivery_and_one_wait() {
    let redis = Redis::start().await;
    let (a, b) = (redis.state().await, redis.state().await);
    for n in 0..50 {
        let id = identity(n);
        let hold = Duration::from_secs(5);
        let (first, second) = tokio::join!(a.claim(id, hold), b.claim(id, hold));
        let (first, second) = (first.unwrap(), second.unwrap());
        let mine = [&first, &second]
            .iter()
            .filter(|c| matches!(c, RedisClaim::Mine(_)))
            .count();
        let waiting = [&first, &second]
            .iter()
            .filter(|c| matches!(c, RedisClaim::InFlight))
            .count();
        assert_eq!((mine, waiting), (1, 1), "{first:?} {second:?}");
    }
}

#[tokio::test]
async fn a_delivered_notification_is_a_duplicate_for_every_replica_until_its_window_passes() {
    let redis = Redis::start().await;
    let (a, b) = (redis.state().await, redis.state().await);
    let id = identity(7);
    let window = Duration::from_millis(800);

    let RedisClaim::Mine(ticket) = a.claim(id, Duration::from_secs(5)).await.unwrap() else {
        panic!("the first claim is ours");
    };
    assert_eq!(ticket.identity(), id);
    assert!(a.settle(ticket, true, window).await.unwrap());
    let delivered = Instant::now();

    for state in [&a, &b] {
        let claim = state.claim(id, Duration::from_secs(5)).await.unwrap();
        assert!(matches!(claim, RedisClaim::Duplicate), "{claim:?}");
    }
    let other = b.claim(identity(8), Duration::from_secs(5)).await.unwrap();
    assert!(matches!(other, RedisClaim::Mine(_)), "another notification");

    tokio::time::sleep_until(delivered + window - Duration::from_millis(300)).await;
    let claim = b.claim(id, Duration::from_secs(5)).await.unwrap();
    assert!(
        matches!(claim, RedisClaim::Duplicate),
        "still in the window"
    );
    tokio::time::sleep_until(delivered + window + Duration::from_millis(100)).await;
    let claim = b.claim(id, Duration::from_secs(5)).await.unwrap();
    assert!(
        matches!(claim, RedisClaim::Mine(_)),
        "window over: {claim:?}"
    );
}

#[tokio::test]
async fn a_failed_delivery_is_free_to_claim_again_at_once() {
    let redis = Redis::start().await;
    let (a, b) = (redis.state().await, redis.state().await);
    let id = identity(3);
    let RedisClaim::Mine(ticket) = a.claim(id, Duration::from_secs(5)).await.unwrap() else {
        panic!("ours");
    };
    assert!(matches!(
        b.claim(id, Duration::from_secs(5)).await.unwrap(),
        RedisClaim::InFlight
    ));
    assert!(
        a.settle(ticket, false, Duration::from_secs(300))
            .await
            .unwrap()
    );
    let claim = b.claim(id, Duration::from_secs(5)).await.unwrap();
    assert!(matches!(claim, RedisClaim::Mine(_)), "{claim:?}");
}

#[tokio::test]
async fn a_waiter_learns_how_the_delivery_in_flight_ended() {
    let redis = Redis::start().await;
    let (a, b) = (redis.state().await, redis.state().await);
    let hold = Duration::from_secs(5);

    // Delivered while waited for.
    let RedisClaim::Mine(ticket) = a.claim(identity(1), hold).await.unwrap() else {
        panic!("ours");
    };
    let waiter = tokio::spawn({
        let b = b.clone();
        async move {
            let waited = b.wait_for(identity(1), Instant::now() + Duration::from_secs(3));
            (waited.await, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.settle(ticket, true, Duration::from_secs(60))
        .await
        .unwrap();
    let settled = Instant::now();
    let (waited, at) = waiter.await.unwrap();
    assert_eq!(waited.unwrap(), Waited::Delivered);
    assert!(at < settled + Duration::from_millis(150), "woke late");

    // Failed while waited for: freed, and the waiter's claim is then its own.
    let RedisClaim::Mine(ticket) = a.claim(identity(2), hold).await.unwrap() else {
        panic!("ours");
    };
    let waiter = tokio::spawn({
        let b = b.clone();
        async move {
            b.wait_for(identity(2), Instant::now() + Duration::from_secs(3))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.settle(ticket, false, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), Waited::Freed);
    assert!(matches!(
        b.claim(identity(2), hold).await.unwrap(),
        RedisClaim::Mine(_)
    ));

    // Still in flight at the deadline, which bounds the wait.
    let started = Instant::now();
    let deadline = started + Duration::from_millis(300);
    assert_eq!(
        a.wait_for(identity(2), deadline).await.unwrap(),
        Waited::StillInFlight
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(450),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_crashed_holders_claim_expires_after_in_flight_for() {
    let redis = Redis::start().await;
    let id = identity(9);
    let in_flight_for = Duration::from_millis(400);
    let claimed = Instant::now();
    {
        // A replica that claims and dies: its state and ticket vanish unsettled.
        let crashed = redis.state().await;
        let claim = crashed.claim(id, in_flight_for).await.unwrap();
        assert!(matches!(claim, RedisClaim::Mine(_)));
    }
    let other = redis.state().await;
    assert!(matches!(
        other.claim(id, in_flight_for).await.unwrap(),
        RedisClaim::InFlight
    ));
    let waited = other
        .wait_for(id, Instant::now() + Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(waited, Waited::Freed);
    let freed = claimed.elapsed();
    assert!(
        freed >= in_flight_for - Duration::from_millis(50)
            && freed < in_flight_for + Duration::from_millis(250),
        "{freed:?}"
    );
    assert!(matches!(
        other.claim(id, in_flight_for).await.unwrap(),
        RedisClaim::Mine(_)
    ));
}

#[tokio::test]
async fn only_the_holders_failure_frees_a_claim() {
    let redis = Redis::start().await;
    let (a, b, c) = (
        redis.state().await,
        redis.state().await,
        redis.state().await,
    );
    let id = identity(5);
    let RedisClaim::Mine(stale) = a.claim(id, Duration::from_millis(200)).await.unwrap() else {
        panic!("ours");
    };
    // A's delivery outlasts its claim; B takes it over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let RedisClaim::Mine(holder) = b.claim(id, Duration::from_secs(5)).await.unwrap() else {
        panic!("expired, so B's");
    };

    assert!(
        !a.settle(stale, false, Duration::ZERO).await.unwrap(),
        "not A's any more"
    );
    let claim = c.claim(id, Duration::from_secs(5)).await.unwrap();
    assert!(
        matches!(claim, RedisClaim::InFlight),
        "B still holds it: {claim:?}"
    );

    assert!(b.settle(holder, false, Duration::ZERO).await.unwrap());
    let claim = c.claim(id, Duration::from_secs(5)).await.unwrap();
    assert!(matches!(claim, RedisClaim::Mine(_)), "{claim:?}");
}

#[tokio::test]
async fn a_late_delivery_is_remembered_even_after_its_claim_expired() {
    let redis = Redis::start().await;
    let (a, b) = (redis.state().await, redis.state().await);
    let id = identity(6);
    let RedisClaim::Mine(stale) = a.claim(id, Duration::from_millis(100)).await.unwrap() else {
        panic!("ours");
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Not ours any more, but the robot has it: no replica may post it again.
    assert!(
        !a.settle(stale, true, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(matches!(
        b.claim(id, Duration::from_secs(5)).await.unwrap(),
        RedisClaim::Duplicate
    ));
}

/// Feishu's windows: 5 a second and 100 a minute.
fn feishu() -> [Window; 2] {
    [
        Window {
            limit: 5,
            length: SECOND,
        },
        Window {
            limit: 100,
            length: Duration::from_secs(60),
        },
    ]
}

#[tokio::test]
async fn three_replicas_never_hold_more_slots_than_a_window_allows_by_redis_clock() {
    let redis = Redis::start().await;
    let robot = RobotHash::of("feishu:shared-robot");
    let margin = Duration::from_millis(600); // a second's window gets 10 ms of it
    let started = Instant::now();
    let run_for = Duration::from_millis(2500);

    let mut replicas = Vec::new();
    for seed in 0..3u64 {
        let state = redis.state().await;
        let robot = robot.clone();
        replicas.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            // (taken, settled) by Redis's clock, and every wait answered.
            let (mut slots, mut waits) = (Vec::new(), Vec::new());
            while started.elapsed() < run_for {
                match state
                    .take_slot(&robot, &feishu(), Duration::from_secs(2))
                    .await
                    .unwrap()
                {
                    Take::Slot(slot) => {
                        let taken = slot.taken_at();
                        // The robot takes 0-60 ms to answer.
                        tokio::time::sleep(Duration::from_millis(rng.u64(0..60))).await;
                        let settled = state
                            .settle_slot(slot, margin, Duration::ZERO)
                            .await
                            .unwrap();
                        slots.push((taken, settled));
                    }
                    Take::WaitUntil(wait) => {
                        waits.push(wait);
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            (slots, waits)
        }));
    }
    let (mut slots, mut waits) = (Vec::new(), Vec::new());
    for replica in replicas {
        let (s, w) = replica.await.unwrap();
        slots.extend(s);
        waits.extend(w);
    }

    for window in feishu() {
        let counted = window.length
            + if window.length == SECOND {
                Duration::from_millis(10)
            } else {
                margin
            };
        // At each take, the slots taken by then and not yet out of the window.
        for (at, _) in &slots {
            let held = slots
                .iter()
                .filter(|(taken, settled)| taken <= at && *at < *settled + counted)
                .count();
            assert!(
                held <= window.limit as usize,
                "{held} slots in one {:?} window at {at:?}: {slots:?}",
                window.length
            );
        }
    }
    // Waiting as told, the replicas still use the budget: 5 at once, again a second
    // after their answers, and again: about 15 in 2.5 s, without spinning on Redis.
    assert!(slots.len() >= 12, "{} slots: {slots:?}", slots.len());
    assert!(waits.len() <= 40, "{} waits: {waits:?}", waits.len());
    assert!(
        waits
            .iter()
            .all(|w| *w <= SECOND + Duration::from_millis(10)),
        "no wait is longer than a window after an answer: {waits:?}"
    );
}

#[tokio::test]
async fn an_unsettled_slot_frees_after_its_hold_and_the_window() {
    let redis = Redis::start().await;
    let state = redis.state().await;
    let robot = RobotHash::of("dingtalk:crashed");
    let windows = [Window {
        limit: 1,
        length: Duration::from_millis(400),
    }];
    let hold = Duration::from_millis(300);

    let Take::Slot(lost) = state.take_slot(&robot, &windows, hold).await.unwrap() else {
        panic!("free at first");
    };
    let taken = lost.taken_at();
    drop(lost); // its replica died mid-request

    let mut waits = Vec::new();
    let freed = loop {
        match state.take_slot(&robot, &windows, hold).await.unwrap() {
            Take::Slot(slot) => break slot.taken_at(),
            Take::WaitUntil(wait) => {
                waits.push(wait);
                tokio::time::sleep(wait).await;
            }
        }
    };
    let after = freed - taken;
    assert!(
        after >= hold + windows[0].length
            && after < hold + windows[0].length + Duration::from_millis(250),
        "freed {after:?} after it was taken ({waits:?})"
    );
    assert!(waits.len() <= 3, "{waits:?}");

    // Nothing left behind once every slot is out of its window.
    tokio::time::sleep(hold + windows[0].length + Duration::from_millis(50)).await;
    let mut raw = redis.raw().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("t:budget:*")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test]
async fn a_slot_counts_a_window_from_its_answer_and_a_waiter_is_told_so() {
    let redis = Redis::start().await;
    let (a, b) = (redis.state().await, redis.state().await);
    let robot = RobotHash::of("wecom:one-a-window");
    let window = Duration::from_millis(500);
    let windows = [Window {
        limit: 1,
        length: window,
    }];
    let hold = Duration::from_secs(10);

    let Take::Slot(slot) = a.take_slot(&robot, &windows, hold).await.unwrap() else {
        panic!("free at first");
    };
    // In flight, it frees a window after its answer at the soonest: not hold + window.
    let Take::WaitUntil(wait) = b.take_slot(&robot, &windows, hold).await.unwrap() else {
        panic!("the only slot is in flight");
    };
    assert!(wait <= window, "{wait:?}");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let answered = a
        .settle_slot(slot, Duration::ZERO, Duration::ZERO)
        .await
        .unwrap();
    let Take::WaitUntil(wait) = b.take_slot(&robot, &windows, hold).await.unwrap() else {
        panic!("counted for a window after the answer");
    };
    assert!(
        wait > window - Duration::from_millis(200) && wait <= window,
        "{wait:?}"
    );
    tokio::time::sleep(wait).await;
    let Take::Slot(next) = b.take_slot(&robot, &windows, hold).await.unwrap() else {
        panic!("free once the wait is over");
    };
    assert!(
        next.taken_at() >= answered + window,
        "{:?}",
        next.taken_at() - answered
    );
}

#[tokio::test]
async fn a_lowered_limit_waits_for_enough_slots_to_leave() {
    let redis = Redis::start().await;
    let state = redis.state().await;
    let robot = RobotHash::of("dingtalk:lowered");
    let window = |limit| Window {
        limit,
        length: SECOND,
    };
    let mut answered = Vec::new();
    for _ in 0..3 {
        let Take::Slot(slot) = state.take_slot(&robot, &[window(3)], SECOND).await.unwrap() else {
            panic!("3 free");
        };
        answered.push(
            state
                .settle_slot(slot, Duration::ZERO, Duration::ZERO)
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Limit 2 with 3 counted: the second oldest must leave too, and the wait says when.
    let lowered = [window(2)];
    let take = || state.take_slot(&robot, &lowered, SECOND);
    let Take::WaitUntil(wait) = take().await.unwrap() else {
        panic!("3 counted, 2 allowed");
    };
    tokio::time::sleep(wait).await;
    let Take::Slot(slot) = take().await.unwrap() else {
        panic!("free after the wait it was told ({wait:?})");
    };
    let taken = slot.taken_at();
    let frees = answered[1] + SECOND;
    assert!(
        taken >= frees && taken < frees + Duration::from_millis(200),
        "taken {:?} after the second left",
        taken.as_millis() as i128 - frees.as_millis() as i128
    );
}

#[tokio::test]
async fn a_throttle_set_by_one_replica_is_seen_by_another_with_its_time_left() {
    let redis = Redis::start().await;
    let (a, b) = (redis.state().await, redis.state().await);
    let robot = RobotHash::of("dingtalk:throttled");
    let penalty = Duration::from_millis(700);

    assert_eq!(b.throttled_for(&robot).await.unwrap(), None);
    a.throttle(&robot, penalty).await.unwrap();
    let set = Instant::now();
    let left = b.throttled_for(&robot).await.unwrap().expect("throttled");
    assert!(
        left <= penalty && left > penalty - Duration::from_millis(250),
        "{left:?}"
    );
    assert_eq!(
        b.throttled_for(&RobotHash::of("dingtalk:other"))
            .await
            .unwrap(),
        None
    );

    tokio::time::sleep_until(set + penalty + Duration::from_millis(50)).await;
    assert_eq!(b.throttled_for(&robot).await.unwrap(), None, "over");

    // The latest penalty wins, shorter or not, as in one process.
    a.throttle(&robot, Duration::from_secs(60)).await.unwrap();
    a.throttle(&robot, Duration::from_millis(300))
        .await
        .unwrap();
    let left = b.throttled_for(&robot).await.unwrap().expect("throttled");
    assert!(left <= Duration::from_millis(300), "{left:?}");
}

#[tokio::test]
async fn no_key_or_value_in_redis_holds_a_robots_token() {
    let redis = Redis::start().await;
    let state = RedisState::connect(&redis.url(), "relay-prod")
        .await
        .unwrap();
    let robot = RobotHash::of("dingtalk:tok-SECRET-0001");
    state
        .throttle(&robot, Duration::from_secs(60))
        .await
        .unwrap();
    let Take::Slot(slot) = state
        .take_slot(&robot, &feishu(), Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("free");
    };
    let Take::Slot(held) = state
        .take_slot(&robot, &feishu(), Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("free");
    };
    state
        .settle_slot(slot, SECOND, Duration::ZERO)
        .await
        .unwrap();
    let RedisClaim::Mine(_) = state.claim(identity(1), SECOND).await.unwrap() else {
        panic!("ours");
    };

    let mut raw = redis.raw().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        keys.len(),
        7,
        "throttle, in flight, two windows, the epoch, the replicas, a claim: {keys:?}"
    );
    let mut dump = String::new();
    for key in &keys {
        assert!(key.starts_with("relay-prod:"), "{key}");
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap();
        let values: Vec<String> = match kind.as_str() {
            "zset" => redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut raw)
                .await
                .unwrap(),
            _ => vec![
                redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut raw)
                    .await
                    .unwrap(),
            ],
        };
        dump += &format!("{key} {values:?}\n");
    }
    assert!(!dump.contains("SECRET") && !dump.contains("tok-"), "{dump}");
    drop(held);
}

/// Writes a CA and a certificate for 127.0.0.1 it signed, with `openssl`.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}; run scripts/test.sh, which installs it"));
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=alertrelay test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

/// The variable that tells [`rediss_child`] which Redis to reach.
const REDISS_URL: &str = "ALERTRELAY_TEST_REDISS_URL";

#[tokio::test]
async fn rediss_connects_through_rustls_to_a_certificate_the_system_trusts() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let tls_port = free_port();
    let file = |name: &str| certs.path().join(name).to_string_lossy().into_owned();
    let redis = Redis::launch(
        None,
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            file("server.pem"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
        ],
    )
    .await;
    let url = format!("rediss://127.0.0.1:{tls_port}/0");

    // Here the system's roots do not hold the test CA: the certificate is refused.
    let error = RedisState::connect(&url, "t").await.unwrap_err();
    assert!(matches!(error, StateError::Tls { .. }), "{error:?}");
    assert!(error.is_misconfigured());
    assert!(error.to_string().contains("certificate"), "{error}");

    // A child of this test binary whose roots are the test CA (SSL_CERT_FILE, as an operator
    // with a private CA would set it) connects and uses Redis over TLS.
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["redis::rediss_child", "--exact", "--ignored", "--nocapture"])
        .env("SSL_CERT_FILE", file("ca.pem"))
        .env(REDISS_URL, &url)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("1 passed"), "the child ran the test: {said}");
    drop(redis);
}

/// Run only by [`rediss_connects_through_rustls_to_a_certificate_the_system_trusts`], in a
/// child process whose TLS roots hold the test CA.
#[tokio::test]
#[ignore = "run in a child process by rediss_connects_through_rustls_to_a_certificate_the_system_trusts"]
async fn rediss_child() {
    let url = std::env::var(REDISS_URL).unwrap_or_else(|_| {
        panic!("{REDISS_URL} unset: this runs as a child of rediss_connects_through_rustls_to_a_certificate_the_system_trusts")
    });
    let state = RedisState::connect(&url, "t").await.unwrap();
    state.ping().await.unwrap();
    let robot = RobotHash::of("dingtalk:t");
    state.throttle(&robot, SECOND).await.unwrap();
    assert!(state.throttled_for(&robot).await.unwrap().is_some());
}

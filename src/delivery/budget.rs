//! A robot's rate budget: a sliding window of its messages per limit its channel states
//! (DingTalk's and WeCom's minute, Feishu's second and minute at once), each message counted
//! from when the robot's answer came back.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::channel::{Channel, MINUTE, Window};

/// The windows a robot's messages are counted in: its channel's, with the per-minute limit
/// replaced by the profile's `rate_limit`. Empty means no budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    windows: [Window; 2],
    len: usize,
}

impl Windows {
    /// The windows of `channel` with `per_minute` messages a minute; `per_minute` 0 switches
    /// the budget off entirely.
    pub fn of(channel: Channel, per_minute: u32) -> Self {
        let mut windows = Self {
            windows: [Window {
                limit: 0,
                length: MINUTE,
            }; 2],
            len: 0,
        };
        if per_minute == 0 {
            return windows;
        }
        for window in channel.windows().iter().take(2) {
            let limit = if window.length == MINUTE {
                per_minute
            } else {
                window.limit
            };
            windows.windows[windows.len] = Window {
                limit,
                length: window.length,
            };
            windows.len += 1;
        }
        windows
    }

    /// Each window's limit divided among `replicas` (rounded down, at least 1): the share
    /// one replica keeps to while it cannot reach the budget they share.
    pub(crate) fn share(mut self, replicas: u32) -> Self {
        for window in &mut self.windows[..self.len] {
            window.limit = (window.limit / replicas.max(1)).max(1);
        }
        self
    }

    /// The windows, as a slice.
    pub(crate) fn as_slice(&self) -> &[Window] {
        &self.windows[..self.len]
    }

    /// The longest window's length plus its share of `margin` (zero without a budget): how
    /// long a message stays counted after its answer.
    pub(crate) fn counted_for(&self, margin: Duration) -> Duration {
        self.iter()
            .map(|w| w.length + w.margin(margin))
            .max()
            .unwrap_or_default()
    }

    /// Whether no budget applies.
    pub fn is_open(&self) -> bool {
        self.len == 0
    }

    /// The windows.
    pub fn iter(&self) -> impl Iterator<Item = &Window> {
        self.as_slice().iter()
    }

    /// The per-minute limit (0 without a budget).
    pub fn per_minute(&self) -> u32 {
        self.iter()
            .find(|w| w.length == MINUTE)
            .map_or(0, |w| w.limit)
    }
}

/// The robot's messages as this side can know them. A robot counts a message when it arrives
/// and is processed, which under load is well after it was sent; the latest moment it can
/// have counted it is when its answer came back. So a slot is held from the moment the
/// request goes out (in flight it counts and never expires) until each window's length plus
/// a margin after the answer.
#[derive(Debug, Default)]
pub struct Budget {
    /// Per window length: when each answered message leaves that window, oldest first.
    counted: Vec<Counted>,
    /// Requests sent and not answered yet.
    in_flight: usize,
}

#[derive(Debug)]
struct Counted {
    length: Duration,
    until: VecDeque<Instant>,
}

impl Budget {
    fn counted(&mut self, length: Duration) -> &mut Counted {
        let index = match self.counted.iter().position(|c| c.length == length) {
            Some(index) => index,
            None => {
                self.counted.push(Counted {
                    length,
                    until: VecDeque::new(),
                });
                self.counted.len() - 1
            }
        };
        &mut self.counted[index]
    }

    fn forget_old(&mut self, now: Instant) {
        for counted in &mut self.counted {
            while counted.until.front().is_some_and(|until| *until <= now) {
                counted.until.pop_front();
            }
        }
    }

    /// Slots free now in every window.
    pub fn free(&mut self, now: Instant, windows: &Windows) -> usize {
        self.forget_old(now);
        let in_flight = self.in_flight;
        windows
            .iter()
            .map(|w| {
                let used = self.counted(w.length).until.len() + in_flight;
                (w.limit as usize).saturating_sub(used)
            })
            .min()
            .unwrap_or(usize::MAX)
    }

    /// When a slot is next free in every window, if none is free now.
    pub fn next_free(&mut self, now: Instant, windows: &Windows) -> Option<Instant> {
        if self.free(now, windows) > 0 {
            return None;
        }
        let in_flight = self.in_flight;
        let mut at = now;
        for window in windows.iter() {
            let counted = self.counted(window.length);
            let used = counted.until.len() + in_flight;
            if used < window.limit as usize {
                continue;
            }
            // The slot of the message that leaves the window first; with a lowered limit,
            // enough older ones must leave for the count to fall below it. Were every slot
            // in flight (a worker sends one request at a time, so it is not), none frees
            // before its answer plus a window.
            let index = used - window.limit as usize;
            let free_at = counted
                .until
                .get(index)
                .copied()
                .unwrap_or(now + window.length);
            at = at.max(free_at);
        }
        Some(at)
    }

    /// Takes a slot for a request going out now: it counts, and does not expire, until
    /// [`Budget::settle`].
    pub fn take(&mut self) {
        self.in_flight += 1;
    }

    /// The request holding a slot was answered (or given up on) at `now`: its slot stays
    /// counted in each window for the window's length plus its share of `margin` (room for
    /// the robot's clock and the answer's trip).
    pub fn settle(&mut self, now: Instant, margin: Duration, windows: &Windows) {
        self.in_flight = self.in_flight.saturating_sub(1);
        // Windows a reload took away are forgotten.
        self.counted
            .retain(|c| windows.iter().any(|w| w.length == c.length));
        for window in windows.iter() {
            let until = now + window.length + window.margin(margin);
            let counted = self.counted(window.length);
            // Kept in order even if the margin was lowered by a reload.
            let until = counted.until.back().map_or(until, |last| until.max(*last));
            counted.until.push_back(until);
        }
    }

    /// When the last counted slot frees up; `None` when nothing is counted, so a new budget
    /// would be the same as this one.
    pub fn last_counted(&mut self, now: Instant) -> Option<Instant> {
        self.forget_old(now);
        let last = self
            .counted
            .iter()
            .filter_map(|c| c.until.back().copied())
            .max();
        match self.in_flight {
            0 => last,
            _ => Some(last.unwrap_or(now).max(now) + MINUTE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARGIN: Duration = Duration::from_secs(1);
    const WINDOW: Duration = MINUTE;

    fn minute(limit: u32) -> Windows {
        Windows::of(Channel::DingTalk, limit)
    }

    /// Sends at `at`, answered `latency` later, to a robot with `limit` a minute.
    fn send(budget: &mut Budget, at: Instant, latency: Duration, limit: u32) {
        budget.take();
        budget.settle(at + latency, MARGIN, &minute(limit));
    }

    #[test]
    fn a_seconds_window_gets_a_sixtieth_of_the_margin() {
        let margin = Duration::from_secs(3);
        let feishu = Windows::of(Channel::Feishu, 100);
        let margins: Vec<Duration> = feishu.iter().map(|w| w.margin(margin)).collect();
        assert_eq!(margins, [Duration::from_millis(50), margin]);
        assert_eq!(feishu.counted_for(margin), MINUTE + margin);
    }

    #[test]
    fn a_replicas_share_divides_every_window_and_never_reaches_zero() {
        let share = Windows::of(Channel::Feishu, 100).share(3);
        let limits: Vec<u32> = share.iter().map(|w| w.limit).collect();
        assert_eq!(limits, [1, 33], "5 a second and 100 a minute among 3");
        assert_eq!(minute(20).share(3).per_minute(), 6);
        assert_eq!(minute(2).share(3).per_minute(), 1);
        assert_eq!(minute(20).share(1), minute(20));
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_holds_more_than_the_limit() {
        let mut budget = Budget::default();
        let start = Instant::now();
        for _ in 0..20 {
            assert_eq!(budget.next_free(start, &minute(20)), None);
            send(&mut budget, start, Duration::ZERO, 20);
        }
        assert_eq!(budget.free(start, &minute(20)), 0);
        assert_eq!(
            budget.next_free(start, &minute(20)),
            Some(start + WINDOW + MARGIN)
        );
        let later = start + WINDOW + MARGIN;
        assert_eq!(budget.free(later, &minute(20)), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_is_counted_from_the_answer_not_the_send() {
        let mut budget = Budget::default();
        let start = Instant::now();

        send(&mut budget, start, Duration::from_secs(3), 1);

        // The robot may have counted it as late as its answer, 3 s after the send.
        let answered = start + Duration::from_secs(3);
        assert_eq!(
            budget.next_free(start, &minute(1)),
            Some(answered + WINDOW + MARGIN)
        );
        assert_eq!(budget.free(start + WINDOW + MARGIN, &minute(1)), 0);
        assert_eq!(budget.free(answered + WINDOW + MARGIN, &minute(1)), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_holds_its_slot_however_long_it_takes() {
        let mut budget = Budget::default();
        let start = Instant::now();

        budget.take();

        let much_later = start + 10 * WINDOW;
        assert_eq!(budget.free(much_later, &minute(1)), 0);
        assert_eq!(budget.free(much_later, &minute(2)), 1);
        assert!(budget.last_counted(much_later).is_some());
        budget.settle(much_later, MARGIN, &minute(1));
        assert_eq!(budget.free(much_later + WINDOW, &minute(1)), 0);
        assert_eq!(budget.last_counted(much_later + WINDOW + MARGIN), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_limit_waits_for_enough_old_messages_to_leave() {
        let mut budget = Budget::default();
        let start = Instant::now();
        for i in 0..10 {
            send(
                &mut budget,
                start + Duration::from_secs(i),
                Duration::ZERO,
                20,
            );
        }
        let now = start + Duration::from_secs(10);
        // Limit 5 with 10 in the window: the 6th oldest (answered at 5 s) must leave first.
        assert_eq!(
            budget.next_free(now, &minute(5)),
            Some(start + Duration::from_secs(5) + WINDOW + MARGIN)
        );
    }

    /// One simulated storm: `latencies` requests (each answered that long after it was sent,
    /// and counted by the robot at `fraction` of the way there) sent as fast as the budget
    /// lets, at most `concurrency` in flight. Returns when the robot counted each.
    fn storm(
        windows: &Windows,
        concurrency: usize,
        requests: &[(Duration, f64)],
        margin: Duration,
    ) -> Vec<Instant> {
        let mut budget = Budget::default();
        let mut now = Instant::now();
        let (mut sent, mut arrivals, mut answers) = (0, Vec::new(), Vec::<Instant>::new());
        while sent < requests.len() || !answers.is_empty() {
            answers.sort();
            while answers.first().is_some_and(|at| *at <= now) {
                answers.remove(0);
                budget.settle(now, margin, windows);
            }
            if sent == requests.len() && answers.is_empty() {
                break;
            }
            let can_send = sent < requests.len() && answers.len() < concurrency;
            if can_send && budget.free(now, windows) > 0 {
                let (latency, fraction) = requests[sent];
                budget.take();
                arrivals.push(now + latency.mul_f64(fraction));
                answers.push(now + latency);
                sent += 1;
                continue;
            }
            let slot = can_send.then(|| budget.next_free(now, windows)).flatten();
            let next = answers.first().copied().into_iter().chain(slot).min();
            now = next.expect("something to wait for");
        }
        arrivals.sort();
        arrivals
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// The robot's own clock: whatever the latencies, no 60-second window of arrivals
        /// holds more than the limit.
        #[test]
        fn no_window_of_the_robots_clock_ever_holds_more_than_the_limit(
            limit in 1u32..25,
            concurrency in 1usize..4,
            requests in proptest::collection::vec((0u64..20_000, 0.0f64..=1.0), 1..120),
            margin_ms in 0u64..2_000,
        ) {
            let requests: Vec<(Duration, f64)> = requests
                .into_iter()
                .map(|(ms, fraction)| (Duration::from_millis(ms), fraction))
                .collect();
            let arrivals = storm(&minute(limit), concurrency, &requests, Duration::from_millis(margin_ms));
            proptest::prop_assert_eq!(arrivals.len(), requests.len());
            for (i, start) in arrivals.iter().enumerate() {
                let within = arrivals[i..].iter().take_while(|at| **at < *start + WINDOW).count();
                proptest::prop_assert!(within <= limit as usize, "{within} arrivals in the minute from #{i}");
            }
        }

        /// Feishu's two windows at once: by the robot's clock no second holds more than 5
        /// arrivals and no minute more than the per-minute limit.
        #[test]
        fn no_second_or_minute_of_a_feishu_robots_clock_holds_more_than_its_limits(
            per_minute in 5u32..120,
            concurrency in 1usize..4,
            requests in proptest::collection::vec((0u64..3_000, 0.0f64..=1.0), 1..150),
            margin_ms in 0u64..2_000,
        ) {
            let requests: Vec<(Duration, f64)> = requests
                .into_iter()
                .map(|(ms, fraction)| (Duration::from_millis(ms), fraction))
                .collect();
            let windows = Windows::of(Channel::Feishu, per_minute);
            let arrivals = storm(&windows, concurrency, &requests, Duration::from_millis(margin_ms));
            proptest::prop_assert_eq!(arrivals.len(), requests.len());
            for window in windows.iter() {
                for (i, start) in arrivals.iter().enumerate() {
                    let within = arrivals[i..].iter().take_while(|at| **at < *start + window.length).count();
                    proptest::prop_assert!(within <= window.limit as usize, "{within} arrivals in {:?} from #{i}", window.length);
                }
            }
        }
    }
}

//! A robot's rate budget: a sliding 60-second window of its messages, each counted from when
//! the robot's answer came back.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// DingTalk counts messages per minute.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The robot's messages as this side can know them. DingTalk counts a message when it
/// arrives and is processed, which under load is well after it was sent; the latest moment it
/// can have counted it is when its answer came back. So a slot is held from the moment the
/// request goes out (in flight it counts and never expires) until `WINDOW` plus a margin
/// after the answer.
#[derive(Debug, Default)]
pub struct Budget {
    /// When each answered message leaves the window, oldest first.
    until: VecDeque<Instant>,
    /// Requests sent and not answered yet.
    in_flight: usize,
}

impl Budget {
    fn forget_old(&mut self, now: Instant) {
        while self.until.front().is_some_and(|until| *until <= now) {
            self.until.pop_front();
        }
    }

    fn used(&self) -> usize {
        self.until.len() + self.in_flight
    }

    /// Slots free now for a budget of `limit` messages a minute.
    pub fn free(&mut self, now: Instant, limit: u32) -> usize {
        self.forget_old(now);
        (limit as usize).saturating_sub(self.used())
    }

    /// When the next slot frees up, if none is free now.
    pub fn next_free(&mut self, now: Instant, limit: u32) -> Option<Instant> {
        if self.free(now, limit) > 0 {
            return None;
        }
        // The slot of the message that leaves the window first; with a lowered limit,
        // enough older ones must leave for the count to fall below it. Were every slot in
        // flight (a worker sends one request at a time, so it is not), none frees before its
        // answer plus a window.
        let index = self.used() - limit as usize;
        Some(self.until.get(index).copied().unwrap_or(now + WINDOW))
    }

    /// Takes a slot for a request going out now: it counts, and does not expire, until
    /// [`Budget::settle`].
    pub fn take(&mut self) {
        self.in_flight += 1;
    }

    /// The request holding a slot was answered (or given up on) at `now`: its slot stays
    /// counted for `WINDOW` plus `margin` (room for the robot's clock and the answer's trip).
    pub fn settle(&mut self, now: Instant, margin: Duration) {
        self.in_flight = self.in_flight.saturating_sub(1);
        // Kept in order even if the margin was lowered by a reload.
        let until = self.until.back().map_or(now + WINDOW + margin, |last| {
            (now + WINDOW + margin).max(*last)
        });
        self.until.push_back(until);
    }

    /// When the last counted slot frees up; `None` when nothing is counted, so a new budget
    /// would be the same as this one.
    pub fn last_counted(&mut self, now: Instant) -> Option<Instant> {
        self.forget_old(now);
        match self.in_flight {
            0 => self.until.back().copied(),
            _ => Some(self.until.back().copied().unwrap_or(now).max(now) + WINDOW),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARGIN: Duration = Duration::from_secs(1);

    /// Sends at `at`, answered `latency` later.
    fn send(budget: &mut Budget, at: Instant, latency: Duration) {
        budget.take();
        budget.settle(at + latency, MARGIN);
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_holds_more_than_the_limit() {
        let mut budget = Budget::default();
        let start = Instant::now();
        for _ in 0..20 {
            assert_eq!(budget.next_free(start, 20), None);
            send(&mut budget, start, Duration::ZERO);
        }
        assert_eq!(budget.free(start, 20), 0);
        assert_eq!(budget.next_free(start, 20), Some(start + WINDOW + MARGIN));
        let later = start + WINDOW + MARGIN;
        assert_eq!(budget.free(later, 20), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_is_counted_from_the_answer_not_the_send() {
        let mut budget = Budget::default();
        let start = Instant::now();

        send(&mut budget, start, Duration::from_secs(3));

        // The robot may have counted it as late as its answer, 3 s after the send.
        let answered = start + Duration::from_secs(3);
        assert_eq!(budget.next_free(start, 1), Some(answered + WINDOW + MARGIN));
        assert_eq!(budget.free(start + WINDOW + MARGIN, 1), 0);
        assert_eq!(budget.free(answered + WINDOW + MARGIN, 1), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_holds_its_slot_however_long_it_takes() {
        let mut budget = Budget::default();
        let start = Instant::now();

        budget.take();

        let much_later = start + 10 * WINDOW;
        assert_eq!(budget.free(much_later, 1), 0);
        assert_eq!(budget.free(much_later, 2), 1);
        assert!(budget.last_counted(much_later).is_some());
        budget.settle(much_later, MARGIN);
        assert_eq!(budget.free(much_later + WINDOW, 1), 0);
        assert_eq!(budget.last_counted(much_later + WINDOW + MARGIN), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_limit_waits_for_enough_old_messages_to_leave() {
        let mut budget = Budget::default();
        let start = Instant::now();
        for i in 0..10 {
            send(&mut budget, start + Duration::from_secs(i), Duration::ZERO);
        }
        let now = start + Duration::from_secs(10);
        // Limit 5 with 10 in the window: the 6th oldest (answered at 5 s) must leave first.
        assert_eq!(
            budget.next_free(now, 5),
            Some(start + Duration::from_secs(5) + WINDOW + MARGIN)
        );
    }

    /// One simulated storm: `latencies` requests (each answered that long after it was sent,
    /// and counted by the robot at `fraction` of the way there) sent as fast as the budget
    /// lets, at most `concurrency` in flight. Returns when the robot counted each.
    fn storm(
        limit: u32,
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
                budget.settle(now, margin);
            }
            if sent == requests.len() && answers.is_empty() {
                break;
            }
            let can_send = sent < requests.len() && answers.len() < concurrency;
            if can_send && budget.free(now, limit) > 0 {
                let (latency, fraction) = requests[sent];
                budget.take();
                arrivals.push(now + latency.mul_f64(fraction));
                answers.push(now + latency);
                sent += 1;
                continue;
            }
            let slot = can_send.then(|| budget.next_free(now, limit)).flatten();
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
            let arrivals = storm(limit, concurrency, &requests, Duration::from_millis(margin_ms));
            proptest::prop_assert_eq!(arrivals.len(), requests.len());
            for (i, start) in arrivals.iter().enumerate() {
                let within = arrivals[i..].iter().take_while(|at| **at < *start + WINDOW).count();
                proptest::prop_assert!(within <= limit as usize, "{within} arrivals in the minute from #{i}");
            }
        }
    }
}

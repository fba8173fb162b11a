//! A robot's rate budget: a sliding 60-second window of the messages it sent.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// DingTalk counts messages per minute.
pub const WINDOW: Duration = Duration::from_secs(60);

/// When the last messages were sent.
#[derive(Debug, Default)]
pub struct Budget {
    sent: VecDeque<Instant>,
}

impl Budget {
    fn forget_old(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.sent.pop_front();
        }
    }

    /// Slots free now for a budget of `limit` messages a minute.
    pub fn free(&mut self, now: Instant, limit: u32) -> usize {
        self.forget_old(now);
        (limit as usize).saturating_sub(self.sent.len())
    }

    /// When the next slot frees up, if none is free now.
    pub fn next_free(&mut self, now: Instant, limit: u32) -> Option<Instant> {
        if self.free(now, limit) > 0 {
            return None;
        }
        // The slot of the message that leaves the window first; with a lowered limit,
        // enough older ones must leave for the count to fall below it.
        let index = self.sent.len() - limit as usize;
        self.sent.get(index).map(|t| *t + WINDOW)
    }

    /// Takes a slot.
    pub fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_window_holds_more_than_the_limit() {
        let mut budget = Budget::default();
        let start = Instant::now();
        for _ in 0..20 {
            assert_eq!(budget.next_free(start, 20), None);
            budget.record(start);
        }
        assert_eq!(budget.free(start, 20), 0);
        assert_eq!(budget.next_free(start, 20), Some(start + WINDOW));
        let later = start + WINDOW;
        assert_eq!(budget.free(later, 20), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_limit_waits_for_enough_old_messages_to_leave() {
        let mut budget = Budget::default();
        let start = Instant::now();
        for i in 0..10 {
            budget.record(start + Duration::from_secs(i));
        }
        let now = start + Duration::from_secs(10);
        // Limit 5 with 10 in the window: the 6th oldest (sent at 5 s) must leave first.
        assert_eq!(
            budget.next_free(now, 5),
            Some(start + Duration::from_secs(5) + WINDOW)
        );
    }
}

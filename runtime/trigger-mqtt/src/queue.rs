//! A subscription's bounded queue between the session thread and its
//! handlers. Unlike `std::sync::mpsc::sync_channel`, a full queue lets the
//! session thread go only once the handlers have taken half of it: with a
//! plain bounded channel the two threads wake each other for every message
//! as the queue flips between full and not full, and under load those
//! context switches cost more than the handler (perf: about a third of the
//! session thread's time was futex waits and wakes in `SyncSender::send`).
//! The queue also counts sleeping handlers, so a push wakes one only when
//! one is asleep.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Handlers wait here for a message.
    filled: Condvar,
    /// The session thread waits here for room.
    drained: Condvar,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    /// Handlers blocked in `pop`.
    idle: usize,
    /// The session thread is blocked in `push`.
    pusher_waiting: bool,
    /// The sender is gone: handlers stop once the queue is empty.
    closed: bool,
    receivers: usize,
}

/// The session thread's end.
pub struct Sender<T>(Arc<Shared<T>>);

/// A handler thread's end; clone one per thread.
pub struct Receiver<T>(Arc<Shared<T>>);

pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let capacity = capacity.max(1);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::with_capacity(capacity),
            idle: 0,
            pusher_waiting: false,
            closed: false,
            receivers: 1,
        }),
        filled: Condvar::new(),
        drained: Condvar::new(),
        capacity,
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Sender<T> {
    /// Appends `item`, blocking while the queue is full (backpressure) until
    /// it is half empty. Gives the item back when no handler is left.
    pub fn push(&self, item: T) -> Result<(), T> {
        let shared = &*self.0;
        let mut state = shared.lock();
        if state.items.len() >= shared.capacity {
            state.pusher_waiting = true;
            while state.pusher_waiting && state.receivers > 0 {
                state = shared
                    .drained
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
            state.pusher_waiting = false;
        }
        if state.receivers == 0 {
            return Err(item);
        }
        state.items.push_back(item);
        if state.idle > 0 {
            shared.filled.notify_one();
        }
        Ok(())
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting for one; `None` once the sender is gone and
    /// the queue is empty.
    pub fn pop(&self) -> Option<T> {
        let shared = &*self.0;
        let mut state = shared.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                if state.pusher_waiting && state.items.len() <= shared.capacity / 2 {
                    state.pusher_waiting = false;
                    shared.drained.notify_one();
                }
                return Some(item);
            }
            if state.closed {
                return None;
            }
            state.idle += 1;
            state = shared.filled.wait(state).unwrap_or_else(|e| e.into_inner());
            state.idle -= 1;
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.0.lock().receivers += 1;
        Self(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.filled.notify_all();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.receivers -= 1;
        if state.receivers == 0 {
            self.0.drained.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keeps_order_and_bounds_the_queue() {
        let (tx, rx) = bounded(4);
        let consumer = std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(n) = rx.pop() {
                got.push(n);
            }
            got
        });
        for n in 0..1000 {
            tx.push(n).unwrap();
            assert!(tx.0.lock().items.len() <= 4);
        }
        drop(tx);
        assert_eq!(consumer.join().unwrap(), (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_queue_waits_until_half_is_taken() {
        let (tx, rx) = bounded(4);
        for n in 0..4 {
            tx.push(n).unwrap();
        }
        let pusher = std::thread::spawn(move || {
            tx.push(4).unwrap();
            tx
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(rx.pop(), Some(0));
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !pusher.is_finished(),
            "one taken of four: still full enough"
        );
        assert_eq!(rx.pop(), Some(1));
        let tx = pusher.join().unwrap();
        assert_eq!(tx.0.lock().items, [2, 3, 4]);
    }

    #[test]
    fn push_gives_the_item_back_when_the_handlers_are_gone() {
        let (tx, rx) = bounded(1);
        tx.push(1).unwrap();
        let pusher = std::thread::spawn(move || tx.push(2));
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert_eq!(pusher.join().unwrap(), Err(2));
    }
}

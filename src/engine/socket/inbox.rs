//! What a socket's task received and the user has not taken yet: a short queue of messages
//! (the oldest dropped past [`CAPACITY`], so a chatty server cannot grow a user), how the
//! socket ended, and a wake-up for a `receive:` that waits.

use std::cell::RefCell;
use std::collections::VecDeque;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Messages kept per socket for the user's next `receive:`s.
const CAPACITY: usize = 32;

/// One message (a WebSocket text or binary message as text, an event's data).
pub(super) struct Message {
    /// An event stream's event name (`None`: the default, `message`).
    pub(super) event: Option<Box<str>>,
    pub(super) text: Box<str>,
    /// When it was read.
    pub(super) at: Instant,
}

/// How a socket ended, as its task saw it.
#[derive(Debug, Clone)]
pub(super) enum Ended {
    /// Closed by the server (or the network), in the protocol's way.
    Closed(String),
    /// Something that breaks the protocol.
    Broken(String),
}

#[derive(Default)]
pub(super) struct Inbox {
    state: RefCell<State>,
    arrived: Notify,
}

#[derive(Default)]
struct State {
    messages: VecDeque<Message>,
    ended: Option<Ended>,
}

impl Inbox {
    pub(super) fn push(&self, event: Option<&str>, text: &str) {
        let mut state = self.state.borrow_mut();
        if state.messages.len() == CAPACITY {
            state.messages.pop_front();
        }
        state.messages.push_back(Message {
            event: event.map(Box::from),
            text: Box::from(text),
            at: Instant::now(),
        });
        drop(state);
        self.arrived.notify_one();
    }

    pub(super) fn end(&self, ended: Ended) {
        self.state.borrow_mut().ended.get_or_insert(ended);
        self.arrived.notify_one();
    }

    pub(super) fn ended(&self) -> Option<Ended> {
        self.state.borrow().ended.clone()
    }

    /// Takes the first message that `wanted` says is the one; the others stay for later
    /// `receive:`s (replies to requests sent one after the other may come in any order: a
    /// reply waited for second may have come first).
    pub(super) fn take_first(
        &self,
        mut wanted: impl FnMut(Option<&str>, &str) -> bool,
    ) -> Option<Message> {
        let mut state = self.state.borrow_mut();
        let at = state
            .messages
            .iter()
            .position(|message| wanted(message.event.as_deref(), &message.text))?;
        state.messages.remove(at)
    }

    /// Resolves when a message arrives or the socket ends (or did since the last call).
    pub(super) async fn arrived(&self) {
        self.arrived.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_takes_its_message_only_and_the_queue_is_bounded() {
        let inbox = Inbox::default();
        for n in 0..CAPACITY + 3 {
            inbox.push(None, &n.to_string());
        }
        // The three oldest went.
        assert!(inbox.take_first(|_, text| text == "2").is_none());
        let found = inbox.take_first(|_, text| text == "10").unwrap();
        assert_eq!(&*found.text, "10");
        // The ones before it stay, in their order, for a later receive.
        let earlier = inbox.take_first(|_, text| text == "4").unwrap();
        assert_eq!(&*earlier.text, "4");
        let next = inbox.take_first(|_, _| true).unwrap();
        assert_eq!(&*next.text, "3");
        let next = inbox.take_first(|_, _| true).unwrap();
        assert_eq!(&*next.text, "5");
        inbox.end(Ended::Closed("bye".to_owned()));
        inbox.end(Ended::Broken("later".to_owned()));
        assert!(matches!(inbox.ended(), Some(Ended::Closed(why)) if why == "bye"));
    }
}

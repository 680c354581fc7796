//! The master's end of one worker connection: the handshake (challenge, hello, refusal or
//! welcome), then frames in both directions and the silence watch. Everything the worker says
//! becomes an [`Event`] for the master's loop; what the loop says goes out through a channel,
//! so a slow or cut-off worker never blocks the master.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::auth::{self, HelloView, MasterIdentity};
use super::bundle::Bundle;
use super::protocol::ScenarioPin;
use super::protocol::{
    FirstWord, Hello, MAX_HANDSHAKE_FRAME, PROTOCOL, ToMaster, ToWorker, read_frame,
    read_frame_within, write_frame,
};
use super::{MISSING_AFTER, Notify};

/// How long a worker may take to load the scenario it was sent.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the connections tell the master's loop.
#[derive(Debug)]
pub(super) enum Event {
    Joined {
        id: u32,
        name: String,
        peer: SocketAddr,
        cores: u32,
        sender: mpsc::UnboundedSender<ToWorker>,
    },
    Message {
        id: u32,
        message: ToMaster,
    },
    Gone {
        id: u32,
        why: String,
    },
}

/// What every connection needs to know.
pub(super) struct LinkSetup {
    pub(super) token: Option<String>,
    pub(super) bundle: Arc<Bundle>,
    pub(super) pin: ScenarioPin,
    pub(super) events: mpsc::UnboundedSender<Event>,
    pub(super) notify: Notify,
}

/// Serves one connection until it ends.
pub(super) async fn serve(stream: TcpStream, peer: SocketAddr, id: u32, setup: Arc<LinkSetup>) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let nonce = auth::nonce();
    let challenge = ToWorker::Challenge {
        protocol: PROTOCOL,
        version: auth::VERSION.to_owned(),
        nonce: nonce.clone(),
    };
    if write_frame(&mut writer, &challenge).await.is_err() {
        return;
    }
    let said_hello = read_frame_within::<_, FirstWord>(&mut reader, MAX_HANDSHAKE_FRAME);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, said_hello).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(err)) => {
            (setup.notify)(&format!(
                "refused a connection from {peer}: it did not say hello as a chorus worker ({err})"
            ));
            return;
        }
        Err(_) => {
            (setup.notify)(&format!(
                "refused a connection from {peer}: no hello within {} s",
                HELLO_TIMEOUT.as_secs()
            ));
            return;
        }
    };
    let FirstWord::Hello(Hello {
        protocol,
        version,
        name,
        cores,
        proof,
        nonce: worker_nonce,
        scenario,
    }) = hello
    else {
        (setup.notify)(&format!(
            "refused a connection from {peer}: its first message was not a hello"
        ));
        return;
    };
    let identity = MasterIdentity {
        token: setup.token.clone(),
        nonce,
        scenario: setup.pin.clone(),
    };
    let view = HelloView {
        protocol,
        version: &version,
        name: &name,
        proof: proof.as_deref(),
        scenario: scenario.as_ref(),
    };
    if let Err(message) = auth::check_hello(&identity, &view) {
        (setup.notify)(&format!("refused worker {name:?} from {peer}: {message}"));
        let _ = write_frame(&mut writer, &ToWorker::Refused { message }).await;
        return;
    }
    let welcome = ToWorker::Welcome {
        id,
        proof: setup
            .token
            .as_deref()
            .map(|token| auth::proof(token, "master", &worker_nonce)),
        bundle: Box::new((*setup.bundle).clone()),
    };
    if write_frame(&mut writer, &welcome).await.is_err() {
        return;
    }
    let (sender, mut outgoing) = mpsc::unbounded_channel::<ToWorker>();
    let _ = setup.events.send(Event::Joined {
        id,
        name,
        peer,
        cores,
        sender,
    });
    let write = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let quit = matches!(message, ToWorker::Quit { .. });
            if write_frame(&mut writer, &message).await.is_err() || quit {
                break;
            }
        }
    });
    // Loading a scenario with large data files may take a while before the first word.
    let mut patience = LOAD_TIMEOUT;
    let why = loop {
        match tokio::time::timeout(patience, read_frame::<_, ToMaster>(&mut reader)).await {
            Ok(Ok(message)) => {
                patience = MISSING_AFTER;
                let _ = setup.events.send(Event::Message { id, message });
            }
            Ok(Err(err)) => break err.to_string(),
            Err(_) => {
                break format!("no word from it for {:.1} s", MISSING_AFTER.as_secs_f64());
            }
        }
    };
    write.abort();
    let _ = setup.events.send(Event::Gone { id, why });
}

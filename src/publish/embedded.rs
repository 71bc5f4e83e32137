//! The embedded broker: librdkafka's in-process mock cluster, for running
//! hookgate on one machine with no Kafka. Any Kafka client can reach it at
//! its bootstrap address; everything in it is lost when hookgate exits.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;

/// A running mock cluster. It lives on its own thread because the mock
/// cluster handle may not move between threads; dropping this stops it.
#[derive(Debug)]
pub struct EmbeddedBroker {
    /// Bootstrap servers of the mock brokers (loopback addresses).
    bootstrap: String,
    /// Closing this channel tells the owning thread to destroy the cluster.
    stop: Option<mpsc::Sender<()>>,
    /// The thread that owns the cluster.
    thread: Option<JoinHandle<()>>,
}

/// Why the embedded broker could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the embedded broker: {0}")]
pub struct EmbeddedError(String);

impl EmbeddedBroker {
    /// Starts a one-broker mock cluster and creates `topics` with `partitions` each.
    pub fn start(topics: &[String], partitions: i32) -> Result<Self, EmbeddedError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, EmbeddedError>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let topics = topics.to_vec();
        let thread = std::thread::Builder::new()
            .name("hookgate-embedded-broker".into())
            .spawn(move || run_cluster(&topics, partitions, &ready_tx, &stop_rx))
            .map_err(|e| EmbeddedError(e.to_string()))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| EmbeddedError("broker thread exited".into()))??;
        Ok(Self {
            bootstrap,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Bootstrap servers any Kafka client can use.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }
}

fn run_cluster(
    topics: &[String],
    partitions: i32,
    ready: &mpsc::Sender<Result<String, EmbeddedError>>,
    stop: &mpsc::Receiver<()>,
) {
    let cluster = match MockCluster::new(1) {
        Ok(cluster) => cluster,
        Err(e) => {
            let _ = ready.send(Err(EmbeddedError(e.to_string())));
            return;
        }
    };
    for topic in topics {
        if let Err(e) = cluster.create_topic(topic, partitions, 1) {
            let _ = ready.send(Err(EmbeddedError(format!("topic {topic}: {e}"))));
            return;
        }
    }
    let _ = ready.send(Ok(cluster.bootstrap_servers()));
    // Blocks until the owner drops its sender.
    let _ = stop.recv();
    drop(cluster);
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

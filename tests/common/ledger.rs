//! The delivery ledger of the fault tests. Every request is written down
//! with its delivery id (sent as the dedup key) and the answer it got; then
//! the whole topic is read back and compared:
//!
//! - **lost**: deliveries that got a 2xx but are absent from the topic (must be 0);
//! - **ambiguous**: requests answered 503 or not answered at all (the event may or may not be in Kafka);
//! - **duplicates**: records minus distinct delivery ids (must not exceed ambiguous);
//! - **unexpected**: deliveries in the topic that were only ever refused for good (must be 0).
//!
//! [`Load`] is the sender: workers that POST numbered deliveries and retry
//! 503s, 409s, 429s and transport errors as a webhook provider would.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Record;

/// Header carrying the delivery id; the test sources use it as their dedup key.
pub const DELIVERY_HEADER: &str = "idempotency-key";

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status.
    Status(u16),
    /// No connection: nothing listened (the request was never received).
    NotConnected,
    /// No answer: the connection broke or the client timed out after sending.
    Unanswered,
}

impl Answer {
    fn accepted(self) -> bool {
        matches!(self, Answer::Status(200..=299))
    }
    /// 503 or no answer: the event may or may not have been written.
    fn ambiguous(self) -> bool {
        matches!(self, Answer::Status(503) | Answer::Unanswered)
    }
    /// Worth retrying, as a provider would.
    fn retryable(self) -> bool {
        self.ambiguous() || matches!(self, Answer::Status(409 | 429) | Answer::NotConnected)
    }
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The delivery id.
    pub delivery: String,
    /// What came back.
    pub answer: Answer,
    /// The `error.code` of an error body, if any.
    pub code: Option<String>,
    /// Partition and offset of a 202 (offset -1: a retried duplicate acknowledged without one).
    pub ack: Option<(i64, i64)>,
    /// When it was sent, from the start of the ledger.
    pub sent_at: Duration,
    /// Time until the answer (or until the client gave up).
    pub latency: Duration,
}

/// Every request of one test case.
#[derive(Debug)]
pub struct Ledger {
    /// Printed on the figures line.
    case: String,
    /// Start of the case.
    started: Instant,
    /// Requests in the order their answers arrived.
    attempts: Mutex<Vec<Attempt>>,
}

/// The figures of one case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Requests sent.
    pub sent: usize,
    /// Requests answered 2xx.
    pub accepted: usize,
    /// Requests answered 503 or not at all.
    pub ambiguous: usize,
    /// Records of this ledger's deliveries in the topic.
    pub records: usize,
    /// Deliveries with a 2xx that are not in the topic.
    pub lost: usize,
    /// Records minus distinct deliveries in the topic.
    pub duplicates: usize,
    /// Deliveries in the topic that were never accepted nor ambiguous.
    pub unexpected: usize,
}

impl Ledger {
    /// An empty ledger for `case`.
    pub fn new(case: &str) -> Arc<Ledger> {
        Arc::new(Ledger {
            case: case.to_owned(),
            started: Instant::now(),
            attempts: Mutex::new(Vec::new()),
        })
    }

    /// Writes one request down.
    pub fn record(&self, delivery: &str, answer: Answer, body: Option<&serde_json::Value>, sent: Instant) {
        let code = body.and_then(|b| b["error"]["code"].as_str()).map(str::to_owned);
        let ack = body.and_then(|b| Some((b["partition"].as_i64()?, b["offset"].as_i64()?)));
        let attempt = Attempt {
            delivery: delivery.to_owned(),
            answer,
            code,
            ack,
            sent_at: sent.saturating_duration_since(self.started),
            latency: sent.elapsed(),
        };
        self.attempts.lock().unwrap().push(attempt);
    }

    /// Every request so far.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }

    /// Requests that got `answer`.
    pub fn count(&self, answer: Answer) -> usize {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.answer == answer)
            .count()
    }

    /// Distinct deliveries that got a 2xx.
    pub fn accepted_deliveries(&self) -> usize {
        let attempts = self.attempts.lock().unwrap();
        attempts
            .iter()
            .filter(|a| a.answer.accepted())
            .map(|a| a.delivery.as_str())
            .collect::<HashSet<_>>()
            .len()
    }

    /// Compares the ledger with the records read from the topic.
    pub fn figures(&self, records: &[Record]) -> Figures {
        let attempts = self.attempts.lock().unwrap();
        let mut accepted = HashSet::new();
        let mut maybe = HashSet::new();
        let mut figures = Figures {
            sent: attempts.len(),
            ..Figures::default()
        };
        for attempt in attempts.iter() {
            if attempt.answer.accepted() {
                figures.accepted += 1;
                accepted.insert(attempt.delivery.as_str());
            } else if attempt.answer.ambiguous() {
                figures.ambiguous += 1;
                maybe.insert(attempt.delivery.as_str());
            }
        }
        let known: HashSet<&str> = attempts.iter().map(|a| a.delivery.as_str()).collect();
        let mut copies: HashMap<&str, usize> = HashMap::new();
        for record in records {
            let delivery = record.envelope.dedup_key.as_str();
            if known.contains(delivery) {
                *copies.entry(delivery).or_default() += 1;
            }
        }
        figures.records = copies.values().sum();
        figures.duplicates = figures.records - copies.len();
        figures.lost = accepted.iter().filter(|d| !copies.contains_key(*d)).count();
        figures.unexpected = copies
            .keys()
            .filter(|d| !accepted.contains(*d) && !maybe.contains(*d))
            .count();
        figures
    }

    /// Prints the figures line and asserts the guarantee: nothing acknowledged
    /// is lost, and every duplicate is explained by an ambiguous answer.
    pub fn settle(&self, records: &[Record]) -> Figures {
        let f = self.figures(records);
        report(&format!(
            "ledger case={} sent={} accepted={} ambiguous={} in_topic={} lost={} duplicates={} unexpected={}",
            self.case, f.sent, f.accepted, f.ambiguous, f.records, f.lost, f.duplicates, f.unexpected
        ));
        assert_eq!(
            f.lost,
            0,
            "{}: acknowledged deliveries missing from the topic: {:?}",
            self.case,
            self.lost(records)
        );
        assert!(
            f.duplicates <= f.ambiguous,
            "{}: {} duplicates but only {} ambiguous answers",
            self.case,
            f.duplicates,
            f.ambiguous
        );
        assert_eq!(f.unexpected, 0, "{}: refused deliveries found in the topic", self.case);
        f
    }

    /// The accepted attempts whose delivery is not in the topic.
    pub fn lost(&self, records: &[Record]) -> Vec<Attempt> {
        let present: HashSet<&str> = records.iter().map(|r| r.envelope.dedup_key.as_str()).collect();
        let attempts = self.attempts.lock().unwrap();
        attempts
            .iter()
            .filter(|a| a.answer.accepted() && !present.contains(a.delivery.as_str()))
            .cloned()
            .collect()
    }

    /// Counts of answers by status and code ("none": no answer, "not_connected"), e.g. for failure messages.
    pub fn summary(&self) -> String {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for attempt in self.attempts.lock().unwrap().iter() {
            let key = match (attempt.answer, &attempt.code) {
                (Answer::Status(status), Some(code)) => format!("{status}:{code}"),
                (Answer::Status(status), None) => status.to_string(),
                (Answer::NotConnected, _) => "not_connected".into(),
                (Answer::Unanswered, _) => "none".into(),
            };
            *counts.entry(key).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort();
        format!("{counts:?}")
    }
}

/// Prints one line of figures even when the test harness captures output
/// (it captures the `print!` macros only), so that CI logs show every case.
pub fn report(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// How a [`Load`] sends.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrent senders.
    pub workers: usize,
    /// Deliveries in total (numbered 0..deliveries).
    pub deliveries: usize,
    /// Requests per delivery at most (the first one included).
    pub attempts: u32,
    /// Wait before retrying a delivery.
    pub backoff: Duration,
    /// Wait between two deliveries of one worker.
    pub pause: Duration,
    /// Client-side timeout of one request (a hang shows up as a Unanswered of this length).
    pub timeout: Duration,
    /// Bytes of padding in each body.
    pub body_bytes: usize,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            workers: 8,
            deliveries: 1000,
            attempts: 6,
            backoff: Duration::from_millis(250),
            pause: Duration::from_millis(2),
            timeout: Duration::from_secs(15),
            body_bytes: 64,
        }
    }
}

/// Senders running in the background.
#[derive(Debug)]
pub struct Load {
    /// Asks the workers to stop after their current request.
    stop: Arc<AtomicBool>,
    /// The workers.
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `plan.workers` senders posting to `url`, prefixing delivery ids with `prefix`.
    pub fn start(ledger: Arc<Ledger>, url: String, prefix: &str, plan: Plan) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let client = reqwest::Client::builder()
            .timeout(plan.timeout)
            .pool_max_idle_per_host(plan.workers)
            .build()
            .unwrap();
        let workers = (0..plan.workers)
            .map(|_| {
                let sender = Sender {
                    client: client.clone(),
                    url: url.clone(),
                    ledger: ledger.clone(),
                    plan: plan.clone(),
                };
                let (stop, next, prefix) = (stop.clone(), next.clone(), prefix.to_owned());
                tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= sender.plan.deliveries || stop.load(Ordering::Relaxed) {
                            return;
                        }
                        sender.deliver(&format!("{prefix}-{n}"), &stop).await;
                        tokio::time::sleep(sender.plan.pause).await;
                    }
                })
            })
            .collect();
        Load { stop, workers }
    }

    /// Waits until every delivery was attempted, at most `timeout`; then stops the rest.
    pub async fn wait(self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for worker in &self.workers {
            while !worker.is_finished() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.stop().await;
    }

    /// Stops the workers after their current request and waits for them.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            let _ = worker.await;
        }
    }
}

/// One worker's means of sending.
struct Sender {
    client: reqwest::Client,
    url: String,
    ledger: Arc<Ledger>,
    plan: Plan,
}

impl Sender {
    /// Sends one delivery, retrying as a provider would, until accepted, refused for good, out of attempts or stopped.
    async fn deliver(&self, delivery: &str, stop: &AtomicBool) {
        let body = serde_json::json!({"delivery": delivery, "pad": "x".repeat(self.plan.body_bytes)}).to_string();
        for attempt in 0..self.plan.attempts {
            if attempt > 0 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(self.plan.backoff).await;
            }
            let answer = send(&self.client, &self.url, delivery, &body, &self.ledger).await;
            if !answer.retryable() {
                return;
            }
        }
    }
}

/// Posts one delivery and writes the answer down.
pub async fn send(client: &reqwest::Client, url: &str, delivery: &str, body: &str, ledger: &Ledger) -> Answer {
    let sent = Instant::now();
    let response = client
        .post(url)
        .header(DELIVERY_HEADER, delivery)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await;
    let (answer, body) = match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (
                Answer::Status(status),
                serde_json::from_str::<serde_json::Value>(&text).ok(),
            )
        }
        Err(error) if error.is_connect() => (Answer::NotConnected, None),
        Err(_) => (Answer::Unanswered, None),
    };
    ledger.record(delivery, answer, body.as_ref(), sent);
    answer
}

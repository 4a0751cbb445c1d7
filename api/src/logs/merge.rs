//! Several containers' histories as one, in timestamp order: a streaming k-way merge
//! that holds one line per container, so the merged read costs no more memory than
//! the containers' own read-ahead however many lines it asks for.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::follow::History;
use super::line::LogLine;
use super::sink::{Gone, LogSink, Output};

/// One container's history in the merge.
#[derive(Debug)]
pub struct Source {
    pub docker_id: String,
    pub replica: Option<i64>,
    pub history: History,
}

/// Sends the sources' lines oldest first (ties in the order of `sources`); a source
/// whose read fails ends with an `End` notice while the others go on.
///
/// # Errors
/// The client went away.
pub async fn merge_histories<S: LogSink>(mut sources: Vec<Source>, sink: &S) -> Result<(), Gone> {
    let mut heads: Vec<Option<LogLine>> = (0..sources.len()).map(|_| None).collect();
    let mut order = BinaryHeap::new();
    for (i, source) in sources.iter_mut().enumerate() {
        refill(source, i, &mut heads, &mut order, sink).await?;
    }
    while let Some(Reverse((_, i))) = order.pop() {
        if let Some(line) = heads[i].take() {
            sink.send(Output::History {
                line: &line,
                replica: sources[i].replica,
            })
            .await?;
        }
        refill(&mut sources[i], i, &mut heads, &mut order, sink).await?;
    }
    Ok(())
}

/// Reads source `i`'s next line into `heads[i]` and `order`.
async fn refill<S: LogSink>(
    source: &mut Source,
    i: usize,
    heads: &mut [Option<LogLine>],
    order: &mut BinaryHeap<Reverse<(i64, usize)>>,
    sink: &S,
) -> Result<(), Gone> {
    match source.history.next().await {
        Some(Ok(line)) => {
            order.push(Reverse((line.at_ns, i)));
            heads[i] = Some(line);
            Ok(())
        }
        Some(Err(err)) => {
            sink.send(Output::End {
                container_id: &source.docker_id,
                replica: source.replica,
                reason: &err.to_string(),
            })
            .await
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::logs::Stream;
    use crate::logs::sink::testing::Recorder;

    fn line(text: &str, at_ns: i64) -> LogLine {
        LogLine {
            container_id: "c".to_owned(),
            node: None,
            stream: Stream::Stdout,
            line: text.to_owned(),
            timestamp: String::new(),
            at_ns,
        }
    }

    /// A source whose reader is still sending: lines arrive one by one.
    fn source(replica: i64, lines: Vec<(&'static str, i64)>, since_ns: Option<i64>) -> Source {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            for (text, at) in lines {
                if tx.send(Ok(line(text, at))).await.is_err() {
                    return;
                }
            }
        });
        Source {
            docker_id: format!("c{replica}"),
            replica: Some(replica),
            history: History::from_channel(rx, since_ns),
        }
    }

    #[tokio::test]
    async fn histories_merge_in_time_order_as_they_stream() {
        let sink = Recorder::default();
        let sources = vec![
            source(0, vec![("a", 1), ("c", 3), ("e", 5), ("f", 5)], None),
            source(1, vec![("b", 2), ("d", 4), ("g", 5), ("h", 9)], None),
            source(2, vec![], None),
        ];
        merge_histories(sources, &sink).await.unwrap();
        assert_eq!(
            sink.seen(),
            ["0:a", "1:b", "0:c", "1:d", "0:e", "0:f", "1:g", "1:h"]
        );
    }

    #[tokio::test]
    async fn lines_before_since_are_left_out_and_a_failed_read_ends_alone() {
        let sink = Recorder::default();
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(line("x", 2))).await.unwrap();
        tx.send(Err(crate::logs::LogError::Read(
            bollard::errors::Error::RequestTimeoutError,
        )))
        .await
        .unwrap();
        drop(tx);
        let failing = Source {
            docker_id: "bad".to_owned(),
            replica: Some(1),
            history: History::from_channel(rx, None),
        };
        let sources = vec![source(0, vec![("old", 1), ("new", 3)], Some(2)), failing];
        merge_histories(sources, &sink).await.unwrap();
        assert_eq!(sink.seen(), ["1:x", "end bad", "0:new"]);
    }
}

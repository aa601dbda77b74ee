//! How the Redis tier reaches Redis: one server or a Redis Cluster, over TCP or TLS
//! (`rediss://`, certificates verified against the system roots or `REDIS_CA_FILE`).
//!
//! - **Commands** go through one multiplexed connection that reconnects by itself: redis-rs's
//!   `ConnectionManager` for one server, its cluster connection (which follows the slot
//!   map, `MOVED` and failovers) for a cluster. Both are lazy: nothing connects before the
//!   first command.
//! - **Pub/sub**: one server uses `PUBLISH`/`SUBSCRIBE` on a dedicated connection. A cluster
//!   uses sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7.0+): both channels carry the same
//!   hash tag, so they live on one shard, and `SPUBLISH` counts exactly the replicas
//!   subscribed there (a plain `PUBLISH` in a cluster counts only the subscribers of the node
//!   it ran on, which would break the confirmation count).

use std::{sync::Arc, time::Duration};

use futures::{StreamExt, future::ready, stream::BoxStream};
use redis::{
    Client, Cmd, ProtocolVersion, PushKind, RedisFuture, RedisResult, TlsCertificates, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
};

use super::redis::RedisTierError;

/// One server, or the seed nodes of a cluster, with the TLS roots to verify them.
#[derive(Clone)]
pub(super) enum Endpoints {
    /// One server (with replicas or Sentinel behind one address, as managed services do).
    Single(Box<Client>),
    /// A Redis Cluster: any of the seeds tells the rest.
    Cluster {
        /// The seed URLs (may hold a password: never printed).
        seeds: Arc<[String]>,
        /// PEM of the CA that signs the nodes' certificates, when not the system roots.
        ca_pem: Option<Arc<[u8]>>,
    },
}

/// A message received on a subscribed channel: (channel, payload).
pub(super) type Delivery = (String, String);

impl Endpoints {
    /// Reads the URL (a comma-separated list of seeds for a cluster). Connects to nothing.
    pub(super) fn new(url: &str, cluster: bool, ca_pem: Option<&[u8]>) -> Result<Self, RedisTierError> {
        let seeds: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|seed| !seed.is_empty())
            .map(str::to_owned)
            .collect();
        let ca_pem: Option<Arc<[u8]>> = ca_pem.map(Arc::from);
        if cluster {
            let endpoints = Self::Cluster {
                seeds: Arc::from(seeds),
                ca_pem,
            };
            // Builds once now so that a bad URL or certificate stops start-up.
            endpoints.cluster_client(None)?;
            return Ok(endpoints);
        }
        let [url] = seeds.as_slice() else {
            return Err(RedisTierError::Url);
        };
        let client = match ca_pem {
            Some(pem) => Client::build_with_tls(url.as_str(), tls_roots(&pem)).map_err(|_| RedisTierError::Tls)?,
            None => Client::open(url.as_str()).map_err(|_| RedisTierError::Url)?,
        };
        Ok(Self::Single(Box::new(client)))
    }

    /// Whether this is a cluster (sharded pub/sub).
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }

    fn cluster_client(&self, push: Option<PushSender>) -> Result<ClusterClient, RedisTierError> {
        let Self::Cluster { seeds, ca_pem } = self else {
            return Err(RedisTierError::Url);
        };
        let mut builder = ClusterClientBuilder::new(seeds.iter().map(String::as_str)).retries(1);
        if let Some(pem) = ca_pem {
            builder = builder.certs(tls_roots(pem));
        }
        if let Some(push) = push {
            builder = builder.use_protocol(ProtocolVersion::RESP3).push_sender(push);
        }
        builder.build().map_err(|error| match error.kind() {
            redis::ErrorKind::InvalidClientConfig if ca_pem.is_some() => RedisTierError::Tls,
            _ => RedisTierError::Url,
        })
    }

    /// The connection commands go through (lazy: connects on first use, reconnects itself).
    pub(super) fn commands(&self, timeout: Duration) -> Result<Commands, RedisTierError> {
        match self {
            Self::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                let connection = client
                    .get_connection_manager_lazy(config)
                    .map_err(|_| RedisTierError::Url)?;
                Ok(Commands::Single(connection))
            }
            Self::Cluster { .. } => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                Ok(Commands::Cluster(
                    self.cluster_client(None)?
                        .get_pending_async_connection_with_config(config),
                ))
            }
        }
    }

    /// `PUBLISH`, or `SPUBLISH` on a cluster: answers how many subscribers got the message.
    pub(super) fn publish(&self, channel: &str, message: &str) -> Cmd {
        let mut command = redis::cmd(if self.is_cluster() { "SPUBLISH" } else { "PUBLISH" });
        command.arg(channel).arg(message);
        command
    }

    /// Subscribes to `channels` (which share a hash tag) and streams what arrives on them.
    /// The stream ends when the subscription is lost (messages may have been missed then).
    pub(super) async fn subscribe(&self, channels: [&str; 2]) -> RedisResult<BoxStream<'static, Delivery>> {
        match self {
            Self::Single(client) => {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channels).await?;
                Ok(pubsub
                    .into_on_message()
                    .filter_map(|message| {
                        let channel = message.get_channel_name().to_owned();
                        ready(message.get_payload::<String>().ok().map(|payload| (channel, payload)))
                    })
                    .boxed())
            }
            Self::Cluster { .. } => {
                let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
                let client = self
                    .cluster_client(Some(sender))
                    .map_err(|_| redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "cluster client")))?;
                let mut connection = client.get_async_connection().await?;
                connection.ssubscribe(&channels).await?;
                // The connection lives as long as the stream; a lost node ends the stream
                // (redis-rs would resubscribe, but messages may have been missed meanwhile).
                let pushes = futures::stream::unfold((receiver, connection), |(mut receiver, connection)| async move {
                    receiver.recv().await.map(|push| (push, (receiver, connection)))
                });
                Ok(pushes
                    .take_while(|push| ready(push.kind != PushKind::Disconnection))
                    .filter_map(|push| ready(sharded_message(push)))
                    .boxed())
            }
        }
    }
}

type PushSender = tokio::sync::mpsc::UnboundedSender<redis::PushInfo>;

/// The (channel, payload) of a sharded pub/sub message.
fn sharded_message(push: redis::PushInfo) -> Option<Delivery> {
    if push.kind != PushKind::SMessage {
        return None;
    }
    let mut data = push.data.into_iter();
    let channel = redis::from_redis_value::<String>(data.next()?).ok()?;
    let payload = redis::from_redis_value::<String>(data.next()?).ok()?;
    Some((channel, payload))
}

/// TLS roots from `REDIS_CA_FILE` (replacing the system roots).
fn tls_roots(pem: &[u8]) -> TlsCertificates {
    TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    }
}

/// The connection commands go through, for one server or a cluster.
#[derive(Clone)]
pub(super) enum Commands {
    /// One server.
    Single(ConnectionManager),
    /// A cluster (commands are routed by the slot of their keys).
    Cluster(ClusterConnection),
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

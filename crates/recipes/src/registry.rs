//! Service registry and discovery (Curator's `ServiceDiscovery`, without the JSON): an instance
//! `{name, id, address, payload}` is an ephemeral node `<base>/<name>/<id>` whose data is the
//! address, a newline, and the payload. Built on [`crate::group`]: a service is a group whose
//! members are its instances.
//!
//! - [`ServiceRegistry::register`] publishes an instance for as long as its session lives.
//!   [`Registration::keep_registered`] goes further: when the session is lost it asks the
//!   application for a client on a new session and registers the instance again.
//! - [`ServiceRegistry::instances`] lists a service's instances, [`ServiceRegistry::watch`]
//!   streams them as they change, and [`ServiceProvider`] picks one (round-robin or random).
//!
//! # Connection loss and session loss
//!
//! - **Suspended**: the instance stays registered while its session lives (discovery clients
//!   keep seeing it); a lost create reply is recognised after the reconnect.
//! - **Lost**: the instance node is deleted by the server; discovery clients see the instance
//!   go. With `keep_registered` it comes back once the new session has registered it (after the
//!   old node is gone, since both would have the same path).
//!
//! # Example
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::{ServiceInstance, ServiceRegistry, Strategy};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let registry = ServiceRegistry::new(&client, "/services");
//! let instance = ServiceInstance {
//!     name: "api".into(),
//!     id: "api-1".into(),
//!     address: "10.0.0.5:8080".into(),
//!     payload: Vec::new(),
//! };
//! // Registered again on a fresh session whenever the current one is lost.
//! let kept = registry.register(&instance).await?.keep_registered(|| async {
//!     Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await.ok()
//! });
//!
//! // Discovery, from any client:
//! let api = registry.provider("api", Strategy::RoundRobin);
//! if let Some(target) = api.pick().await? {
//!     println!("calling {} at {}", target.id, target.address);
//! }
//! kept.unregister().await?;
//! # Ok(())
//! # }
//! ```

use crate::barrier::Barrier;
use crate::error::{RecipeError, Result};
use crate::group::{Group, Members, Membership, MembershipWatch};
use crate::nodes::{join, retry};
use paddock_client::{Client, ErrorCode};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// One instance of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInstance {
    /// The service's name.
    pub name: String,
    /// The instance's id, unique within the service.
    pub id: String,
    /// Where to reach it (host:port, a URL, ...). Must not contain a newline.
    pub address: String,
    /// Anything else the instance publishes.
    pub payload: Vec<u8>,
}

impl ServiceInstance {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.address.clone().into_bytes();
        v.push(b'\n');
        v.extend_from_slice(&self.payload);
        v
    }

    fn decode(name: &str, id: &str, data: &[u8]) -> ServiceInstance {
        let cut = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        ServiceInstance {
            name: name.to_string(),
            id: id.to_string(),
            address: String::from_utf8_lossy(&data[..cut]).into_owned(),
            payload: data.get(cut + 1..).unwrap_or_default().to_vec(),
        }
    }
}

fn instances_of(service: &str, members: &Members) -> Vec<ServiceInstance> {
    members
        .iter()
        .map(|(id, data)| ServiceInstance::decode(service, id, data))
        .collect()
}

/// Registers instances and discovers them, under a base path.
#[derive(Debug, Clone)]
pub struct ServiceRegistry {
    client: Client,
    base: String,
}

impl ServiceRegistry {
    /// The registry under `base`.
    pub fn new(client: &Client, base: &str) -> ServiceRegistry {
        ServiceRegistry {
            client: client.clone(),
            base: base.to_string(),
        }
    }

    fn group(&self, service: &str) -> Group {
        Group::new(&self.client, &join(&self.base, service))
    }

    /// Publishes `instance` while this client's session lives.
    pub async fn register(&self, instance: &ServiceInstance) -> Result<Registration> {
        if instance.name.is_empty() || instance.name.contains('/') {
            return Err(RecipeError::Invalid(format!(
                "service name {:?}",
                instance.name
            )));
        }
        if instance.address.contains('\n') {
            return Err(RecipeError::Invalid("address with a newline".into()));
        }
        let membership = self
            .group(&instance.name)
            .join(&instance.id, &instance.encode())
            .await?;
        Ok(Registration {
            membership,
            instance: instance.clone(),
            base: self.base.clone(),
        })
    }

    /// The services with at least one instance node (or an empty directory).
    pub async fn services(&self) -> Result<Vec<String>> {
        let c = &self.client;
        match retry(c, || c.list_children(&self.base)).await {
            Ok(mut v) => {
                v.sort();
                Ok(v)
            }
            Err(RecipeError::Client(e)) if e.code() == Some(ErrorCode::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The service's instances now, ordered by id.
    pub async fn instances(&self, service: &str) -> Result<Vec<ServiceInstance>> {
        Ok(instances_of(service, &self.group(service).members().await?))
    }

    /// A stream of the service's instance lists, starting with the current one.
    pub async fn watch(&self, service: &str) -> Result<InstanceWatch> {
        Ok(InstanceWatch {
            service: service.to_string(),
            inner: self.group(service).watch().await?,
        })
    }

    /// A picker of instances of `service`.
    pub fn provider(&self, service: &str, strategy: Strategy) -> ServiceProvider {
        ServiceProvider {
            registry: self.clone(),
            service: service.to_string(),
            strategy,
            next: AtomicUsize::new(0),
        }
    }
}

/// A stream of a service's instance lists (see [`ServiceRegistry::watch`]).
#[derive(Debug)]
pub struct InstanceWatch {
    service: String,
    inner: MembershipWatch,
}

impl InstanceWatch {
    /// The next instance list different from the last one (the first call: the current one).
    pub async fn next(&mut self) -> Result<Vec<ServiceInstance>> {
        let members = self.inner.next().await?;
        Ok(instances_of(&self.service, &members))
    }
}

/// How a [`ServiceProvider`] picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Each instance in turn (by id order).
    RoundRobin,
    /// Uniformly at random.
    Random,
}

/// Picks one instance of a service per call.
#[derive(Debug)]
pub struct ServiceProvider {
    registry: ServiceRegistry,
    service: String,
    strategy: Strategy,
    next: AtomicUsize,
}

impl ServiceProvider {
    /// An instance, `None` if the service has none now.
    pub async fn pick(&self) -> Result<Option<ServiceInstance>> {
        let mut all = self.registry.instances(&self.service).await?;
        if all.is_empty() {
            return Ok(None);
        }
        let i = match self.strategy {
            Strategy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % all.len(),
            Strategy::Random => rand::random::<usize>() % all.len(),
        };
        Ok(Some(all.swap_remove(i)))
    }
}

/// A registered instance (its node lives with the session that registered it).
#[derive(Debug)]
pub struct Registration {
    membership: Membership,
    instance: ServiceInstance,
    base: String,
}

impl Registration {
    /// The instance.
    pub fn instance(&self) -> &ServiceInstance {
        &self.instance
    }

    /// The instance's node.
    pub fn path(&self) -> &str {
        self.membership.path()
    }

    /// Removes the instance.
    pub async fn unregister(self) -> Result<()> {
        self.membership.leave().await
    }

    /// Keeps the instance registered across sessions: whenever the current session is lost,
    /// calls `new_session` for a client on a fresh session and registers again with it (once
    /// the old session's node is gone). Stops when `new_session` returns `None`.
    pub fn keep_registered<F, Fut>(self, mut new_session: F) -> KeptRegistration
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Option<Client>> + Send,
    {
        let current = Arc::new(Mutex::new(Some(self.membership.path().to_string())));
        let shared = current.clone();
        let client = Arc::new(Mutex::new(self.membership.client().clone()));
        let shared_client = client.clone();
        let task = tokio::spawn(async move {
            let mut reg = self;
            loop {
                reg.membership.lost().await;
                *shared.lock().expect("registration lock") = None;
                tracing::info!(path = reg.path(), "session lost, registering again");
                let next = loop {
                    let Some(c) = new_session().await else { return };
                    match register_anew(&c, &reg.base, &reg.instance).await {
                        Ok(r) => {
                            *shared_client.lock().expect("registration lock") = c;
                            break r;
                        }
                        Err(e) => tracing::warn!(error = %e, "re-registration failed"),
                    }
                };
                *shared.lock().expect("registration lock") = Some(next.path().to_string());
                reg = next;
            }
        });
        KeptRegistration {
            task,
            current,
            client,
        }
    }
}

/// Registers `instance` on a new session, first waiting for the node of the lost session to
/// go (the server deletes it when it expires that session).
async fn register_anew(c: &Client, base: &str, instance: &ServiceInstance) -> Result<Registration> {
    let registry = ServiceRegistry::new(c, base);
    loop {
        match registry.register(instance).await {
            Err(RecipeError::Client(e)) if e.code() == Some(ErrorCode::NodeExists) => {
                let old = join(&join(base, &instance.name), &instance.id);
                match Barrier::new(c, &old)
                    .wait_within(Duration::from_secs(60))
                    .await
                {
                    Ok(()) | Err(RecipeError::Timeout) => {}
                    Err(e) => return Err(e),
                }
            }
            other => return other,
        }
    }
}

/// A registration kept across sessions (see [`Registration::keep_registered`]).
#[derive(Debug)]
pub struct KeptRegistration {
    task: JoinHandle<()>,
    current: Arc<Mutex<Option<String>>>,
    client: Arc<Mutex<Client>>,
}

impl KeptRegistration {
    /// The instance's node path while registered, `None` while registering again.
    pub fn path(&self) -> Option<String> {
        self.current.lock().expect("registration lock").clone()
    }

    /// Stops re-registering and removes the instance.
    pub async fn unregister(self) -> Result<()> {
        self.task.abort();
        let path = self.current.lock().expect("registration lock").clone();
        let client = self.client.lock().expect("registration lock").clone();
        match path {
            Some(p) => crate::nodes::delete_quietly(&client, &p).await,
            None => Ok(()),
        }
    }
}

impl Drop for KeptRegistration {
    fn drop(&mut self) {
        self.task.abort();
    }
}

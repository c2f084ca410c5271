//! The sandbox: how the engine is configured, which imports are linked, the
//! resource limits, and the watchdog that stops a guest that computes
//! without calling the host.

use std::fmt;
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, HasData, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, ResourceLimiter, Store, StoreContextMut, StoreLimits, StoreLimitsBuilder,
    UpdateDeadline,
};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::conversation;
use crate::conversation::Conversation;

/// Cap on each linear memory of the guest.
pub const MEMORY_CAP: usize = 64 << 20;
/// How often the engine's epoch advances.
const EPOCH_TICK: Duration = Duration::from_millis(100);
/// How long the guest may compute without calling a `chat:host` import.
/// With the tick above, a spinning guest is stopped within 1.1 s.
pub const CPU_BUDGET: Duration = Duration::from_secs(1);
/// The name the guest sees as its `argv[0]`, its only argument.
const PROGRAM_NAME: &str = "wasi-client";

/// The engine every guest runs on. Its configuration is part of the
/// compiled-module cache key (see [`crate::cache`]).
pub fn engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Interruption by epoch: cheap checks in loops and function entries.
    config.epoch_interruption(true);
    Engine::new(&config).map_err(anyhow::Error::from)
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] for as long as the engine
/// lives.
pub fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let engine = engine.weak();
    thread::Builder::new()
        .name("epoch".into())
        .spawn(move || {
            loop {
                thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map(drop)
}

/// Everything a guest's store holds.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryCap,
    conversation: Conversation,
}

impl HostState {
    /// A guest with stdout and stderr, no stdin, no environment, no
    /// preopened directories, no network, and `conversation`.
    pub fn new(conversation: Conversation) -> Self {
        let wasi = WasiCtx::builder()
            .inherit_stdout()
            .inherit_stderr()
            .arg(PROGRAM_NAME)
            // wasi:sockets is not even linked (see `linker`); deny it in the
            // context too, so linking it by mistake would grant nothing.
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryCap::new(),
            conversation,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// [`StoreLimits`] that remember a refused memory growth, to explain the
/// trap that usually follows.
struct MemoryCap {
    limits: StoreLimits,
    refused: Option<usize>,
}

impl MemoryCap {
    fn new() -> Self {
        MemoryCap {
            limits: StoreLimitsBuilder::new()
                .memory_size(MEMORY_CAP)
                .memories(4)
                .tables(64)
                .table_elements(1 << 16)
                .instances(64)
                .build(),
            refused: None,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.refused = Some(desired);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The watchdog's verdict, as the error that ends the guest.
#[derive(Debug)]
struct Interrupted(Duration);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the guest ran for {} ms without calling the host (the limit is {} ms) and was stopped",
            self.0.as_millis(),
            CPU_BUDGET.as_millis()
        )
    }
}

impl std::error::Error for Interrupted {}

/// Runs at every epoch tick while the guest executes.
fn watchdog(store: StoreContextMut<'_, HostState>) -> wasmtime::Result<UpdateDeadline> {
    let running = store.data().conversation.guest_running_for();
    if running > CPU_BUDGET {
        return Err(wasmtime::Error::new(Interrupted(running)));
    }
    Ok(UpdateDeadline::Continue(1))
}

struct HasConversation;

impl HasData for HasConversation {
    type Data<'a> = &'a mut Conversation;
}

struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// The allowlist: `chat:host/conversation` and the WASI interfaces that a
/// Rust `wasm32-wasip2` program needs to start and print. Everything else
/// (`wasi:filesystem`, `wasi:sockets`, ...) is absent, so a component that
/// imports it fails to instantiate. `wit/chat-host.wit` lists the same set.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
    use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    use wasmtime_wasi::random::WasiRandom;

    type T = HostState;
    let mut linker = Linker::<T>::new(engine);
    let l = &mut linker;
    conversation::add_to_linker::<T, HasConversation>(l, |s| &mut s.conversation)?;

    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<T, HasIo>(l, |s| &mut s.table)?;
    poll::add_to_linker::<T, HasIo>(l, |s| &mut s.table)?;
    streams::add_to_linker::<T, HasIo>(l, |s| &mut s.table)?;

    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, |s| s.wasi.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |s| s.wasi.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |s| s.wasi.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    Ok(linker)
}

/// The interfaces [`linker`] provides, by name without version. A
/// component importing anything else is refused before instantiation, with
/// the list of what it asked for.
pub const GRANTED: &[&str] = &[
    "chat:host/conversation",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stderr",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stderr",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:random/random",
];

/// The imports of `component` that this host does not grant.
pub fn refused_imports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| {
            let unversioned = name.split('@').next().unwrap_or(name);
            !GRANTED.contains(&unversioned)
        })
        .map(str::to_owned)
        .collect()
}

/// How a guest run ended.
#[derive(Debug)]
pub enum Outcome {
    /// The guest exited with this status.
    Exited(u8),
    /// The host ended it, or it could not start; the message says why.
    Failed(String),
}

/// Instantiates `component` with `state` and runs its `wasi:cli/run`.
pub fn run(engine: &Engine, component: &Component, state: HostState) -> Outcome {
    let linker = match linker(engine) {
        Ok(linker) => linker,
        Err(e) => return Outcome::Failed(format!("cannot set up the sandbox: {e:#}")),
    };
    let refused = refused_imports(engine, component);
    if !refused.is_empty() {
        return Outcome::Failed(format!(
            "refusing to start the module: it imports {}, which this host does not \
             grant (it grants only chat:host/conversation and the WASI interfaces \
             listed in host-runner/wit/chat-host.wit)",
            refused.join(", ")
        ));
    }
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(watchdog);

    store.data_mut().conversation.touch();
    let command = match Command::instantiate(&mut store, component, &linker) {
        Ok(command) => command,
        Err(e) => {
            return Outcome::Failed(format!("cannot start the module: {e:#}"));
        }
    };
    store.data_mut().conversation.touch();
    let result = command.wasi_cli_run().call_run(&mut store);
    match result {
        Ok(Ok(())) => Outcome::Exited(0),
        Ok(Err(())) => Outcome::Exited(1),
        Err(e) => explain(&e, store.data().limiter.refused),
    }
}

/// Turns the error that ended the guest into an [`Outcome`].
fn explain(e: &wasmtime::Error, refused_growth: Option<usize>) -> Outcome {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Outcome::Exited(u8::try_from(exit.0).unwrap_or(1));
    }
    if let Some(interrupted) = e.downcast_ref::<Interrupted>() {
        return Outcome::Failed(interrupted.to_string());
    }
    let headline = match refused_growth {
        Some(desired) => format!(
            "the guest ran out of memory: it asked for {:.1} MiB and the cap is {} MiB",
            desired as f64 / f64::from(1u32 << 20),
            MEMORY_CAP >> 20
        ),
        None => "the guest failed".to_owned(),
    };
    Outcome::Failed(format!("{headline}: {e:#}"))
}

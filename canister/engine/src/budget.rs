//! Budgets: every guest instruction runs under fuel, handed to wasmi in slices; between slices
//! the engine reads the message's IC instruction counter and stops the call before the message
//! reaches its limit. Running out of a slice anywhere (guest code, lazy compilation, bulk memory,
//! a host function) resumes with the next slice until the call's own fuel is spent.

use plugin_host_api::{InvokeError, LimitExceeded};
use wasmi::{Func, ResumableCall, Val};

use crate::abi::{HostState, HostTrap};

/// IC instructions used so far by the current message (`ic0.performance_counter(0)`).
pub trait InstructionMeter {
    /// The counter's current value.
    fn instructions(&self) -> u64;
}

/// What one guest call may spend.
#[derive(Debug, Clone, Copy)]
pub struct CallBudget {
    /// Fuel for the whole call.
    pub fuel_limit: u64,
    /// Fuel handed to wasmi at a time.
    pub fuel_slice: u64,
    /// The message's instruction counter value at which the call stops.
    pub instruction_limit: u64,
}

/// A call's fuel: its limit and how much of it has been handed to wasmi so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct FuelAccount {
    limit: u64,
    granted: u64,
}

impl FuelAccount {
    /// A call's fuel account with nothing handed out yet.
    pub fn new(limit: u64) -> Self {
        Self { limit, granted: 0 }
    }

    /// Hands out up to `fuel` more, as much as is left; returns how much.
    fn grant(&mut self, fuel: u64) -> u64 {
        let fuel = fuel.min(self.remaining());
        self.granted += fuel;
        fuel
    }

    /// Hands out exactly `fuel` more, if that much is left (a host call paying beyond its slice).
    pub fn take(&mut self, fuel: u64) -> bool {
        if fuel > self.remaining() {
            return false;
        }
        self.granted += fuel;
        true
    }

    /// Hands out everything left (the call cannot go on: it has used its fuel).
    pub fn exhaust(&mut self) {
        self.granted = self.limit;
    }

    /// Fuel not handed out yet.
    pub fn remaining(&self) -> u64 {
        self.limit - self.granted
    }

    /// Fuel used when `unspent` of what was handed out is left in wasmi.
    fn used(&self, unspent: u64) -> u64 {
        self.granted.saturating_sub(unspent)
    }
}

/// How a guest call ended.
#[derive(Debug)]
pub struct Run {
    /// The function's return code (0 for `() -> ()`), or why it did not finish.
    pub result: Result<i32, RunError>,
    /// Fuel used.
    pub fuel_used: u64,
}

/// Why a guest call did not finish.
#[derive(Debug)]
pub enum RunError {
    /// A trap, or a host function's error.
    Wasm(wasmi::Error),
    /// The call's fuel ran out.
    OutOfFuel,
    /// The message's instruction counter reached the limit.
    InstructionLimit {
        /// The counter's value.
        instructions: u64,
        /// The limit.
        limit: u64,
    },
}

/// Runs `func` (of type `() -> i32` or `() -> ()`) under `budget`, in fuel slices.
pub fn run(
    store: &mut wasmi::Store<HostState>,
    func: Func,
    budget: CallBudget,
    meter: &dyn InstructionMeter,
) -> Run {
    let mut account = FuelAccount::new(budget.fuel_limit);
    let first = account.grant(budget.fuel_slice);
    store.data_mut().call.fuel = account;
    let finish = |store: &wasmi::Store<HostState>, result| Run {
        result,
        fuel_used: store.data().call.fuel.used(store.get_fuel().unwrap_or(0)),
    };
    if let Err(e) = store.set_fuel(first) {
        return finish(store, Err(RunError::Wasm(e)));
    }
    let mut results = vec![Val::I32(0); func.ty(&*store).results().len()];
    let mut call = func.call_resumable(&mut *store, &[], &mut results);
    loop {
        call = match call {
            Ok(ResumableCall::Finished) => {
                let code = match results.first() {
                    Some(Val::I32(code)) => *code,
                    _ => 0,
                };
                return finish(store, Ok(code));
            }
            Ok(ResumableCall::OutOfFuel(out)) => {
                if let Err(e) = next_slice(store, budget, meter, out.required_fuel()) {
                    return finish(store, Err(e));
                }
                out.resume(&mut *store, &mut results)
            }
            Ok(ResumableCall::HostTrap(trap)) => {
                return finish(store, Err(RunError::Wasm(trap.into_host_error())));
            }
            // Compiling the called function itself (lazily, before it starts) can run out of the
            // first slice: nothing ran yet, so call again with another slice on top, or end out
            // of fuel when none is left (how much compiling needs is not known here).
            Err(e) if is_out_of_fuel(&e) => {
                let left = store.get_fuel().unwrap_or(0);
                let more = left.saturating_add(
                    budget
                        .fuel_slice
                        .min(store.data().call.fuel.remaining())
                        .max(1),
                );
                if let Err(e) = next_slice(store, budget, meter, more) {
                    return finish(store, Err(e));
                }
                func.call_resumable(&mut *store, &[], &mut results)
            }
            Err(e) => return finish(store, Err(RunError::Wasm(e))),
        };
    }
}

fn is_out_of_fuel(e: &wasmi::Error) -> bool {
    e.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel)
}

/// Hands wasmi the next slice (at least `required`), after checking the instruction counter.
fn next_slice(
    store: &mut wasmi::Store<HostState>,
    budget: CallBudget,
    meter: &dyn InstructionMeter,
    required: u64,
) -> Result<(), RunError> {
    let instructions = meter.instructions();
    if instructions >= budget.instruction_limit {
        return Err(RunError::InstructionLimit {
            instructions,
            limit: budget.instruction_limit,
        });
    }
    let left = store.get_fuel().unwrap_or(0);
    let account = &mut store.data_mut().call.fuel;
    let wanted = budget.fuel_slice.max(required.saturating_sub(left));
    if required.saturating_sub(left) > account.remaining() {
        // What is left cannot pay for the next step: the call has used its fuel.
        account.exhaust();
        let _ = store.set_fuel(0);
        return Err(RunError::OutOfFuel);
    }
    let slice = account.grant(wanted);
    store
        .set_fuel(left.saturating_add(slice))
        .map_err(RunError::Wasm)
}

impl Run {
    /// The call's result as the plugin ABI defines it: return code 0 without an error message is
    /// success, anything else the plugin's error; a failure to finish becomes its typed error.
    /// WASI's `proc_exit` ends the call as a return would, with its code.
    pub fn outcome(self, host: &HostState, fuel_limit: u64) -> Result<(), InvokeError> {
        match self.result {
            Ok(code) => returned(host, code),
            Err(RunError::Wasm(e)) => match e.downcast_ref::<HostTrap>() {
                Some(HostTrap::Exit { code: 0 }) => returned(host, 0),
                Some(HostTrap::Exit { code }) => Err(InvokeError::PluginError {
                    code: *code,
                    message: host
                        .error_message()
                        .unwrap_or_else(|| format!("exit code {code}")),
                }),
                // A trap after a refused memory or table growth is most likely its consequence
                // (the guest got -1 and gave up); any other failure is reported as itself.
                None if host.limit_hit.is_some() && !is_out_of_fuel(&e) => Err(
                    InvokeError::LimitExceeded(host.limit_hit.clone().expect("checked above")),
                ),
                _ => Err(run_error(RunError::Wasm(e), self.fuel_used, fuel_limit)),
            },
            Err(error) => Err(run_error(error, self.fuel_used, fuel_limit)),
        }
    }
}

/// A function that returned `code`: as in Extism, a message set (and still live) fails the call
/// whatever the code.
fn returned(host: &HostState, code: i32) -> Result<(), InvokeError> {
    match host.error_message() {
        Some(message) => Err(InvokeError::PluginError { code, message }),
        None if code == 0 => Ok(()),
        None => Err(InvokeError::PluginError {
            code,
            message: String::new(),
        }),
    }
}

fn run_error(error: RunError, fuel_used: u64, fuel_limit: u64) -> InvokeError {
    let out_of_fuel = InvokeError::OutOfFuel {
        fuel_used,
        fuel_limit,
    };
    match error {
        RunError::OutOfFuel => out_of_fuel,
        RunError::InstructionLimit {
            instructions,
            limit,
        } => InvokeError::InstructionLimit {
            instructions,
            limit,
        },
        RunError::Wasm(e) => match e.downcast_ref::<HostTrap>() {
            Some(trap) => host_trap_error(trap.clone(), fuel_used, fuel_limit),
            None if is_out_of_fuel(&e) => out_of_fuel,
            None => InvokeError::Trap {
                message: e.to_string(),
            },
        },
    }
}

/// A host function's error as the call's error.
pub fn host_trap_error(trap: HostTrap, fuel_used: u64, fuel_limit: u64) -> InvokeError {
    match trap {
        HostTrap::Limit(limit) => InvokeError::LimitExceeded(limit),
        HostTrap::OutOfFuel { .. } => InvokeError::OutOfFuel {
            fuel_used,
            fuel_limit,
        },
        HostTrap::InstructionLimit {
            instructions,
            limit,
            ..
        } => InvokeError::InstructionLimit {
            instructions,
            limit,
        },
        other => InvokeError::Trap {
            message: other.to_string(),
        },
    }
}

/// A limit the engine checked itself.
pub fn limit(name: &str, requested: u64, max: u64) -> LimitExceeded {
    LimitExceeded {
        limit: name.into(),
        requested,
        max,
    }
}

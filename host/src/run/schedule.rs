//! Which steps of a run may compute at once (`concurrent_steps` of the
//! compute profile), and what share of DuckDB's budget each one gets.
//!
//! A step waits for every earlier step of the plan that writes a table it
//! reads (its inputs, the table a `relationships` test looks up, the tables
//! a singular test reads) or that writes its own table. Among the steps whose
//! waits are over, the earliest in plan order start first, as long as:
//! - at most `concurrent_steps` steps run;
//! - at most one of them runs a plugin: `plugins.memory_limit` is what one
//!   step's plugin may hold, and two plugin steps at once would need twice
//!   what the pod budgets for plugins;
//! - a step that computes in DuckDB (a SQL model, or any step with singular
//!   tests, which run in a database of their own) gets a share: DuckDB's
//!   `threads` and `memory_limit` are cut into `concurrent_steps` equal
//!   shares, and the DuckDB steps starting at one moment split the free ones
//!   (a step alone takes them all). It keeps them until it ends, so the
//!   databases open at once never hold more than the profile's budget. A
//!   plugin step takes no share: an ingest computes in its plugin and the
//!   host's writer, a streaming transform reads through iceberg's reader, and
//!   a transform whose plugin returns SQL runs it within the plugin's memory
//!   budget (`driver`), which no other plugin step holds meanwhile.
//!
//! With `concurrent_steps: 1` steps run one by one, in plan order, each with
//! the whole budget.

use crate::plan::model::data_tests::TestKind;
use crate::plan::{Action, Step};

/// Where a step stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting,
    Running { shares: usize },
    Done,
}

/// What a step computes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// DuckDB: a SQL model.
    Sql,
    /// A plugin (an ingest or a transform) and the host's writer.
    Plugin,
    /// A plugin step whose singular tests run in DuckDB.
    PluginWithTests,
}

/// The run's steps and what each waits for.
#[derive(Debug)]
pub struct Schedule {
    /// For each step, the earlier steps it waits for.
    waits: Vec<Vec<usize>>,
    /// Whether the step runs a plugin / computes in DuckDB.
    plugin: Vec<bool>,
    duckdb: Vec<bool>,
    state: Vec<State>,
    slots: usize,
    free_shares: usize,
    /// No step starts any more (a step failed, or a signal came).
    closed: bool,
}

impl Schedule {
    pub fn new(steps: &[Step], concurrent_steps: usize) -> Schedule {
        let waits = (0..steps.len()).map(|i| (0..i).filter(|&j| waits_for(&steps[i], &steps[j])).collect()).collect();
        let kinds = steps
            .iter()
            .map(|s| {
                let singular = s.data_tests.iter().any(|t| matches!(t.kind, TestKind::Singular { .. }));
                match s.action {
                    Action::Sql { .. } => Kind::Sql,
                    _ if singular => Kind::PluginWithTests,
                    _ => Kind::Plugin,
                }
            })
            .collect();
        Schedule::with(waits, kinds, concurrent_steps)
    }

    /// `waits[i]`: the earlier steps step `i` waits for.
    fn with(waits: Vec<Vec<usize>>, kinds: Vec<Kind>, concurrent_steps: usize) -> Schedule {
        let slots = concurrent_steps.max(1);
        Schedule {
            plugin: kinds.iter().map(|k| *k != Kind::Sql).collect(),
            duckdb: kinds.iter().map(|k| *k != Kind::Plugin).collect(),
            state: vec![State::Waiting; waits.len()],
            waits,
            slots,
            free_shares: slots,
            closed: false,
        }
    }

    /// The shares DuckDB's budget is cut into.
    pub fn shares(&self) -> usize {
        self.slots
    }

    /// The steps that start now, in plan order, each with its DuckDB shares
    /// (0 for an ingest); they are running from now on.
    pub fn start(&mut self) -> Vec<(usize, usize)> {
        if self.closed {
            return Vec::new();
        }
        let mut running = self.running();
        let mut plugin_busy =
            (0..self.state.len()).any(|i| self.plugin[i] && matches!(self.state[i], State::Running { .. }));
        let mut starting = Vec::new();
        let mut shares_left = self.free_shares;
        for i in 0..self.state.len() {
            if running == self.slots {
                break;
            }
            let ready = self.state[i] == State::Waiting && self.waits[i].iter().all(|&j| self.state[j] == State::Done);
            if !ready || (self.plugin[i] && plugin_busy) || (self.duckdb[i] && shares_left == 0) {
                continue;
            }
            running += 1;
            plugin_busy |= self.plugin[i];
            if self.duckdb[i] {
                shares_left -= 1;
            }
            starting.push(i);
        }
        // The DuckDB steps starting now split the free shares; the earliest
        // gets what does not divide evenly.
        let duckdb_starting = starting.iter().filter(|&&i| self.duckdb[i]).count();
        let mut given = Vec::with_capacity(starting.len());
        let mut first = true;
        for i in starting {
            let shares = if !self.duckdb[i] {
                0
            } else if first {
                first = false;
                self.free_shares / duckdb_starting + self.free_shares % duckdb_starting
            } else {
                self.free_shares / duckdb_starting
            };
            given.push((i, shares));
        }
        for &(i, shares) in &given {
            self.state[i] = State::Running { shares };
            self.free_shares -= shares;
        }
        given
    }

    /// Step `index` ended (committed, skipped or failed): its shares are free.
    pub fn finished(&mut self, index: usize) {
        if let State::Running { shares } = self.state[index] {
            self.free_shares += shares;
        }
        self.state[index] = State::Done;
    }

    /// No step starts from now on; the running ones end as they do.
    pub fn close(&mut self) {
        self.closed = true;
    }

    pub fn running(&self) -> usize {
        self.state.iter().filter(|s| matches!(s, State::Running { .. })).count()
    }
}

/// Whether `step` must wait for the earlier step `earlier`: it reads the
/// table `earlier` writes, or writes the same table.
fn waits_for(step: &Step, earlier: &Step) -> bool {
    let writes = |catalog: &str, table: &crate::plan::TableRef| catalog == earlier.catalog && *table == earlier.target;
    if writes(&step.catalog, &step.target) || step.inputs.iter().any(|input| writes(&input.catalog, &input.table)) {
        return true;
    }
    step.data_tests.iter().any(|test| match &test.kind {
        TestKind::Relationships { table: Some((catalog, table)), .. } => writes(catalog, table),
        // Not resolved: wait, to be safe.
        TestKind::Relationships { table: None, .. } => true,
        TestKind::Singular { inputs, .. } => inputs.iter().any(|input| writes(&input.catalog, &input.table)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::Kind::{Plugin, PluginWithTests, Sql};
    use super::*;

    /// The demo's shape: two ingests, a staging model on each, two marts
    /// on both stagings, a WASM transform on one staging.
    fn demo(concurrent_steps: usize) -> Schedule {
        let waits = vec![vec![], vec![], vec![0], vec![1], vec![2, 3], vec![2, 3], vec![3]];
        Schedule::with(waits, vec![Plugin, Plugin, Sql, Sql, Sql, Sql, Plugin], concurrent_steps)
    }

    #[test]
    fn one_slot_runs_the_steps_one_by_one_in_plan_order_with_the_whole_budget() {
        let mut schedule = demo(1);
        for i in 0..7 {
            let started = schedule.start();
            let shares = if (2..6).contains(&i) { 1 } else { 0 };
            assert_eq!(started, vec![(i, shares)], "step {i}");
            assert_eq!(schedule.start(), vec![], "step {i} runs alone");
            schedule.finished(i);
        }
        assert_eq!(schedule.start(), vec![]);
        assert_eq!(schedule.running(), 0);
    }

    #[test]
    fn two_plugin_steps_never_overlap_and_a_model_runs_beside_an_ingest_with_all_of_duckdb() {
        let mut schedule = demo(2);
        assert_eq!(schedule.start(), vec![(0, 0)], "the second ingest waits for the plugin");
        schedule.finished(0);
        // raw_orders (plugin, no DuckDB) and stg_customers (alone in DuckDB: both shares).
        assert_eq!(schedule.start(), vec![(1, 0), (2, 2)]);
        schedule.finished(2);
        assert_eq!(schedule.start(), vec![], "stg_orders waits for raw_orders");
        schedule.finished(1);
        assert_eq!(schedule.start(), vec![(3, 2)]);
        schedule.finished(3);
        // The two marts are ready at once and split DuckDB; the WASM step waits for a slot.
        assert_eq!(schedule.start(), vec![(4, 1), (5, 1)]);
        schedule.finished(5);
        assert_eq!(schedule.start(), vec![(6, 0)], "a plugin step takes no share");
        schedule.finished(4);
        schedule.finished(6);
        assert_eq!(schedule.running(), 0);
        assert_eq!(schedule.free_shares, 2, "every share came back");
    }

    #[test]
    fn a_step_waits_for_free_shares_even_when_a_slot_is_free() {
        let mut schedule = Schedule::with(vec![vec![], vec![], vec![0]], vec![Sql, Plugin, Sql], 3);
        assert_eq!(schedule.start(), vec![(0, 3), (1, 0)]);
        schedule.finished(0);
        assert_eq!(schedule.start(), vec![(2, 3)]);
    }

    #[test]
    fn a_plugin_step_with_singular_tests_takes_a_share_for_them() {
        let mut schedule = Schedule::with(vec![vec![], vec![]], vec![PluginWithTests, Sql], 2);
        assert_eq!(schedule.start(), vec![(0, 1), (1, 1)]);
    }

    #[test]
    fn the_shares_that_do_not_divide_go_to_the_earliest_step() {
        let mut schedule = Schedule::with(vec![vec![], vec![]], vec![Sql, Sql], 3);
        assert_eq!(schedule.start(), vec![(0, 2), (1, 1)]);
    }

    #[test]
    fn a_closed_schedule_starts_nothing_more() {
        let mut schedule = demo(2);
        assert_eq!(schedule.start(), vec![(0, 0)]);
        schedule.close();
        schedule.finished(0);
        assert_eq!(schedule.start(), vec![]);
        assert_eq!(schedule.running(), 0);
    }
}
